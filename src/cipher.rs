//! AES-256-GCM over the stored format, with 16-byte IVs.
//!
//! `node:crypto` accepts a 16-byte IV for GCM and derives the initial counter
//! block with GHASH (NIST SP 800-38D, IVs other than 96 bits); `AesGcm<Aes256,
//! U16>` does the same, so values are byte-compatible both ways. There is no
//! additional authenticated data, as in the original implementation.

use aes_gcm::aead::AeadInOut;
use aes_gcm::{Nonce, Tag};
use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::{FieldCryptError, Result, Version};
use crate::format::{self, Envelope, IV_LEN, TAG_LEN};
use crate::keyring::Key;

/// A fresh random IV from the thread-local CSPRNG (ChaCha, seeded and
/// periodically reseeded from the operating system).
pub fn random_iv() -> [u8; IV_LEN] {
    let mut iv = [0u8; IV_LEN];
    rand::rng().fill_bytes(&mut iv);
    iv
}

/// Encrypts `buf` in place under `iv`, returning the tag.
pub fn seal_in_place(key: &Key, iv: &[u8; IV_LEN], buf: &mut [u8]) -> Result<[u8; TAG_LEN]> {
    let tag = key
        .cipher
        .encrypt_inout_detached(&Nonce::from(*iv), b"", buf.into())
        .map_err(|_| FieldCryptError::TooLarge)?;
    Ok(tag.into())
}

/// Decrypts `buf` in place after checking `tag`. On failure `buf` is left
/// as it was (aes-gcm checks the tag before decrypting).
pub fn open_in_place(key: &Key, version: &Version, iv: &[u8; IV_LEN], tag: &[u8; TAG_LEN], buf: &mut [u8]) -> Result<()> {
    key.cipher
        .decrypt_inout_detached(&Nonce::from(*iv), b"", buf.into(), &Tag::from(*tag))
        .map_err(|_| FieldCryptError::AuthenticationFailed(*version))
}

/// Encrypts bytes into a stored value under a fresh random IV.
pub fn encrypt(key: &Key, version: &Version, plaintext: &[u8]) -> Result<String> {
    encrypt_with_iv(key, version, &random_iv(), plaintext)
}

/// Encrypts a buffer the caller owns, in place (it holds ciphertext
/// afterwards), appending the stored value (ASCII) to `out`, under a fresh
/// random IV. Saves a copy and an allocation on the hot path.
pub fn encrypt_into(key: &Key, version: &Version, buf: &mut [u8], out: &mut Vec<u8>) -> Result<()> {
    let iv = random_iv();
    let tag = seal_in_place(key, &iv, buf)?;
    format::serialize_into(version, &iv, &tag, buf, out);
    Ok(())
}

/// Encrypts with a caller-chosen IV. Only for test vectors: reusing an IV
/// under one key destroys GCM's security.
pub fn encrypt_with_iv(key: &Key, version: &Version, iv: &[u8; IV_LEN], plaintext: &[u8]) -> Result<String> {
    let mut buf = plaintext.to_vec();
    let tag = seal_in_place(key, iv, &mut buf)?;
    Ok(format::serialize(version, iv, &tag, &buf))
}

/// Decrypts a parsed stored value to bytes, in a buffer zeroized on drop.
pub fn decrypt_envelope(key: &Key, env: Envelope) -> Result<Zeroizing<Vec<u8>>> {
    let Envelope { version, iv, tag, ciphertext } = env;
    let mut buf = Zeroizing::new(ciphertext);
    open_in_place(key, &version, &iv, &tag, &mut buf)?;
    Ok(buf)
}

/// Parses a stored value and decrypts it into `buf` (cleared first; a
/// caller-owned buffer saves an allocation). `ring` supplies the key of the
/// value's version.
pub fn decrypt_into(ring: &crate::keyring::Keyring, stored: &[u8], buf: &mut Vec<u8>) -> Result<()> {
    let (version, iv, tag) = format::parse_into(stored, buf)?;
    let key = ring.get(&version)?;
    open_in_place(key, &version, &iv, &tag, buf)
}

/// Checks that decrypted bytes are UTF-8 text.
pub fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| FieldCryptError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::Keyring;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

    fn ring() -> Keyring {
        Keyring::from_hex_pairs([("01", K1), ("02", K2)]).unwrap()
    }

    fn decrypt_str(ring: &Keyring, s: &str) -> Result<String> {
        let env = format::parse(s)?;
        let key = ring.get(&env.version)?.clone();
        let bytes = decrypt_envelope(&key, env)?;
        Ok(utf8(&bytes)?.to_owned())
    }

    #[test]
    fn round_trips_text() {
        let ring = ring();
        for pt in ["", "A1234567", "ünïcödé 日本語", "emoji 🛂🪪", "nul\0inside", &"x".repeat(100_000)] {
            let s = encrypt(ring.get(b"01").unwrap(), b"01", pt.as_bytes()).unwrap();
            assert!(format::is_well_formed(&s));
            assert_eq!(&s[..3], "01:");
            assert_eq!(s.len(), 2 + 1 + 32 + 1 + 32 + 1 + pt.len() * 2);
            assert_eq!(decrypt_str(&ring, &s).unwrap(), pt);
        }
    }

    #[test]
    fn known_answer_matches_node_crypto() {
        // Produced by node:crypto: createCipheriv('aes-256-gcm', K1, iv16) with
        // iv = 00..0f, plaintext "A1234567".
        let ring = ring();
        let iv: [u8; 16] = core::array::from_fn(|i| i as u8);
        let s = encrypt_with_iv(ring.get(b"01").unwrap(), b"01", &iv, b"A1234567").unwrap();
        assert_eq!(s, NODE_KAT);
        assert_eq!(decrypt_str(&ring, NODE_KAT).unwrap(), "A1234567");
    }
    const NODE_KAT: &str = "01:000102030405060708090a0b0c0d0e0f:53bccad86bf07da7959fb62e17a77241:265d92450dd17c1f";

    #[test]
    fn every_flipped_bit_is_rejected() {
        let ring = ring();
        let s = encrypt(ring.get(b"01").unwrap(), b"01", b"123-45-6789").unwrap();
        let env = format::parse(&s).unwrap();
        for field in 0..3 {
            let len = [IV_LEN, TAG_LEN, env.ciphertext.len()][field];
            for byte in 0..len {
                for bit in 0..8 {
                    let mut e = env.clone();
                    let target = match field {
                        0 => &mut e.iv[byte],
                        1 => &mut e.tag[byte],
                        _ => &mut e.ciphertext[byte],
                    };
                    *target ^= 1 << bit;
                    assert_eq!(
                        decrypt_envelope(ring.get(b"01").unwrap(), e).unwrap_err(),
                        FieldCryptError::AuthenticationFailed(*b"01")
                    );
                }
            }
        }
    }

    #[test]
    fn wrong_key_is_an_authentication_failure() {
        let ring = ring();
        let s = encrypt(ring.get(b"01").unwrap(), b"01", b"secret").unwrap();
        let env = format::parse(&s).unwrap();
        assert_eq!(
            decrypt_envelope(ring.get(b"02").unwrap(), env).unwrap_err(),
            FieldCryptError::AuthenticationFailed(*b"01")
        );
    }

    #[test]
    fn ivs_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100_000 {
            assert!(seen.insert(random_iv()));
        }
    }

    #[test]
    fn binary_plaintext_is_not_text() {
        let ring = ring();
        let s = encrypt(ring.get(b"01").unwrap(), b"01", &[0xff, 0xfe]).unwrap();
        assert_eq!(decrypt_str(&ring, &s).unwrap_err(), FieldCryptError::NotUtf8);
    }
}
