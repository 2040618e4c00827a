//! Key vault calls: DEKs generated, wrapped, unwrapped and installed here, so
//! that their bytes never become JavaScript values under the `local`
//! provider (see `src/wrap.rs`, `lib/vault/`).
//!
//! A master key argument is `"env:NAME"` (read from the process
//! environment here), `"file:PATH"` (read from the file here), or a
//! Uint8Array holding the key (raw, hex or base64), for apps that pass it.
//! A DEK is named by its 16-byte id and its version, its wrapping's
//! additional data.
//!
//! Keys installed from the vault are kept in `State::vault` as well as in
//! the key ring: `replaceKeys` and `addKey` (configureKeys, reloadKeys, the
//! environment) keep them and refuse to define their versions a second time,
//! and installing a vault key refuses a version the ring has from elsewhere.
//!
//! Blind-index keys (purpose `"index"`) go to `State::vault_index`, an index
//! key ring next to the one `configureIndexKeys` and the environment fill:
//! `replaceIndexKeys`/`addIndexKey` refuse their versions, installing one
//! refuses a version that ring has, and either way an index key equal to an
//! encryption key is refused (`ERR_FIELDCRYPT_KEY_CONFLICT`).
//!
//! Other providers (AWS KMS, custom) unwrap in JavaScript: their plaintext
//! arrives as a Uint8Array, which [`vault_install`] installs and zero-fills.

use std::ptr;
use std::sync::Arc;

use napi::sys;
use zeroize::{Zeroize, Zeroizing};

use super::errors::{check, Fail, Res};
use super::io::{latin1, new_array, read_bytes, read_utf8, read_version, undefined, write_bytes, SCAN_ABOVE_SINGLE};
use super::state::{args, State};
use super::{RawEnv, Value, OK};
use crate::error::{FieldCryptError, Version};
use crate::index_keys::IndexKey;
use crate::keyring::{Key, KEY_LEN};
use crate::wrap::{dek_aad, generate_dek, Dek, LocalMasterKey};

/// The longest master key file read: a 96-byte key as hex with some whitespace.
const MAX_MASTER_FILE: u64 = 4096;

/// Reads a master key argument (see the module docs).
unsafe fn read_master(env: RawEnv, v: Value) -> Res<LocalMasterKey> {
    let mut is_typed = false;
    check(unsafe { sys::napi_is_typedarray(env, v, &mut is_typed) })?;
    if is_typed {
        return Ok(LocalMasterKey::from_text_or_bytes(unsafe { read_bytes(env, v)? })?);
    }
    let mut spec = Vec::new();
    unsafe { read_utf8(env, v, "the master key", &mut spec, SCAN_ABOVE_SINGLE)? };
    let spec = String::from_utf8_lossy(&spec).into_owned();
    let kms = |m: String| Fail::Crypt(FieldCryptError::Kms(m));
    if let Some(name) = spec.strip_prefix("env:") {
        let value = std::env::var_os(name)
            .ok_or_else(|| kms(format!("the local master key variable {name} is not set")))?
            .into_encoded_bytes();
        let value = Zeroizing::new(value);
        Ok(LocalMasterKey::from_text_or_bytes(&value)?)
    } else if let Some(file) = spec.strip_prefix("file:") {
        use std::io::Read;
        let mut bytes = Zeroizing::new(Vec::new());
        std::fs::File::open(file)
            .and_then(|f| f.take(MAX_MASTER_FILE).read_to_end(&mut bytes))
            .map_err(|e| kms(format!("could not read the local master key file {file}: {}", e.kind())))?;
        Ok(LocalMasterKey::from_text_or_bytes(&bytes)?)
    } else {
        Err(Fail::Arg("the master key must be \"env:NAME\", \"file:PATH\" or a Uint8Array".into()))
    }
}

/// The additional data of DEK `id` (16 bytes) at `version`.
unsafe fn read_aad(env: RawEnv, id: Value, version: Value) -> Res<(Vec<u8>, Version)> {
    let version = unsafe { read_version(env, version)? };
    let id = unsafe { read_bytes(env, id)? };
    if id.len() != 16 {
        return Err(Fail::Arg("a DEK id must be 16 bytes (a UUID)".into()));
    }
    Ok((dek_aad(id, &version), version))
}

unsafe fn buffer(env: RawEnv, bytes: &[u8]) -> Res<Value> {
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_create_buffer_copy(env, bytes.len(), bytes.as_ptr().cast(), ptr::null_mut(), &mut out) })?;
    Ok(out)
}

/// What a DEK is for, so which key ring it goes to.
#[derive(Clone, Copy)]
enum Purpose {
    Encryption,
    Index,
}

unsafe fn read_purpose(env: RawEnv, purpose: Value) -> Res<Purpose> {
    let mut p = Vec::new();
    unsafe { read_utf8(env, purpose, "purpose", &mut p, SCAN_ABOVE_SINGLE)? };
    match &p[..] {
        b"encryption" => Ok(Purpose::Encryption),
        b"index" => Ok(Purpose::Index),
        _ => Err(Fail::Arg("purpose must be \"encryption\" or \"index\"".into())),
    }
}

/// Installs a vault key of `purpose` into its ring.
fn install(state: &State, purpose: Purpose, version: Version, dek: &Dek) -> Res<()> {
    match purpose {
        Purpose::Encryption => install_encryption(state, version, dek),
        Purpose::Index => install_index(state, version, dek),
    }
}

/// A blind-index key: into the vault index ring (a rewrapped or refreshed
/// DEK replaces its own version, with a fresh path key cache).
fn install_index(state: &State, version: Version, dek: &Dek) -> Res<()> {
    if state.index_ring.borrow().contains(&version) {
        return Err(FieldCryptError::IndexKeyVaultConflict(version).into());
    }
    // insert refuses a key equal to a loaded encryption key (KEY_CONFLICT)
    state.vault_index.borrow_mut().insert(version, IndexKey::from_bytes(dek), &state.ring.borrow())?;
    Ok(())
}

/// An encryption key: into the vault set and the key ring.
fn install_encryption(state: &State, version: Version, dek: &Dek) -> Res<()> {
    let mut ring = state.ring.borrow_mut();
    let mut vault = state.vault.borrow_mut();
    if ring.contains(&version) && !vault.contains(&version) {
        return Err(FieldCryptError::KeyVaultConflict(version).into());
    }
    let key = Arc::new(Key::from_bytes(dek));
    // An encryption key may not also be an index key (as for keys from the environment).
    if let Some(index) = state.index_version_with_check(&key.check_block()) {
        return Err(FieldCryptError::IndexKeyConflict { index, encryption: version }.into());
    }
    ring.insert_shared(version, key.clone());
    vault.insert_shared(version, key);
    Ok(())
}

/// `vaultCreateLocal(master, id, version): Buffer` — a new DEK, wrapped.
pub(super) unsafe extern "C" fn vault_create_local(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        super::errors::run(env, || {
            let ([master, id, version], _) = args::<3>(env, info)?;
            let mk = read_master(env, master)?;
            let (aad, _) = read_aad(env, id, version)?;
            buffer(env, &mk.wrap(&generate_dek(), &aad))
        })
    }
}

/// `vaultInstallLocal(purpose, master, wrapped, id, version): void`
pub(super) unsafe extern "C" fn vault_install_local(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        super::errors::run(env, || {
            let ([purpose, master, wrapped, id, version], state) = args::<5>(env, info)?;
            let purpose = read_purpose(env, purpose)?;
            let mk = read_master(env, master)?;
            let (aad, version) = read_aad(env, id, version)?;
            let dek = mk.unwrap(read_bytes(env, wrapped)?, &aad)?;
            install(state, purpose, version, &dek)?;
            undefined(env)
        })
    }
}

/// `vaultVerifyLocal(master, wrapped, id, version): void` — throws unless it unwraps.
pub(super) unsafe extern "C" fn vault_verify_local(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        super::errors::run(env, || {
            let ([master, wrapped, id, version], _) = args::<4>(env, info)?;
            let mk = read_master(env, master)?;
            let (aad, _) = read_aad(env, id, version)?;
            mk.unwrap(read_bytes(env, wrapped)?, &aad)?;
            undefined(env)
        })
    }
}

/// `vaultRewrapLocal(from, to, wrapped, id, version): Buffer` — local to local.
pub(super) unsafe extern "C" fn vault_rewrap_local(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        super::errors::run(env, || {
            let ([from, to, wrapped, id, version], _) = args::<5>(env, info)?;
            let from = read_master(env, from)?;
            let to = read_master(env, to)?;
            let (aad, _) = read_aad(env, id, version)?;
            let dek = from.unwrap(read_bytes(env, wrapped)?, &aad)?;
            buffer(env, &to.wrap(&dek, &aad))
        })
    }
}

/// `vaultUnwrapLocalInto(master, wrapped, id, version, out: Uint8Array(32)): void`
/// — for moving a DEK to another provider, whose `wrap` needs it in JS.
pub(super) unsafe extern "C" fn vault_unwrap_local_into(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        super::errors::run(env, || {
            let ([master, wrapped, id, version, out], _) = args::<5>(env, info)?;
            let mk = read_master(env, master)?;
            let (aad, _) = read_aad(env, id, version)?;
            let dek = mk.unwrap(read_bytes(env, wrapped)?, &aad)?;
            let out = write_bytes(env, out)?;
            if out.len() != KEY_LEN {
                return Err(Fail::Arg("the output must be a 32-byte Uint8Array".into()));
            }
            out.copy_from_slice(dek.as_ref());
            undefined(env)
        })
    }
}

/// Reads a 32-byte DEK from a Uint8Array and zero-fills the array.
unsafe fn take_plain(env: RawEnv, v: Value) -> Res<Dek> {
    let plain = unsafe { write_bytes(env, v)? };
    let mut dek = Zeroizing::new([0u8; KEY_LEN]);
    let ok = plain.len() == KEY_LEN;
    if ok {
        dek.copy_from_slice(plain);
    }
    plain.zeroize();
    if !ok {
        return Err(
            FieldCryptError::Kms(format!("the KMS returned a data key of {} bytes, not 32", plain.len())).into()
        );
    }
    Ok(dek)
}

/// `vaultWrapLocalFrom(master, plain: Uint8Array, id, version): Buffer` —
/// wraps a DEK another provider unwrapped; zero-fills `plain`.
pub(super) unsafe extern "C" fn vault_wrap_local_from(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        super::errors::run(env, || {
            let ([master, plain, id, version], _) = args::<4>(env, info)?;
            let dek = take_plain(env, plain)?;
            let mk = read_master(env, master)?;
            let (aad, _) = read_aad(env, id, version)?;
            buffer(env, &mk.wrap(&dek, &aad))
        })
    }
}

/// `vaultInstall(purpose, version, plain: Uint8Array): void` — installs a
/// DEK another provider unwrapped; zero-fills `plain`, also on failure.
pub(super) unsafe extern "C" fn vault_install(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        super::errors::run(env, || {
            let ([purpose, version, plain], state) = args::<3>(env, info)?;
            let dek = take_plain(env, plain)?;
            let purpose = read_purpose(env, purpose)?;
            let version = read_version(env, version)?;
            install(state, purpose, version, &dek)?;
            undefined(env)
        })
    }
}

/// `vaultGenerateInto(out: Uint8Array(32)): void` — a new DEK for a provider
/// that wraps it in JS (the caller zero-fills `out` after wrapping).
pub(super) unsafe extern "C" fn vault_generate_into(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        super::errors::run(env, || {
            let ([out], _) = args::<1>(env, info)?;
            let out = write_bytes(env, out)?;
            if out.len() != KEY_LEN {
                return Err(Fail::Arg("the output must be a 32-byte Uint8Array".into()));
            }
            out.copy_from_slice(generate_dek().as_ref());
            undefined(env)
        })
    }
}

/// The 64-hex key of environment variable `name` (a key of environment
/// mode, moved into the vault under its own version: nothing is re-encrypted).
unsafe fn env_key(env: RawEnv, name: Value, version: &Version) -> Res<Dek> {
    let mut n = Vec::new();
    unsafe { read_utf8(env, name, "the variable name", &mut n, SCAN_ABOVE_SINGLE)? };
    let n = String::from_utf8_lossy(&n).into_owned();
    let value = Zeroizing::new(
        std::env::var_os(&n)
            .ok_or_else(|| FieldCryptError::KeyVault(format!("{n} is not set: there is no key to import")))?
            .into_encoded_bytes(),
    );
    let hex = value.trim_ascii();
    if hex.len() != crate::keyring::KEY_HEX_LEN {
        return Err(FieldCryptError::InvalidKeyLength { version: *version, len: hex.len() }.into());
    }
    let mut dek = Zeroizing::new([0u8; KEY_LEN]);
    crate::format::decode_hex(hex, dek.as_mut()).map_err(|_| FieldCryptError::InvalidKey(*version))?;
    if dek.iter().all(|&b| b == dek[0]) {
        return Err(FieldCryptError::WeakKey(*version).into());
    }
    Ok(dek)
}

/// `vaultImportLocal(master, variable, id, version): Buffer` — the key of an
/// environment variable, wrapped under a local master key.
pub(super) unsafe extern "C" fn vault_import_local(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        super::errors::run(env, || {
            let ([master, variable, id, version], _) = args::<4>(env, info)?;
            let mk = read_master(env, master)?;
            let (aad, v) = read_aad(env, id, version)?;
            let dek = env_key(env, variable, &v)?;
            buffer(env, &mk.wrap(&dek, &aad))
        })
    }
}

/// `vaultImportInto(variable, version, out: Uint8Array(32)): void` — the same
/// for a provider that wraps in JS (the caller zero-fills `out`).
pub(super) unsafe extern "C" fn vault_import_into(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        super::errors::run(env, || {
            let ([variable, version, out], _) = args::<3>(env, info)?;
            let version = read_version(env, version)?;
            let dek = env_key(env, variable, &version)?;
            let out = write_bytes(env, out)?;
            if out.len() != KEY_LEN {
                return Err(Fail::Arg("the output must be a 32-byte Uint8Array".into()));
            }
            out.copy_from_slice(dek.as_ref());
            undefined(env)
        })
    }
}

/// `vaultForget(version): void` — drops a vault key (retired, or no longer in the vault).
pub(super) unsafe extern "C" fn vault_forget(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        super::errors::run(env, || {
            let ([version], state) = args::<1>(env, info)?;
            let version = read_version(env, version)?;
            if state.vault.borrow_mut().remove(&version) {
                state.ring.borrow_mut().remove(&version);
            }
            undefined(env)
        })
    }
}

/// `vaultForgetIndex(version): void` — drops a vault index key and its
/// cached path keys (zeroized); an index key from elsewhere is not touched.
pub(super) unsafe extern "C" fn vault_forget_index(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        super::errors::run(env, || {
            let ([version], state) = args::<1>(env, info)?;
            let version = read_version(env, version)?;
            state.vault_index.borrow_mut().remove(&version);
            undefined(env)
        })
    }
}

/// `vaultVersions(): string[]` — the versions installed from a vault.
pub(super) unsafe extern "C" fn vault_versions(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        super::errors::run(env, || {
            let ([], state) = args::<0>(env, info)?;
            let versions = state.vault.borrow().versions();
            let arr = new_array(env, versions.len())?;
            for (i, v) in versions.iter().enumerate() {
                if sys::napi_set_element(env, arr, i as u32, latin1(env, v)?) != OK {
                    return Err(Fail::Napi);
                }
            }
            Ok(arr)
        })
    }
}
