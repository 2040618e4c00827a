//! Index keys: the keys of blind indexes (issue 20), a key ring of their own.
//!
//! Index keys are separate from the encryption keys of [`crate::keyring`]:
//! an index value is a deterministic MAC of the plaintext, so an index key
//! must never be an encryption key. Keys are parsed by the keyring's own
//! parser (length, hex, weak keys), with errors relabelled for index keys;
//! [`IndexKeyring::insert`] refuses a key equal to a loaded encryption key,
//! and [`IndexKeyring::version_with_check`] lets the keyring side refuse an
//! encryption key equal to a loaded index key.
//!
//! What must stay true: key bytes never leave this module. An [`IndexKey`]
//! keeps only HKDF's extracted state (an HMAC keyed with the PRK), the check
//! block of [`crate::keyring::check_block`] and its derived per-path keys
//! (see [`crate::blind_index`]); all of them are zeroized when the key is
//! dropped, which happens when the ring is replaced or cleared.

use std::collections::HashMap;

use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::blind_index::{PathKey, SALT};
use crate::error::{FieldCryptError, Result, Version};
use crate::keyring::{check_block, key_bytes_from_hex, same_check, Keyring, KEY_LEN};

/// Derived path keys kept per index key version; past this many the cache is
/// emptied and refilled (paths come from schemas: a handful per model).
pub const MAX_CACHED_PATHS: usize = 4096;

/// One index key: HKDF-Extract done once, and its derived path keys.
pub struct IndexKey {
    hkdf: Hkdf<Sha256>,
    check: Zeroizing<[u8; 16]>,
    /// Path keys by HKDF info (`collection || 0x00 || path`).
    paths: HashMap<Box<[u8]>, PathKey>,
}

impl IndexKey {
    /// Builds an index key from 64 hex characters. `version` labels errors.
    pub fn from_hex_bytes(version: &Version, hex_key: &[u8]) -> Result<Self> {
        let bytes = key_bytes_from_hex(version, hex_key).map_err(FieldCryptError::for_index_key)?;
        Ok(Self::from_bytes(&bytes))
    }

    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        IndexKey { hkdf: Hkdf::new(Some(SALT), bytes), check: check_block(bytes), paths: HashMap::new() }
    }

    /// The path key for HKDF info `info` (see [`crate::blind_index::scope_info`]),
    /// derived on first use and cached.
    pub fn path_key(&mut self, info: &[u8]) -> &PathKey {
        if !self.paths.contains_key(info) {
            if self.paths.len() >= MAX_CACHED_PATHS {
                self.paths.clear();
            }
            let key = PathKey::derive(&self.hkdf, info);
            self.paths.insert(info.into(), key);
        }
        &self.paths[info]
    }

    /// How many path keys are cached (for tests).
    pub fn cached_paths(&self) -> usize {
        self.paths.len()
    }
}

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

fn slot(v: &Version) -> usize {
    usize::from(v[0] - b'0') * 10 + usize::from(v[1] - b'0')
}

/// Index keys by version (`01`..`99`).
#[derive(Debug)]
pub struct IndexKeyring {
    keys: Vec<Option<IndexKey>>,
}

impl Default for IndexKeyring {
    fn default() -> Self {
        Self::new()
    }
}

impl IndexKeyring {
    pub fn new() -> Self {
        IndexKeyring { keys: (0..100).map(|_| None).collect() }
    }

    /// Builds a ring from `(version, hex key)` pairs, refusing any key equal
    /// to a key of `encryption`; all or nothing.
    pub fn from_hex_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
        encryption: &Keyring,
    ) -> Result<Self> {
        let mut ring = IndexKeyring::new();
        for (v, k) in pairs {
            let v = crate::format::parse_version(v)?;
            ring.insert(v, IndexKey::from_hex_bytes(&v, k.as_bytes())?, encryption)?;
        }
        Ok(ring)
    }

    /// Adds (or replaces) the key of `version`, unless it is a key of
    /// `encryption` ([`FieldCryptError::IndexKeyConflict`]).
    pub fn insert(&mut self, version: Version, key: IndexKey, encryption: &Keyring) -> Result<()> {
        if let Some(e) = encryption.version_with_check(&key.check) {
            return Err(FieldCryptError::IndexKeyConflict { index: version, encryption: e });
        }
        self.keys[slot(&version)] = Some(key);
        Ok(())
    }

    pub fn get_mut(&mut self, version: &Version) -> Result<&mut IndexKey> {
        self.keys[slot(version)].as_mut().ok_or(FieldCryptError::IndexKeyNotFound(*version))
    }

    pub fn contains(&self, version: &Version) -> bool {
        self.keys[slot(version)].is_some()
    }

    /// The loaded versions, ascending.
    pub fn versions(&self) -> Vec<Version> {
        (0..100u8).filter(|i| self.keys[usize::from(*i)].is_some()).map(|i| [b'0' + i / 10, b'0' + i % 10]).collect()
    }

    /// The version whose index key has this check block (an encryption key
    /// about to be loaded), if any.
    pub fn version_with_check(&self, check: &[u8; 16]) -> Option<Version> {
        self.versions().into_iter().find(|v| self.keys[slot(v)].as_ref().is_some_and(|k| same_check(&k.check, check)))
    }

    /// Drops (and zeroizes) the key of `version` and its derived path keys;
    /// whether there was one.
    pub fn remove(&mut self, version: &Version) -> bool {
        self.keys[slot(version)].take().is_some()
    }

    /// Drops (and zeroizes) every key and derived path key.
    pub fn clear(&mut self) {
        self.keys.iter_mut().for_each(|k| *k = None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blind_index::{scope_info, INDEX_VALUE_LEN};

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
    const K2: &str = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";

    #[test]
    fn loads_finds_and_clears() {
        let mut ring = IndexKeyring::from_hex_pairs([("01", K1), ("03", K2)], &Keyring::new()).unwrap();
        assert_eq!(ring.versions(), vec![*b"01", *b"03"]);
        assert!(ring.contains(b"03") && !ring.contains(b"02"));
        assert_eq!(ring.get_mut(b"02").unwrap_err(), FieldCryptError::IndexKeyNotFound(*b"02"));
        assert!(ring.remove(b"03") && !ring.remove(b"03"));
        assert_eq!(ring.versions(), vec![*b"01"]);
        ring.clear();
        assert!(ring.versions().is_empty());
    }

    #[test]
    fn malformed_keys_are_index_key_errors() {
        let none = Keyring::new();
        let e = IndexKeyring::from_hex_pairs([("02", &K1[..60])], &none).unwrap_err();
        assert_eq!(e, FieldCryptError::InvalidIndexKeyLength { version: *b"02", len: 60 });
        assert_eq!(e.code(), "ERR_FIELDCRYPT_INVALID_KEY_LENGTH");
        let bad = format!("{}zz", &K1[..62]);
        let e = IndexKeyring::from_hex_pairs([("01", &bad[..])], &none).unwrap_err();
        assert_eq!(e, FieldCryptError::InvalidIndexKey(*b"01"));
        assert!(!e.to_string().contains(&K1[..62]));
        let weak = "ab".repeat(32);
        let e = IndexKeyring::from_hex_pairs([("05", &weak[..])], &none).unwrap_err();
        assert_eq!(e, FieldCryptError::WeakIndexKey(*b"05"));
        assert_eq!(e.code(), "ERR_FIELDCRYPT_WEAK_KEY");
        assert_eq!(IndexKeyring::from_hex_pairs([("1", K1)], &none).unwrap_err(), FieldCryptError::InvalidKeyVersion);
    }

    #[test]
    fn refuses_an_encryption_key_either_way() {
        let enc = Keyring::from_hex_pairs([("01", K2), ("04", K1)]).unwrap();
        // the same key in the other case is the same key
        let e = IndexKeyring::from_hex_pairs([("02", &K1.to_uppercase()[..])], &enc).unwrap_err();
        assert_eq!(e, FieldCryptError::IndexKeyConflict { index: *b"02", encryption: *b"04" });
        assert_eq!(e.code(), "ERR_FIELDCRYPT_KEY_CONFLICT");
        assert!(!e.to_string().contains(&K1[..16]));
        // and an encryption key about to be loaded is checked against the index keys
        let index = IndexKeyring::from_hex_pairs([("07", K1)], &Keyring::new()).unwrap();
        let bytes = key_bytes_from_hex(b"01", K1.as_bytes()).unwrap();
        assert_eq!(index.version_with_check(&check_block(&bytes)), Some(*b"07"));
        let other = key_bytes_from_hex(b"01", K2.as_bytes()).unwrap();
        assert_eq!(index.version_with_check(&check_block(&other)), None);
    }

    #[test]
    fn path_keys_are_cached_per_version_and_scope() {
        let mut ring = IndexKeyring::from_hex_pairs([("01", K1), ("02", K2)], &Keyring::new()).unwrap();
        let mut info = Vec::new();
        assert!(scope_info(b"people", b"ssn", &mut info));
        let a = ring.get_mut(b"01").unwrap().path_key(&info).value(b"01", b"x");
        let again = ring.get_mut(b"01").unwrap().path_key(&info).value(b"01", b"x");
        assert_eq!(a, again);
        assert_eq!(a.len(), INDEX_VALUE_LEN);
        assert_eq!(ring.get_mut(b"01").unwrap().cached_paths(), 1);
        let b = ring.get_mut(b"02").unwrap().path_key(&info).value(b"02", b"x");
        assert_ne!(a[3..], b[3..]);
        for i in 0..MAX_CACHED_PATHS + 1 {
            scope_info(b"c", format!("p{i}").as_bytes(), &mut info);
            ring.get_mut(b"01").unwrap().path_key(&info);
        }
        assert!(ring.get_mut(b"01").unwrap().cached_paths() <= MAX_CACHED_PATHS);
    }

    #[test]
    fn debug_does_not_print_key_material() {
        let k = IndexKey::from_hex_bytes(b"01", K1.as_bytes()).unwrap();
        assert_eq!(format!("{k:?}"), "IndexKey(..)");
    }
}
