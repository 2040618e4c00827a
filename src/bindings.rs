//! The N-API surface. The only module that knows napi: it converts arguments,
//! calls the plain-Rust modules and maps [`FieldCryptError`] to JS errors
//! whose `code` is the error's stable code.
//!
//! The JS glue in `lib/` validates argument types before calling in here, so
//! napi's own conversion errors (whose messages quote the offending value)
//! are never reached with user data.

use std::collections::HashMap;
use std::ptr;

use napi::bindgen_prelude::{Buffer, ToNapiValue, TypeName, ValueType};
use napi::sys;
use napi_derive::napi;
use zeroize::Zeroizing;

use crate::cipher;
use crate::error::FieldCryptError;
use crate::format;
use crate::keyring::{Key, Keyring};

type Result<T> = std::result::Result<T, napi::Error<&'static str>>;

fn js_err(e: FieldCryptError) -> napi::Error<&'static str> {
    napi::Error::new(e.code(), e.to_string())
}

/// Decrypted text, returned to JS as a string; the Rust copy is zeroized when
/// dropped. (The JS string itself cannot be zeroized.)
pub struct SecretText(Zeroizing<Vec<u8>>);

impl TypeName for SecretText {
    fn type_name() -> &'static str {
        "string"
    }
    fn value_type() -> ValueType {
        ValueType::String
    }
}

impl ToNapiValue for SecretText {
    unsafe fn to_napi_value(env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        let mut out = ptr::null_mut();
        let status =
            unsafe { sys::napi_create_string_utf8(env, val.0.as_ptr().cast(), val.0.len() as isize, &mut out) };
        if status != sys::Status::napi_ok {
            return Err(napi::Error::new(napi::Status::GenericFailure, "could not create a string"));
        }
        Ok(out)
    }
}

/// A set of keys by version. Key material never leaves this object.
#[napi]
pub struct NativeKeyring {
    ring: Keyring,
}

impl NativeKeyring {
    fn key(&self, version: &str) -> Result<(&Key, [u8; 2])> {
        let v = format::parse_version(version).map_err(js_err)?;
        Ok((self.ring.get(&v).map_err(js_err)?, v))
    }

    fn open(&self, data: &str) -> Result<Zeroizing<Vec<u8>>> {
        let env = format::parse(data).map_err(js_err)?;
        let key = self.ring.get(&env.version).map_err(js_err)?;
        cipher::decrypt_envelope(key, env).map_err(js_err)
    }
}

#[napi]
impl NativeKeyring {
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        NativeKeyring { ring: Keyring::new() }
    }

    /// Replaces every key at once from `{ version: hexKey }`; on any invalid
    /// version or key nothing changes.
    #[napi]
    pub fn replace(&mut self, keys: HashMap<String, String>) -> Result<()> {
        let keys: Vec<(String, Zeroizing<String>)> = keys.into_iter().map(|(v, k)| (v, Zeroizing::new(k))).collect();
        let ring = Keyring::from_hex_pairs(keys.iter().map(|(v, k)| (v.as_str(), k.as_str()))).map_err(js_err)?;
        self.ring = ring;
        Ok(())
    }

    /// Adds (or replaces) one key version.
    #[napi]
    pub fn add(&mut self, version: String, hex_key: String) -> Result<()> {
        let hex_key = Zeroizing::new(hex_key);
        let v = format::parse_version(&version).map_err(js_err)?;
        let key = Key::from_hex(&v, &hex_key).map_err(js_err)?;
        self.ring.insert(v, key);
        Ok(())
    }

    #[napi]
    pub fn has(&self, version: String) -> Result<bool> {
        let v = format::parse_version(&version).map_err(js_err)?;
        Ok(self.ring.contains(&v))
    }

    /// Loaded versions, ascending.
    #[napi]
    pub fn versions(&self) -> Vec<String> {
        self.ring.versions().iter().map(|v| String::from_utf8_lossy(v).into_owned()).collect()
    }

    #[napi]
    pub fn clear(&mut self) {
        self.ring.clear();
    }

    /// Encrypts UTF-8 text under `version`.
    #[napi]
    pub fn encrypt(&self, plaintext: String, version: String) -> Result<String> {
        let plaintext = Zeroizing::new(plaintext);
        let (key, v) = self.key(&version)?;
        cipher::encrypt(key, &v, plaintext.as_bytes()).map_err(js_err)
    }

    /// Decrypts a stored value to UTF-8 text.
    #[napi]
    pub fn decrypt(&self, data: String) -> Result<SecretText> {
        let bytes = self.open(&data)?;
        cipher::utf8(&bytes).map_err(js_err)?;
        Ok(SecretText(bytes))
    }

    /// Encrypts bytes (a Buffer or Uint8Array) under `version`. The bytes are
    /// copied before use.
    #[napi]
    pub fn encrypt_bytes(&self, plaintext: &[u8], version: String) -> Result<String> {
        let (key, v) = self.key(&version)?;
        cipher::encrypt(key, &v, plaintext).map_err(js_err)
    }

    /// Decrypts a stored value to bytes.
    #[napi]
    pub fn decrypt_bytes(&self, data: String) -> Result<Buffer> {
        let bytes = self.open(&data)?;
        Ok(Buffer::from(bytes.to_vec()))
    }

    /// Decrypts under the stored version and encrypts under `version`; the
    /// plaintext never reaches JS.
    #[napi]
    pub fn re_encrypt(&self, data: String, version: String) -> Result<String> {
        let (key, v) = self.key(&version)?;
        let bytes = self.open(&data)?;
        cipher::encrypt(key, &v, &bytes).map_err(js_err)
    }
}

/// True when `value` is a well-formed stored value.
#[napi]
pub fn is_well_formed(value: String) -> bool {
    format::is_well_formed(&value)
}

/// The two-digit key version of a stored value.
#[napi]
pub fn key_version_of(data: String) -> Result<String> {
    let v = format::version_of(&data).map_err(js_err)?;
    Ok(String::from_utf8_lossy(&v).into_owned())
}
