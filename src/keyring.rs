//! Key versions and key material.
//!
//! A [`Keyring`] maps two-digit versions (`01`..`99`) to AES-256 keys. Key
//! bytes are decoded into zeroizing buffers, expanded into the cipher's key
//! schedule and never handed back out: there is no accessor for them. The
//! cipher state is zeroized when a key is dropped (the `zeroize` feature of
//! aes-gcm, aes and ghash, and the CLMUL code's own drop), which happens
//! when a keyring is replaced or cleared.

use std::sync::Arc;

use aes_gcm::aead::consts::U16;
use aes_gcm::aes::cipher::BlockCipherEncrypt;
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, KeyInit};
use zeroize::Zeroizing;

use crate::clmul::Ghash;
use crate::error::{FieldCryptError, Result, Version};

/// AES-256-GCM with the 16-byte IV the stored format uses.
pub type Aes256Gcm16 = AesGcm<Aes256, U16>;

pub const KEY_LEN: usize = 32;
pub const KEY_HEX_LEN: usize = KEY_LEN * 2;

/// One AES-256 key, ready to use.
///
/// It holds the key's AES key schedule and GHASH key (`H = AES_K(0^128)`,
/// ready for [`crate::clmul::Ghash`]) for [`crate::cipher`]'s own paths, and
/// aes-gcm's cipher for long values where the CPU lacks CLMUL.
pub struct Key {
    pub(crate) cipher: Aes256Gcm16,
    pub(crate) aes: Aes256,
    pub(crate) ghash: Ghash,
}

impl Key {
    /// Builds a key from 64 hex characters. `version` only labels errors.
    pub fn from_hex(version: &Version, hex_key: &str) -> Result<Self> {
        Self::from_hex_bytes(version, hex_key.as_bytes())
    }

    /// [`Key::from_hex`] over the bytes of the hex text.
    pub fn from_hex_bytes(version: &Version, hex_key: &[u8]) -> Result<Self> {
        Ok(Self::from_bytes(&*key_bytes_from_hex(version, hex_key)?))
    }

    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        let aes = Aes256::new(bytes.into());
        let mut h = Zeroizing::new([0u8; 16]);
        aes.encrypt_block((&mut *h).into());
        let ghash = Ghash::new(&h);
        Key { cipher: Aes256Gcm16::new(bytes.into()), aes, ghash }
    }

    /// [`check_block`] of this key.
    pub fn check_block(&self) -> Zeroizing<[u8; 16]> {
        let mut block = Zeroizing::new([0u8; 16]);
        self.aes.encrypt_block((&mut *block).into());
        block
    }
}

/// The 32 key bytes of 64 hex characters (either case), refusing a wrong
/// length, a non-hex character and a weak key; shared by encryption keys
/// and index keys (src/index_keys.rs). `version` only labels errors.
pub fn key_bytes_from_hex(version: &Version, hex_key: &[u8]) -> Result<Zeroizing<[u8; KEY_LEN]>> {
    if hex_key.len() != KEY_HEX_LEN {
        return Err(FieldCryptError::InvalidKeyLength { version: *version, len: hex_key.len() });
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    crate::format::decode_hex(hex_key, bytes.as_mut()).map_err(|_| FieldCryptError::InvalidKey(*version))?;
    if is_weak(&bytes) {
        return Err(FieldCryptError::WeakKey(*version));
    }
    Ok(bytes)
}

/// `AES_K(0^128)`: tells whether two keys are the same key without keeping
/// either's bytes (AES under distinct keys gives the same block with
/// probability 2^-128). For an encryption key this is its GHASH key, which it
/// holds anyway; it is only ever compared, never written anywhere.
pub fn check_block(bytes: &[u8; KEY_LEN]) -> Zeroizing<[u8; 16]> {
    let mut block = Zeroizing::new([0u8; 16]);
    Aes256::new(bytes.into()).encrypt_block((&mut *block).into());
    block
}

/// Compares two check blocks without an early exit.
pub fn same_check(a: &[u8; 16], b: &[u8; 16]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A key that is one byte repeated (all zeros, `ffff…`, `4242…`) is a
/// placeholder or a bug, never a random key: refused wherever keys are
/// loaded from text. Constant time is not needed (it says nothing of a
/// random key beyond that it is not such a key).
fn is_weak(bytes: &[u8; KEY_LEN]) -> bool {
    bytes.iter().all(|&b| b == bytes[0])
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key(..)")
    }
}

fn slot(v: &Version) -> usize {
    usize::from(v[0] - b'0') * 10 + usize::from(v[1] - b'0')
}

/// Keys by version. Shared keys are `Arc`s so that work on other threads can
/// hold the one key it needs while the keyring changes.
#[derive(Default, Clone)]
pub struct Keyring {
    keys: Vec<Option<Arc<Key>>>,
}

impl Keyring {
    pub fn new() -> Self {
        Keyring { keys: (0..100).map(|_| None).collect() }
    }

    /// Builds a keyring from `(version, hex key)` pairs; fails without side
    /// effects on the first invalid version or key.
    pub fn from_hex_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut ring = Keyring::new();
        for (v, k) in pairs {
            let v = crate::format::parse_version(v)?;
            ring.insert(v, Key::from_hex(&v, k)?);
        }
        Ok(ring)
    }

    pub fn insert(&mut self, version: Version, key: Key) {
        self.keys[slot(&version)] = Some(Arc::new(key));
    }

    /// Inserts a key another ring shares (the key vault's keys are in two rings).
    pub fn insert_shared(&mut self, version: Version, key: Arc<Key>) {
        self.keys[slot(&version)] = Some(key);
    }

    /// Removes a version's key; returns whether there was one.
    pub fn remove(&mut self, version: &Version) -> bool {
        self.keys[slot(version)].take().is_some()
    }

    pub fn get(&self, version: &Version) -> Result<&Arc<Key>> {
        self.keys[slot(version)].as_ref().ok_or(FieldCryptError::KeyNotFound(*version))
    }

    pub fn contains(&self, version: &Version) -> bool {
        self.keys[slot(version)].is_some()
    }

    /// The loaded versions, ascending.
    pub fn versions(&self) -> Vec<Version> {
        (0..100u8).filter(|i| self.keys[usize::from(*i)].is_some()).map(|i| [b'0' + i / 10, b'0' + i % 10]).collect()
    }

    /// The version whose key has this [`check_block`], if any.
    pub fn version_with_check(&self, check: &[u8; 16]) -> Option<Version> {
        self.versions().into_iter().find(|v| self.get(v).is_ok_and(|k| same_check(&k.check_block(), check)))
    }

    pub fn clear(&mut self) {
        self.keys.iter_mut().for_each(|k| *k = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    #[test]
    fn loads_and_finds_keys() {
        let ring = Keyring::from_hex_pairs([("01", K1), ("02", &K1.to_uppercase()[..])]).unwrap();
        assert!(ring.contains(b"01") && ring.contains(b"02") && !ring.contains(b"03"));
        assert_eq!(ring.versions(), vec![*b"01", *b"02"]);
        assert_eq!(ring.get(b"03").unwrap_err(), FieldCryptError::KeyNotFound(*b"03"));
    }

    #[test]
    fn rejects_bad_keys_without_echoing_them() {
        let short = &K1[..62];
        let e = Key::from_hex(b"01", short).unwrap_err();
        assert_eq!(e, FieldCryptError::InvalidKeyLength { version: *b"01", len: 62 });
        assert!(!e.to_string().contains(short));
        let e = Key::from_hex(b"02", &format!("{}zz", &K1[..62])).unwrap_err();
        assert_eq!(e, FieldCryptError::InvalidKey(*b"02"));
        assert!(!e.to_string().contains(&K1[..62]));
        // a 32-character "key" (e.g. raw bytes pasted as text) is a length error
        assert!(matches!(Key::from_hex(b"01", &K1[..32]), Err(FieldCryptError::InvalidKeyLength { .. })));
        assert!(matches!(Key::from_hex(b"01", ""), Err(FieldCryptError::InvalidKeyLength { .. })));
        // multi-byte characters count as bytes and never panic
        assert!(Key::from_hex(b"01", &"é".repeat(32)).is_err());
    }

    #[test]
    fn refuses_keys_of_one_repeated_byte() {
        for byte in ["00", "ff", "42", "AA"] {
            let hex = byte.repeat(32);
            let e = Key::from_hex(b"03", &hex).unwrap_err();
            assert_eq!(e, FieldCryptError::WeakKey(*b"03"), "{hex}");
            assert!(!e.to_string().contains(&hex[..8]));
        }
        // One differing byte anywhere is enough to be accepted.
        for at in [0, 31] {
            let mut bytes = [0u8; KEY_LEN];
            bytes[at] = 1;
            assert!(Key::from_hex(b"01", &hex::encode(bytes)).is_ok(), "byte {at}");
        }
    }

    #[test]
    fn from_pairs_is_all_or_nothing() {
        assert_eq!(Keyring::from_hex_pairs([("01", K1), ("x", K1)]).err(), Some(FieldCryptError::InvalidKeyVersion));
        assert!(Keyring::from_hex_pairs([("01", K1), ("02", "00")]).is_err());
    }

    #[test]
    fn debug_does_not_print_key_material() {
        let k = Key::from_hex(b"01", K1).unwrap();
        assert_eq!(format!("{k:?}"), "Key(..)");
    }

    #[test]
    fn check_blocks_tell_keys_apart() {
        let ring = Keyring::from_hex_pairs([("01", K1), ("02", &K1.replace("1f", "20")[..])]).unwrap();
        let bytes = key_bytes_from_hex(b"09", K1.as_bytes()).unwrap();
        assert_eq!(*check_block(&bytes), *ring.get(b"01").unwrap().check_block());
        assert_eq!(ring.version_with_check(&check_block(&bytes)), Some(*b"01"));
        let mut other = *bytes;
        other[31] ^= 0x80;
        assert_eq!(ring.version_with_check(&check_block(&other)), None);
        // the parse errors are those of Key::from_hex
        assert_eq!(
            key_bytes_from_hex(b"04", b"00").unwrap_err(),
            FieldCryptError::InvalidKeyLength { version: *b"04", len: 2 }
        );
    }

    #[test]
    fn clear_drops_all() {
        let mut ring = Keyring::from_hex_pairs([("01", K1), ("99", K1)]).unwrap();
        assert_eq!(ring.versions(), vec![*b"01", *b"99"]);
        ring.clear();
        assert!(ring.versions().is_empty());
    }
}
