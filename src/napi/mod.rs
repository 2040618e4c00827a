#![cfg_attr(test, allow(dead_code))]
//! The N-API surface: the only module that knows napi.
//!
//! Every function here is a plain N-API callback over `napi::sys`, registered
//! on the module's exports by napi-rs's `module_exports` hook. napi-rs's
//! generated wrappers cost several times a plain callback, which would be
//! most of a small encrypt, so the hot paths do the few N-API calls they need
//! themselves:
//!
//! * stored values and versions (ASCII) are read with a length query that is
//!   O(1) (`napi_get_value_string_latin1` with no buffer) and one UTF-8 copy;
//!   stored values are written with `napi_create_string_latin1`, which V8
//!   copies into a one-byte string without decoding;
//! * plaintext is read as UTF-8 in one pass into a buffer sized 3x its UTF-16
//!   length (the most UTF-8 it can need), encrypted in place and zeroized;
//!   decrypted text is zeroized after V8 has copied it.
//!
//! Each module instance (main thread or worker) gets its own [`State`] and
//! keyring, passed to every callback as its `data` pointer and freed by an
//! env cleanup hook. Only the JS thread touches it; batch work on the thread
//! pool holds `Arc`s of the keys it needs.
//!
//! Errors are thrown as JS `Error`s whose `code` is
//! [`crate::error::FieldCryptError::code`]; key errors also carry
//! `keyVersion`, batch errors `index` (see [`errors`]).
//!
//! * [`state`]       – per-instance state, scratch buffers, callback arguments
//! * [`errors`]      – failures and how they are thrown
//! * [`io`]          – reading and writing JS strings, arrays, typed arrays
//! * [`external`]    – external strings: buffers V8 reads in place
//! * [`single`]      – single-value calls (`encrypt`, `decrypt`, …)
//! * [`keys`]        – keyring management calls, and the key usage counts
//! * [`vault`]       – key vault DEKs: generated, (un)wrapped and installed here
//! * [`batch`]       – sync batches, and the input/output both kinds share
//! * [`batch_async`] – async batches on the libuv thread pool
//! * [`blind_index`] – blind index values and the index key calls
//! * [`cpu`]         – CPU feature detection for choosing the build

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;

use napi::bindgen_prelude::Object;
use napi::sys;
use napi::{Env, JsValue};
use napi_derive::napi;

use crate::index_keys::IndexKeyring;
use crate::keyring::Keyring;

mod batch;
mod batch_async;
mod blind_index;
mod cpu;
mod errors;
mod external;
mod io;
mod keys;
mod single;
mod state;
mod vault;

use state::State;

type Value = sys::napi_value;
type RawEnv = sys::napi_env;

const OK: sys::napi_status = sys::Status::napi_ok;

type Callback = unsafe extern "C" fn(RawEnv, sys::napi_callback_info) -> Value;

/// The module's exports, by the names JS calls them.
const EXPORTS: &[(&str, Callback)] = &[
    ("encrypt", single::encrypt),
    ("decrypt", single::decrypt),
    ("encryptBytes", single::encrypt_bytes),
    ("decryptBytes", single::decrypt_bytes),
    ("reEncrypt", single::re_encrypt),
    ("isWellFormed", single::is_well_formed),
    ("keyVersionOf", single::key_version_of),
    ("encryptJoined", batch::encrypt_joined),
    ("decryptJoined", batch::decrypt_joined),
    ("encryptJoinedAsync", batch_async::encrypt_joined_async),
    ("decryptJoinedAsync", batch_async::decrypt_joined_async),
    ("addKey", keys::add_key),
    ("replaceKeys", keys::replace_keys),
    ("hasKey", keys::has_key),
    ("keyVersions", keys::key_versions),
    ("clearKeys", keys::clear_keys),
    ("keyUsage", keys::key_usage),
    ("vaultCreateLocal", vault::vault_create_local),
    ("vaultInstallLocal", vault::vault_install_local),
    ("vaultVerifyLocal", vault::vault_verify_local),
    ("vaultRewrapLocal", vault::vault_rewrap_local),
    ("vaultUnwrapLocalInto", vault::vault_unwrap_local_into),
    ("vaultWrapLocalFrom", vault::vault_wrap_local_from),
    ("vaultInstall", vault::vault_install),
    ("vaultGenerateInto", vault::vault_generate_into),
    ("vaultImportLocal", vault::vault_import_local),
    ("vaultImportInto", vault::vault_import_into),
    ("vaultForget", vault::vault_forget),
    ("vaultForgetIndex", vault::vault_forget_index),
    ("vaultVersions", vault::vault_versions),
    ("blindIndex", blind_index::blind_index),
    ("blindIndexMany", blind_index::blind_index_many),
    ("addIndexKey", blind_index::add_index_key),
    ("replaceIndexKeys", blind_index::replace_index_keys),
    ("hasIndexKey", blind_index::has_index_key),
    ("indexKeyVersions", blind_index::index_key_versions),
    ("clearIndexKeys", blind_index::clear_index_keys),
    ("cpuSupportsAccelerated", cpu::cpu_supports_accelerated),
    ("ivSourceCosts", cpu::iv_source_costs),
];

unsafe extern "C" fn free_state(data: *mut c_void) {
    // SAFETY: the Box leaked in `init`; the env is shutting down, no JS runs.
    drop(unsafe { Box::from_raw(data as *mut State) });
}

#[napi(module_exports)]
pub fn init(exports: Object, env: Env) -> napi::Result<()> {
    let raw_env = env.raw();
    let state = Box::into_raw(Box::new(State {
        ring: RefCell::new(Keyring::new()),
        vault: RefCell::new(Keyring::new()),
        index_ring: RefCell::new(IndexKeyring::new()),
        vault_index: RefCell::new(IndexKeyring::new()),
        scope: RefCell::new(Vec::new()),
        input: RefCell::new(Vec::new()),
        output: RefCell::new(Vec::new()),
        text16: RefCell::new(Vec::new()),
        aad: RefCell::new(Vec::new()),
        aad_from: RefCell::new(Vec::new()),
        external_strings: external::has_external_strings(raw_env),
    }));
    let fail = |what: &str| napi::Error::from_reason(format!("fieldcrypt: could not {what}"));
    unsafe {
        if sys::napi_add_env_cleanup_hook(raw_env, Some(free_state), state.cast()) != OK {
            drop(Box::from_raw(state));
            return Err(fail("register cleanup"));
        }
        for (name, cb) in EXPORTS {
            let mut f = ptr::null_mut();
            if sys::napi_create_function(
                raw_env,
                name.as_ptr().cast(),
                name.len() as isize,
                Some(*cb),
                state.cast(),
                &mut f,
            ) != OK
                || io::set_named(raw_env, exports.raw(), name, f).is_err()
            {
                return Err(fail("export functions"));
            }
        }
    }
    Ok(())
}
