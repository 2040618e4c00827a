//! Per-module-instance state, the scratch buffers single calls reuse, and
//! the arguments of a callback.
//!
//! Invariants: a [`State`] is created by `init`, passed to every callback as
//! its `data` pointer, and freed only by the env cleanup hook, after all JS
//! of that environment has stopped; only the JS thread touches it. Between
//! calls no scratch buffer holds plaintext (see [`Scratch`]).

use std::cell::RefCell;
use std::ptr;

use napi::sys;

use super::errors::{check, Res};
use super::{RawEnv, Value};
use crate::index_keys::IndexKeyring;
use crate::keyring::Keyring;
use crate::pool;

/// Per-module-instance state.
pub(super) struct State {
    pub(super) ring: RefCell<Keyring>,
    /// The keys installed from a key vault (also in `ring`), kept through
    /// `replaceKeys`; see [`super::vault`].
    pub(super) vault: RefCell<Keyring>,
    /// The index keys of blind indexes, with their cached path keys.
    pub(super) index_ring: RefCell<IndexKeyring>,
    /// The index keys installed from a key vault: a ring of their own, next
    /// to `index_ring`, kept through `replaceIndexKeys`/`clearIndexKeys`; a
    /// version is in one of the two, never both (see [`super::vault`]).
    pub(super) vault_index: RefCell<IndexKeyring>,
    /// A blind index call's HKDF info (`collection || 0x00 || path`; not secret).
    pub(super) scope: RefCell<Vec<u8>>,
    /// Reused buffers for one call's input and output, so that small calls
    /// allocate nothing; see [`Scratch`].
    pub(super) input: RefCell<Vec<u8>>,
    pub(super) output: RefCell<Vec<u8>>,
    /// A call's contexts (AES-GCM additional data; `reEncrypt` has two).
    pub(super) aad: RefCell<Vec<u8>>,
    pub(super) aad_from: RefCell<Vec<u8>>,
    /// Decrypted text that is not ASCII, as UTF-16 for V8 (see
    /// [`super::io::utf16_string`]).
    pub(super) text16: RefCell<Vec<u16>>,
    /// Whether this Node has `node_api_create_external_string_latin1`
    /// (Node >= 18.18 / 20.4): large results are then handed to V8 without a copy.
    pub(super) external_strings: bool,
}

impl State {
    /// The version of the loaded index key (from anywhere) with this check
    /// block: an encryption key about to be loaded must not be one.
    pub(super) fn index_version_with_check(&self, check: &[u8; 16]) -> Option<crate::error::Version> {
        let env = self.index_ring.borrow().version_with_check(check);
        env.or_else(|| self.vault_index.borrow().version_with_check(check))
    }
}

/// Scratch buffers up to this capacity are kept for the next call; larger
/// ones are freed. Keeping them matters for large values: a fresh multi-MiB
/// buffer costs the kernel a page fault and a zeroed page per 4 KiB, a large
/// part of a large encrypt.
pub(super) const KEEP_SCRATCH: usize = 8 << 20;

/// A borrowed scratch buffer. On drop, the bytes the call wrote are zeroized
/// (only those: zeroizing the whole capacity would cost a memset of the
/// largest value ever seen on every call), so between calls no scratch
/// buffer holds plaintext: zeros, or ciphertext (see [`Scratch::encrypted`]).
pub(super) struct Scratch<'a, T: Copy + Default = u8>(std::cell::RefMut<'a, Vec<T>>);

impl<'a, T: Copy + Default> Scratch<'a, T> {
    pub(super) fn take(cell: &'a RefCell<Vec<T>>) -> Self {
        let mut buf = cell.borrow_mut();
        buf.clear();
        Scratch(buf)
    }

    /// The buffer's plaintext has been encrypted in place (every byte
    /// written is ciphertext now): nothing to wipe on drop, and wiping
    /// ciphertext would cost a memset of the whole value for nothing.
    pub(super) fn encrypted(mut self) {
        self.0.clear();
    }
}

impl<T: Copy + Default> Drop for Scratch<'_, T> {
    fn drop(&mut self) {
        pool::wipe_slice(&mut self.0);
        self.0.clear();
        if self.0.capacity() * std::mem::size_of::<T>() > KEEP_SCRATCH {
            *self.0 = Vec::new();
        }
    }
}

impl<T: Copy + Default> std::ops::Deref for Scratch<'_, T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T: Copy + Default> std::ops::DerefMut for Scratch<'_, T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

/// The callback's arguments (missing ones are `undefined`) and its state.
pub(super) unsafe fn args<'a, const N: usize>(
    env: RawEnv,
    info: sys::napi_callback_info,
) -> Res<([Value; N], &'a State)> {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    let mut data = ptr::null_mut();
    check(unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data) })?;
    // SAFETY: every callback is created with a pointer to a live `State`,
    // freed only by the env cleanup hook after all JS has stopped running.
    Ok((argv, unsafe { &*(data as *const State) }))
}
