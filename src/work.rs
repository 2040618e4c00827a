//! The seal and open steps every call shares, single values and batches
//! alike, on the JS thread or the thread pool.
//!
//! Plain Rust over [`crate::cipher`]: nothing here knows napi. Plaintext
//! buffers belong to the caller, which wipes them (`seal` encrypts its
//! input in place, so the caller's buffer holds ciphertext afterwards).

use crate::cipher;
use crate::error::{FieldCryptError, Version};
use crate::keyring::Keyring;

/// Decrypts a stored value (the bytes read from the JS string; `ascii` as
/// returned by the N-API layer's `read_ascii`: false if the JS string was
/// not ASCII, which no stored value can be) into `out`.
pub(crate) fn open(ring: &Keyring, stored: &[u8], ascii: bool, out: &mut Vec<u8>) -> Result<(), FieldCryptError> {
    if !ascii {
        return Err(FieldCryptError::InvalidFormat);
    }
    cipher::decrypt_into(ring, stored, out)
}

/// [`open`], checking that the plaintext is UTF-8 text.
pub(crate) fn open_text(ring: &Keyring, stored: &[u8], ascii: bool, out: &mut Vec<u8>) -> Result<(), FieldCryptError> {
    open(ring, stored, ascii, out)?;
    cipher::utf8(out).map(|_| ())
}

/// Encrypts `plaintext` (a scratch buffer, encrypted in place) under
/// `version`, appending the stored value to `out`.
pub(crate) fn seal(
    ring: &Keyring,
    version: &Version,
    plaintext: &mut [u8],
    out: &mut Vec<u8>,
) -> Result<(), FieldCryptError> {
    cipher::encrypt_into(ring.get(version)?, version, plaintext, out)
}
