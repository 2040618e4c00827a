//! Data keys (DEKs) of the key vault: generating them, and wrapping them
//! under a `local` master key.
//!
//! A DEK is 32 random bytes from the OS. Under the `local` provider it is
//! stored wrapped with AES-256-GCM (12-byte nonce) under a wrapping key
//! derived from the master key with HKDF-SHA256, so that the 96-byte keys
//! CSFLE users already have and 32-byte keys both work. The additional data
//! is the DEK's id and key version (see [`dek_aad`]): a wrapped key copied to
//! another vault document does not unwrap there.
//!
//! Invariants: DEK and master key bytes live only in zeroizing buffers and
//! are never returned to a caller outside this crate except as a [`Key`]
//! (which has no accessor). Errors never contain key bytes.

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Aes256Gcm, KeyInit, Nonce, Tag};
use rand::TryRngCore;
use zeroize::Zeroizing;

use crate::error::{FieldCryptError, Result};
use crate::keyring::KEY_LEN;

/// Wrapped DEK layout: format byte, nonce, ciphertext, tag.
const FORMAT: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
pub const WRAPPED_LEN: usize = 1 + NONCE_LEN + KEY_LEN + TAG_LEN;

/// The domain of the wrapping key's derivation; changing it orphans every wrapped key.
const HKDF_INFO: &[u8] = b"fieldcrypt key vault local master key v1";

/// A DEK's bytes.
pub type Dek = Zeroizing<[u8; KEY_LEN]>;

/// Fills `out` from the OS generator.
fn random(out: &mut [u8]) {
    if rand::rngs::OsRng.try_fill_bytes(out).is_err() {
        panic!("fieldcrypt: the operating system's random generator failed");
    }
}

/// A new random DEK.
pub fn generate_dek() -> Dek {
    let mut dek = Zeroizing::new([0u8; KEY_LEN]);
    random(dek.as_mut());
    // A DEK of one repeated byte would be refused when loaded from text; the
    // OS generator does not produce one in practice, but do not store one.
    while dek.iter().all(|&b| b == dek[0]) {
        random(dek.as_mut());
    }
    dek
}

/// The additional data a DEK is wrapped with: its 16-byte id and its version.
pub fn dek_aad(id: &[u8], version: &[u8; 2]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(id.len() + 2);
    aad.extend_from_slice(id);
    aad.extend_from_slice(version);
    aad
}

/// A `local` master key, as its derived wrapping key.
pub struct LocalMasterKey {
    cipher: Aes256Gcm,
}

impl LocalMasterKey {
    /// From the master key's bytes: 96 (CSFLE's local key size) or 32.
    pub fn from_bytes(raw: &[u8]) -> Result<Self> {
        if raw.len() != 96 && raw.len() != 32 {
            return Err(FieldCryptError::Kms(format!(
                "the local master key must be 96 or 32 bytes (generate one with `openssl rand -base64 96`), got {} bytes",
                raw.len()
            )));
        }
        if raw.iter().all(|&b| b == raw[0]) {
            return Err(FieldCryptError::Kms(
                "the local master key is one repeated byte (a placeholder); generate one with `openssl rand -base64 96`"
                    .into(),
            ));
        }
        let mut okm = Zeroizing::new([0u8; 32]);
        hkdf::Hkdf::<sha2::Sha256>::new(None, raw)
            .expand(HKDF_INFO, okm.as_mut())
            .map_err(|_| FieldCryptError::Kms("could not derive the wrapping key".into()))?;
        let cipher = Aes256Gcm::new_from_slice(okm.as_ref()).expect("a 32-byte key");
        Ok(LocalMasterKey { cipher })
    }

    /// From the text of an environment variable or file: hex (64 or 192
    /// characters) or base64 (44 or 128 characters), surrounding whitespace
    /// ignored; or, for a file, the raw 96 or 32 bytes.
    pub fn from_text_or_bytes(raw: &[u8]) -> Result<Self> {
        if raw.len() == 96 || raw.len() == 32 {
            // Raw bytes (a hex or base64 key is never 96 or 32 characters long).
            return Self::from_bytes(raw);
        }
        let text = raw.trim_ascii();
        let mut bytes = Zeroizing::new(Vec::new());
        if (text.len() == 64 || text.len() == 192) && text.iter().all(u8::is_ascii_hexdigit) {
            bytes.resize(text.len() / 2, 0);
            crate::format::decode_hex(text, &mut bytes)
                .map_err(|_| FieldCryptError::Kms("the local master key is not valid hex".into()))?;
        } else {
            decode_base64(text, &mut bytes)?;
        }
        Self::from_bytes(&bytes)
    }

    /// Wraps `dek` for the document whose additional data is `aad`.
    pub fn wrap(&self, dek: &[u8; KEY_LEN], aad: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; WRAPPED_LEN];
        out[0] = FORMAT;
        let mut nonce = [0u8; NONCE_LEN];
        random(&mut nonce);
        out[1..1 + NONCE_LEN].copy_from_slice(&nonce);
        let nonce = Nonce::from(nonce);
        let body = &mut out[1 + NONCE_LEN..1 + NONCE_LEN + KEY_LEN];
        body.copy_from_slice(dek);
        let tag = self.cipher.encrypt_inout_detached(&nonce, aad, body.into()).expect("a 32-byte message always seals");
        out[1 + NONCE_LEN + KEY_LEN..].copy_from_slice(&tag);
        out
    }

    /// Unwraps a DEK wrapped by [`LocalMasterKey::wrap`] with the same master key and `aad`.
    pub fn unwrap(&self, wrapped: &[u8], aad: &[u8]) -> Result<Dek> {
        if wrapped.len() != WRAPPED_LEN || wrapped[0] != FORMAT {
            return Err(FieldCryptError::KeyVault(
                "the DEK's keyMaterial is not a key wrapped by the local provider (wrong length or format)".into(),
            ));
        }
        let nonce = Nonce::from(<[u8; NONCE_LEN]>::try_from(&wrapped[1..1 + NONCE_LEN]).expect("nonce length"));
        let mut dek = Zeroizing::new([0u8; KEY_LEN]);
        dek.copy_from_slice(&wrapped[1 + NONCE_LEN..1 + NONCE_LEN + KEY_LEN]);
        let tag = Tag::from(<[u8; TAG_LEN]>::try_from(&wrapped[1 + NONCE_LEN + KEY_LEN..]).expect("tag length"));
        self.cipher.decrypt_inout_detached(&nonce, aad, dek.as_mut_slice().into(), &tag).map_err(|_| {
            FieldCryptError::Kms(
                "the local master key could not unwrap the DEK: it is not the master key the DEK was wrapped with, \
                 or the key vault document was modified"
                    .into(),
            )
        })?;
        Ok(dek)
    }
}

/// Standard base64 (with or without padding) into `out`.
fn decode_base64(text: &[u8], out: &mut Zeroizing<Vec<u8>>) -> Result<()> {
    let bad = || FieldCryptError::Kms("the local master key is neither hex nor base64 of 96 or 32 bytes".into());
    let text = text.strip_suffix(b"==").or_else(|| text.strip_suffix(b"=")).unwrap_or(text);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for &c in text {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return Err(bad()),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(n: usize) -> LocalMasterKey {
        LocalMasterKey::from_bytes(&(0..n as u8).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn wraps_and_unwraps_with_both_key_sizes() {
        for n in [96, 32] {
            let mk = master(n);
            let dek = generate_dek();
            let aad = dek_aad(&[7u8; 16], b"02");
            let wrapped = mk.wrap(&dek, &aad);
            assert_eq!(wrapped.len(), WRAPPED_LEN);
            assert!(!wrapped.windows(8).any(|w| dek.windows(8).any(|d| d == w)));
            assert_eq!(*mk.unwrap(&wrapped, &aad).unwrap(), *dek);
        }
    }

    #[test]
    fn refuses_other_ids_versions_master_keys_and_changes() {
        let mk = master(96);
        let dek = generate_dek();
        let aad = dek_aad(&[7u8; 16], b"02");
        let wrapped = mk.wrap(&dek, &aad);
        let kms = |r: Result<Dek>| matches!(r, Err(FieldCryptError::Kms(_)));
        assert!(kms(mk.unwrap(&wrapped, &dek_aad(&[8u8; 16], b"02"))));
        assert!(kms(mk.unwrap(&wrapped, &dek_aad(&[7u8; 16], b"03"))));
        assert!(kms(master(32).unwrap(&wrapped, &aad)));
        for i in 1..WRAPPED_LEN {
            let mut bad = wrapped.clone();
            bad[i] ^= 1;
            assert!(kms(mk.unwrap(&bad, &aad)), "byte {i}");
        }
        assert!(matches!(mk.unwrap(&wrapped[1..], &aad), Err(FieldCryptError::KeyVault(_))));
    }

    #[test]
    fn reads_hex_base64_and_raw_master_keys_alike() {
        let raw: Vec<u8> = (0..96u8).map(|b| b.wrapping_mul(37)).collect();
        let hex_text = hex::encode(&raw);
        let b64 = "ACVKb5S53gMoTXKXvOEGK1B1mr/kCS5TeJ3C5wwxVnugxeoPNFl+o8jtEjdcgabL8BU6X4Sp".to_string()
            + "zvMYPWKHrNH2G0Bliq/U+R5DaI2y1/whRmuQtdr/JEluk7jdAidMcZa7";
        let dek = generate_dek();
        let aad = dek_aad(&[1u8; 16], b"01");
        let wrapped = LocalMasterKey::from_bytes(&raw).unwrap().wrap(&dek, &aad);
        for text in [hex_text.clone(), format!("  {hex_text}\n"), b64] {
            let mk = LocalMasterKey::from_text_or_bytes(text.as_bytes()).unwrap();
            assert_eq!(*mk.unwrap(&wrapped, &aad).unwrap(), *dek, "{text}");
        }
        assert!(LocalMasterKey::from_text_or_bytes(&raw).is_ok());
        for bad in [&b"not a key"[..], &[0u8; 96][..], &[1u8; 31][..]] {
            let e = LocalMasterKey::from_text_or_bytes(bad).err().unwrap();
            assert_eq!(e.code(), "ERR_FIELDCRYPT_KMS");
        }
    }

    #[test]
    fn generated_keys_differ() {
        assert_ne!(*generate_dek(), *generate_dek());
    }
}
