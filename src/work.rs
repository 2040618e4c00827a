//! The seal and open steps every call shares, single values and batches
//! alike, on the JS thread or the thread pool, and what binding a value to
//! its context means.
//!
//! Plain Rust over [`crate::cipher`]: nothing here knows napi. Plaintext
//! buffers belong to the caller, which wipes them (`seal` encrypts its
//! input in place, so the caller's buffer holds ciphertext afterwards).

use zeroize::Zeroize;

use crate::cipher;
use crate::error::{FieldCryptError, Version};
use crate::keyring::Keyring;

/// The context a value is bound to: AES-GCM additional data (the canonical
/// encoding JS builds, see `lib/core/context.js`), empty for an unbound
/// value. What must stay true:
/// * a value sealed with a context opens only with the same context;
/// * with a context, an unbound value opens only where `allow_unbound` says
///   so (a migration window); otherwise it fails with
///   [`FieldCryptError::UnboundValue`], so that an unbound ciphertext cannot
///   stand in for a bound one;
/// * a bound value opened with another context (or none) fails with
///   [`FieldCryptError::ContextMismatch`] where a context was given, and
///   [`FieldCryptError::AuthenticationFailed`] where none was, never giving
///   its plaintext.
#[derive(Clone, Copy, Default, Debug)]
pub struct Context<'a> {
    pub aad: &'a [u8],
    pub allow_unbound: bool,
}

impl Context<'_> {
    /// Bound to nothing: values as the original implementation wrote them.
    #[cfg(test)]
    pub const NONE: Context<'static> = Context { aad: b"", allow_unbound: false };
}

/// Decrypts a stored value (the bytes read from the JS string; `ascii` as
/// returned by the N-API layer's `read_ascii`: false if the JS string was
/// not ASCII, which no stored value can be) into `out`, under `context`.
pub(crate) fn open(
    ring: &Keyring,
    stored: &[u8],
    ascii: bool,
    context: Context,
    out: &mut Vec<u8>,
) -> Result<(), FieldCryptError> {
    if !ascii {
        return Err(FieldCryptError::InvalidFormat);
    }
    match cipher::decrypt_into(ring, stored, context.aad, out) {
        Err(FieldCryptError::AuthenticationFailed(v)) if !context.aad.is_empty() => {
            // Not this context's value: an unbound one, or another's.
            match cipher::decrypt_into(ring, stored, b"", out) {
                Ok(()) if context.allow_unbound => Ok(()),
                Ok(()) => {
                    out.zeroize();
                    Err(FieldCryptError::UnboundValue(v))
                }
                Err(FieldCryptError::AuthenticationFailed(_)) => Err(FieldCryptError::ContextMismatch(v)),
                Err(e) => Err(e),
            }
        }
        other => other,
    }
}

/// [`open`], checking that the plaintext is UTF-8 text.
pub(crate) fn open_text(
    ring: &Keyring,
    stored: &[u8],
    ascii: bool,
    context: Context,
    out: &mut Vec<u8>,
) -> Result<(), FieldCryptError> {
    open(ring, stored, ascii, context, out)?;
    cipher::utf8(out).map(|_| ())
}

/// Encrypts `plaintext` (a scratch buffer, encrypted in place) under
/// `version`, bound to `context.aad`, appending the stored value to `out`.
pub(crate) fn seal(
    ring: &Keyring,
    version: &Version,
    context: Context,
    plaintext: &mut [u8],
    out: &mut Vec<u8>,
) -> Result<(), FieldCryptError> {
    cipher::encrypt_into(ring.get(version)?, version, context.aad, plaintext, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn sealed(ring: &Keyring, aad: &[u8], text: &str) -> Vec<u8> {
        let mut buf = text.as_bytes().to_vec();
        let mut out = Vec::new();
        seal(ring, b"01", Context { aad, allow_unbound: false }, &mut buf, &mut out).unwrap();
        out
    }

    fn opened(ring: &Keyring, stored: &[u8], aad: &[u8], allow_unbound: bool) -> Result<String, FieldCryptError> {
        let mut out = Vec::new();
        open_text(ring, stored, true, Context { aad, allow_unbound }, &mut out)?;
        Ok(String::from_utf8(out).unwrap())
    }

    #[test]
    fn bound_values_open_only_in_their_context() {
        let ring = Keyring::from_hex_pairs([("01", K1)]).unwrap();
        let here = b"patients/ssn/1";
        let bound = sealed(&ring, here, "123-45-6789");
        assert_eq!(opened(&ring, &bound, here, false).unwrap(), "123-45-6789");
        assert_eq!(opened(&ring, &bound, here, true).unwrap(), "123-45-6789");
        for elsewhere in [&b"patients/ssn/2"[..], b"patients/card/1", b"staff/ssn/1"] {
            assert_eq!(opened(&ring, &bound, elsewhere, false), Err(FieldCryptError::ContextMismatch(*b"01")));
            assert_eq!(opened(&ring, &bound, elsewhere, true), Err(FieldCryptError::ContextMismatch(*b"01")));
        }
        // Read with no context at all, a bound value is an authentication failure.
        assert_eq!(opened(&ring, &bound, b"", false), Err(FieldCryptError::AuthenticationFailed(*b"01")));
    }

    #[test]
    fn unbound_values_open_in_a_context_only_where_allowed() {
        let ring = Keyring::from_hex_pairs([("01", K1)]).unwrap();
        let unbound = sealed(&ring, b"", "123-45-6789");
        assert_eq!(opened(&ring, &unbound, b"", false).unwrap(), "123-45-6789");
        assert_eq!(opened(&ring, &unbound, b"patients/ssn/1", false), Err(FieldCryptError::UnboundValue(*b"01")));
        assert_eq!(opened(&ring, &unbound, b"patients/ssn/1", true).unwrap(), "123-45-6789");
    }

    #[test]
    fn a_refused_unbound_value_leaves_no_plaintext_behind() {
        let ring = Keyring::from_hex_pairs([("01", K1)]).unwrap();
        let unbound = sealed(&ring, b"", "123-45-6789");
        let mut out = Vec::with_capacity(64);
        let err = open(&ring, &unbound, true, Context { aad: b"x", allow_unbound: false }, &mut out);
        assert_eq!(err, Err(FieldCryptError::UnboundValue(*b"01")));
        assert!(out.is_empty());
        // SAFETY: reads the buffer's spare capacity, which zeroize wiped.
        let spare = unsafe { std::slice::from_raw_parts(out.as_ptr(), 11) };
        assert!(spare.iter().all(|&b| b == 0), "the plaintext was wiped");
    }

    #[test]
    fn other_failures_keep_their_errors_in_a_context() {
        let ring = Keyring::from_hex_pairs([("01", K1)]).unwrap();
        let ctx = Context { aad: b"patients/ssn/1", allow_unbound: true };
        let mut out = Vec::new();
        assert_eq!(open(&ring, b"nope", true, ctx, &mut out), Err(FieldCryptError::InvalidFormat));
        let mut other = sealed(&ring, b"", "x");
        other[1] = b'2';
        assert_eq!(open(&ring, &other, true, ctx, &mut out), Err(FieldCryptError::KeyNotFound(*b"02")));
    }
}
