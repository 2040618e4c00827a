//! Keyring management calls: `addKey`, `replaceKeys`, `hasKey`,
//! `keyVersions`, `clearKeys`; and `keyUsage` (the counts of
//! `src/usage.rs`, which are per version, not per key: they outlive the
//! keys these calls replace).
//!
//! Keys installed from a key vault (`src/napi/vault.rs`) survive
//! `replaceKeys`, and their versions cannot be defined again here.
//!
//! Invariants: hex keys are read into zeroized buffers only; an encryption
//! key equal to a loaded index key is refused (`ERR_FIELDCRYPT_KEY_CONFLICT`); `replaceKeys`
//! is all or nothing (the new ring is built aside and swapped in whole, and
//! the old keys are zeroized when dropped). Batches already running keep
//! their own snapshot of the keys (`Arc` clones).

use napi::sys;
use zeroize::Zeroizing;

use super::errors::{check, run, Fail, Res};
use super::io::{array_len, boolean, element, latin1, new_array, read_ascii, read_version, set_named, undefined};
use super::state::{args, State};
use super::{RawEnv, Value};
use crate::error::{version_str, FieldCryptError, Version};
use crate::keyring::{Key, Keyring};
use crate::usage;

/// `addKey(version: string, hexKey: string): void`
pub(super) unsafe extern "C" fn add_key(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([ver, hex], state) = args::<2>(env, info)?;
            let version = read_version(env, ver)?;
            let key = read_key(env, state, &version, hex)?;
            if state.vault.borrow().contains(&version) {
                return Err(FieldCryptError::KeyVaultConflict(version).into());
            }
            state.ring.borrow_mut().insert(version, key);
            undefined(env)
        })
    }
}

/// The text of a hex key argument, in a zeroized buffer; `None` if it is
/// not a string or not ASCII (not 64 hex characters either way). Shared with
/// the index keys (`super::blind_index`).
pub(super) unsafe fn read_key_text(env: RawEnv, hex: Value) -> Res<Option<Zeroizing<Vec<u8>>>> {
    let mut raw = Zeroizing::new(Vec::new());
    Ok(unsafe { read_ascii(env, hex, &mut raw)? }.then_some(raw))
}

/// An encryption key, refused if it is one of the loaded index keys.
unsafe fn read_key(env: RawEnv, state: &State, version: &Version, hex: Value) -> Res<Key> {
    let Some(raw) = (unsafe { read_key_text(env, hex)? }) else {
        return Err(FieldCryptError::InvalidKey(*version).into());
    };
    let key = Key::from_hex_bytes(version, &raw)?;
    if let Some(index) = state.index_version_with_check(&key.check_block()) {
        return Err(FieldCryptError::IndexKeyConflict { index, encryption: *version }.into());
    }
    Ok(key)
}

/// The `(versions, hexKeys)` arguments of `replaceKeys`/`replaceIndexKeys`:
/// two arrays of the same length, each key read by `read` for its version,
/// in order (the first bad one fails the call). Shared with `super::blind_index`.
pub(super) unsafe fn for_each_key_pair(
    env: RawEnv,
    versions: Value,
    keys: Value,
    mut read: impl FnMut(Version, Value) -> Res<()>,
) -> Res<()> {
    unsafe {
        let n = array_len(env, versions)?;
        if array_len(env, keys)? != n {
            return Err(Fail::Arg("versions and keys must have the same length".into()));
        }
        for i in 0..n {
            read(read_version(env, element(env, versions, i)?)?, element(env, keys, i)?)?;
        }
        Ok(())
    }
}

/// `replaceKeys(versions: string[], hexKeys: string[]): void` — all or nothing.
pub(super) unsafe extern "C" fn replace_keys(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([versions, keys], state) = args::<2>(env, info)?;
            let mut ring = Keyring::new();
            for_each_key_pair(env, versions, keys, |version, hex| {
                let key = read_key(env, state, &version, hex)?;
                ring.insert(version, key);
                Ok(())
            })?;
            // Keys from a key vault stay, and are not defined a second time.
            let vault = state.vault.borrow();
            for v in vault.versions() {
                if ring.contains(&v) {
                    return Err(FieldCryptError::KeyVaultConflict(v).into());
                }
                ring.insert_shared(v, vault.get(&v)?.clone());
            }
            drop(vault);
            // The old keys are dropped (and zeroized) here.
            *state.ring.borrow_mut() = ring;
            undefined(env)
        })
    }
}

/// `hasKey(version: string): boolean`
pub(super) unsafe extern "C" fn has_key(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([ver], state) = args::<1>(env, info)?;
            let version = read_version(env, ver)?;
            let has = state.ring.borrow().contains(&version);
            boolean(env, has)
        })
    }
}

/// `keyVersions(): string[]`
pub(super) unsafe extern "C" fn key_versions(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([], state) = args::<0>(env, info)?;
            let versions = state.ring.borrow().versions();
            let arr = new_array(env, versions.len())?;
            for (i, v) in versions.iter().enumerate() {
                check(sys::napi_set_element(env, arr, i as u32, latin1(env, v)?))?;
            }
            Ok(arr)
        })
    }
}

/// `clearKeys(): void`
pub(super) unsafe extern "C" fn clear_keys(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([], state) = args::<0>(env, info)?;
            state.ring.borrow_mut().clear();
            state.vault.borrow_mut().clear();
            undefined(env)
        })
    }
}

/// `keyUsage(): { [version: string]: number }`: the encryptions counted
/// under each version in this process, for the versions with any,
/// ascending. Numbers are exact up to 2^53, far beyond the 2^32 limit.
pub(super) unsafe extern "C" fn key_usage(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([], _) = args::<0>(env, info)?;
            let mut obj = std::ptr::null_mut();
            check(sys::napi_create_object(env, &mut obj))?;
            for (v, n) in usage::counts() {
                let mut count = std::ptr::null_mut();
                check(sys::napi_create_double(env, n as f64, &mut count))?;
                set_named(env, obj, version_str(&v), count)?;
            }
            Ok(obj)
        })
    }
}
