//! Blind index calls (issue 20): `blindIndex`, `blindIndexMany`, and the
//! index key calls `addIndexKey`, `replaceIndexKeys`, `hasIndexKey`,
//! `indexKeyVersions`, `clearIndexKeys`. The derivation is napi-free, in
//! `src/blind_index.rs`; the index keys in `src/index_keys.rs`.
//!
//! Invariants: the key is looked up (and the path key derived or taken from
//! the cache) before any input is read, so a missing key fails before
//! touching a value; the path key is cloned out of the ring before inputs
//! are read (the ring is not borrowed while elements are); lib/core/blind-index.js
//! passes `blindIndexMany` a plain array it made, so no accessor runs during the
//! call (one that called the addon would meet the borrowed input scratch buffer
//! and get `ERR_FIELDCRYPT_INTERNAL`, never undefined behaviour); every input (text
//! or a copy of a Uint8Array's bytes) goes into that buffer, wiped after each value. An index key equal
//! to a loaded encryption key is refused (`ERR_FIELDCRYPT_KEY_CONFLICT`).
//!
//! Index keys from a key vault live in `State::vault_index` (see
//! `src/napi/vault.rs`): looked up, listed and reported like the others;
//! `replaceIndexKeys`/`clearIndexKeys` keep them, and a version a vault
//! defines is refused here (`ERR_FIELDCRYPT_KEY_VAULT`).

use napi::sys;

use super::errors::{check, run, Fail, Res};
use super::io::{
    array_len, boolean, element, latin1, new_array, read_bytes, read_utf8, read_version, undefined, SCAN_ABOVE_SINGLE,
};
use super::keys::{for_each_key_pair, read_key_text};
use super::state::{args, Scratch, State};
use super::{RawEnv, Value};
use crate::blind_index::{is_scope_info, PathKey};
use crate::error::{FieldCryptError, Version};
use crate::index_keys::{IndexKey, IndexKeyring};
use crate::pool;

/// Reads `(version, collection, path)` and returns the version and its path
/// key (a clone: the ring is not borrowed afterwards).
unsafe fn path_key(env: RawEnv, state: &State, ver: Value, coll: Value, path: Value) -> Res<(Version, PathKey)> {
    let version = unsafe { read_version(env, ver)? };
    let mut ring = state.index_ring.borrow_mut();
    let mut vault = state.vault_index.borrow_mut();
    let key = if vault.contains(&version) { vault.get_mut(&version)? } else { ring.get_mut(&version)? };
    // HKDF's info, `collection || 0x00 || path`, read straight into one buffer
    let mut info = state.scope.borrow_mut();
    info.clear();
    unsafe { read_utf8(env, coll, "collection", &mut info, SCAN_ABOVE_SINGLE)? };
    let collection_len = info.len();
    info.push(0);
    unsafe { read_utf8(env, path, "path", &mut info, SCAN_ABOVE_SINGLE)? };
    if !is_scope_info(&info, collection_len) {
        return Err(Fail::Arg("collection and path must be non-empty strings without NUL characters".into()));
    }
    Ok((version, key.path_key(&info).clone()))
}

/// Appends one input, a string (as UTF-8) or the bytes of a Uint8Array, to `buf`.
unsafe fn read_input(env: RawEnv, v: Value, buf: &mut Vec<u8>) -> Res<()> {
    let mut kind = sys::ValueType::napi_undefined;
    check(unsafe { sys::napi_typeof(env, v, &mut kind) })?;
    if kind == sys::ValueType::napi_string {
        return unsafe { read_utf8(env, v, "input", buf, SCAN_ABOVE_SINGLE) };
    }
    let bytes = unsafe { read_bytes(env, v) }
        .map_err(|_| Fail::Arg("an index input must be a string, a Buffer or a Uint8Array".into()))?;
    // a copy: the view is not touched again once JavaScript may run
    pool::reserve_secret(buf, buf.len() + bytes.len());
    buf.extend_from_slice(bytes);
    Ok(())
}

/// `blindIndex(input: string | Uint8Array, version: string, collection: string, path: string): string`
pub(super) unsafe extern "C" fn blind_index(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([input, ver, coll, path], state) = args::<4>(env, info)?;
            let (version, key) = path_key(env, state, ver, coll, path)?;
            let mut buf = Scratch::take(&state.input);
            read_input(env, input, &mut buf)?;
            latin1(env, &key.value(&version, &buf))
        })
    }
}

/// `blindIndexMany(inputs: (string | Uint8Array)[], version, collection, path): string[]`
pub(super) unsafe extern "C" fn blind_index_many(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([inputs, ver, coll, path], state) = args::<4>(env, info)?;
            let n = array_len(env, inputs)?;
            let (version, key) = path_key(env, state, ver, coll, path)?;
            let out = new_array(env, n as usize)?;
            let mut buf = Scratch::take(&state.input);
            for i in 0..n {
                read_input(env, element(env, inputs, i)?, &mut buf)?;
                let value = key.value(&version, &buf);
                pool::wipe_slice(&mut buf);
                buf.clear();
                check(sys::napi_set_element(env, out, i, latin1(env, &value)?))?;
            }
            Ok(out)
        })
    }
}

/// An index key argument (checked against the encryption keys by `insert`);
/// a version a key vault defines is refused.
unsafe fn read_index_key(env: RawEnv, state: &State, version: &Version, hex: Value) -> Res<IndexKey> {
    if state.vault_index.borrow().contains(version) {
        return Err(FieldCryptError::IndexKeyVaultConflict(*version).into());
    }
    let Some(raw) = (unsafe { read_key_text(env, hex)? }) else {
        return Err(FieldCryptError::InvalidIndexKey(*version).into());
    };
    Ok(IndexKey::from_hex_bytes(version, &raw)?)
}

/// `addIndexKey(version: string, hexKey: string): void`
pub(super) unsafe extern "C" fn add_index_key(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([ver, hex], state) = args::<2>(env, info)?;
            let version = read_version(env, ver)?;
            let key = read_index_key(env, state, &version, hex)?;
            state.index_ring.borrow_mut().insert(version, key, &state.ring.borrow())?;
            undefined(env)
        })
    }
}

/// `replaceIndexKeys(versions: string[], hexKeys: string[]): void` — all or nothing.
pub(super) unsafe extern "C" fn replace_index_keys(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([versions, keys], state) = args::<2>(env, info)?;
            let mut ring = IndexKeyring::new();
            for_each_key_pair(env, versions, keys, |version, hex| {
                let key = read_index_key(env, state, &version, hex)?;
                Ok(ring.insert(version, key, &state.ring.borrow())?)
            })?;
            // The old keys and their path keys are dropped (and zeroized) here.
            *state.index_ring.borrow_mut() = ring;
            undefined(env)
        })
    }
}

/// `hasIndexKey(version: string): boolean`
pub(super) unsafe extern "C" fn has_index_key(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([ver], state) = args::<1>(env, info)?;
            let version = read_version(env, ver)?;
            let has = state.index_ring.borrow().contains(&version) || state.vault_index.borrow().contains(&version);
            boolean(env, has)
        })
    }
}

/// `indexKeyVersions(): string[]`, ascending.
pub(super) unsafe extern "C" fn index_key_versions(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([], state) = args::<0>(env, info)?;
            let mut versions = state.index_ring.borrow().versions();
            versions.extend(state.vault_index.borrow().versions());
            versions.sort_unstable();
            let arr = new_array(env, versions.len())?;
            for (i, v) in versions.iter().enumerate() {
                check(sys::napi_set_element(env, arr, i as u32, latin1(env, v)?))?;
            }
            Ok(arr)
        })
    }
}

/// `clearIndexKeys(): void` — the keys from a key vault stay.
pub(super) unsafe extern "C" fn clear_index_keys(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([], state) = args::<0>(env, info)?;
            state.index_ring.borrow_mut().clear();
            undefined(env)
        })
    }
}
