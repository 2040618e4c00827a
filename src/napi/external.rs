//! External strings: one-byte strings V8 reads from our buffers in place,
//! and the finalizers that take the buffers back.
//!
//! Ownership and safety invariants:
//!
//! * a buffer offered to V8 is owned as [`crate::handoff`] says: once V8
//!   has run its finalizer (possibly during the create call, when it copies
//!   the string or disposes of the buffer), only the finalizer gives it
//!   back; nothing here frees or reads it after offering it, except a
//!   buffer V8 refused without finalizing;
//! * a buffer that held plaintext (`secret`) is wiped before reuse: the
//!   finalizer gives it to the pool's wiping thread
//!   ([`pool::give_back_later`]), started before the first such string is
//!   created; other buffers go straight back to the [`pool`];
//! * every byte V8 holds is reported with `napi_adjust_external_memory`
//!   when the string is created (a batch's segments together) and taken
//!   back by its finalizer.

use std::ffi::{c_char, c_void};
use std::ptr;

use napi::sys;

use super::errors::{check, Res};
use super::{RawEnv, Value, OK};
use crate::{handoff, pool};

/// Tells V8 how much memory external strings hold, so that it collects
/// them as promptly as strings on its own heap (it cannot see their buffers).
pub(super) unsafe fn account_external(env: RawEnv, change: i64) {
    let mut total = 0;
    unsafe { sys::napi_adjust_external_memory(env, change, &mut total) };
}

/// The finalizer of every external string: the buffer goes back to the
/// pool, through the wiping thread if it held plaintext (V8 runs this inside
/// a full collection's pause, which wiping there would lengthen: see
/// [`pool::give_back_later`]). `env` may be null when the environment is
/// being torn down.
unsafe extern "C" fn finalize_external(env: sys::node_api_basic_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is one `handoff::offer` made, and the runtime runs this
    // once for it.
    let (bytes, secret, unreport) = unsafe { handoff::take_back(hint) };
    if unreport > 0 && !env.is_null() {
        unsafe { account_external(env.cast(), -(unreport as i64)) };
    }
    if secret {
        pool::give_back_later(bytes);
    } else {
        pool::give_back(bytes, false);
    }
}

/// A one-byte string (ASCII) that V8 reads from `bytes` in place: no
/// allocation or copy on V8's side, and nothing for the garbage collector
/// to copy. When the string is collected, the buffer goes back to the
/// [`pool`], wiped first if `secret` (plaintext).
pub(super) unsafe fn external_latin1(env: RawEnv, bytes: Vec<u8>, secret: bool) -> Res<Value> {
    let mut held = 0;
    let out = unsafe { external_latin1_unaccounted(env, bytes, secret, &mut held)? };
    unsafe { account_external(env, held) };
    Ok(out)
}

/// [`external_latin1`] without telling V8: adds the bytes V8 now holds to
/// `held`, for the caller to report once. Above V8's external-memory limit
/// every report runs a step of incremental marking on this thread, so a
/// batch reports its segments together. Who owns the buffer after the call
/// is [`handoff`]'s rule.
pub(super) unsafe fn external_latin1_unaccounted(
    env: RawEnv,
    bytes: Vec<u8>,
    secret: bool,
    held: &mut i64,
) -> Res<Value> {
    if secret {
        // The thread that wipes such buffers once V8 collects them, started
        // here rather than by the first finalizer, inside a collection (and
        // only in processes that decrypt into external strings).
        pool::start_recycler();
    }
    let mut out = ptr::null_mut();
    let mut status = OK;
    // SAFETY: Node-API calls the finalizer at most once per string, and
    // during the call only when it copied or disposed of the buffer.
    let offered = unsafe {
        handoff::offer(bytes, secret, |data, len, hint| {
            let mut copied = false;
            status = sys::node_api_create_external_string_latin1(
                env,
                data as *mut c_char,
                len as isize,
                Some(finalize_external),
                hint,
                &mut out,
                &mut copied,
            );
            handoff::Answer { created: status == OK, copied }
        })
    };
    match offered {
        handoff::Offered::InPlace(len) => *held += len as i64,
        handoff::Offered::Gone => {}
        handoff::Offered::Refused(bytes, secret) => pool::give_back(bytes, secret),
    }
    check(status)?;
    Ok(out)
}

/// `node_api_create_external_string_latin1` exists from Node 18.18 and 20.4.
pub(super) fn has_external_strings(env: RawEnv) -> bool {
    let mut v: *const sys::napi_node_version = ptr::null();
    if unsafe { sys::napi_get_node_version(env, &mut v) } != OK || v.is_null() {
        return false;
    }
    // SAFETY: N-API returns a pointer to a static struct.
    let (major, minor) = unsafe { ((*v).major, (*v).minor) };
    match major {
        0..=17 => false,
        18 => minor >= 18,
        19 => false,
        20 => minor >= 4,
        _ => true,
    }
}
