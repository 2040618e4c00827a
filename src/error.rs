//! Every failure fieldcrypt can report, each with a stable code.
//!
//! Messages say what went wrong and what to do about it. They never contain a
//! plaintext value, a stored value (which may be plaintext a caller passed by
//! mistake) or any byte of key material.

use thiserror::Error;

/// A two-digit key version such as `01`, kept as its ASCII digits.
pub type Version = [u8; 2];

/// Renders a version for messages: `01`, `02`, …
pub fn version_str(v: &Version) -> &str {
    // Versions are only ever built from two ASCII digits.
    std::str::from_utf8(v).unwrap_or("??")
}

/// The environment variable(s) that hold the key for `version`.
pub fn key_variable_hint(v: &Version) -> String {
    if v == b"01" {
        "ENCRYPTION_KEY (or ENCRYPTION_KEY_V01)".to_string()
    } else {
        format!("ENCRYPTION_KEY_V{}", version_str(v))
    }
}

/// The environment variable(s) that hold the index key for `version`
/// (blind indexes, src/index_keys.rs).
pub fn index_key_variable_hint(v: &Version) -> String {
    if v == b"01" {
        "ENCRYPTION_INDEX_KEY (or ENCRYPTION_INDEX_KEY_V01)".to_string()
    } else {
        format!("ENCRYPTION_INDEX_KEY_V{}", version_str(v))
    }
}

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum FieldCryptError {
    #[error(
        "Encryption key not found for key version {v}: set {var} to 64 hex characters \
         (generate one with `openssl rand -hex 32`), or pass it to configureKeys()",
        v = version_str(.0),
        var = key_variable_hint(.0)
    )]
    KeyNotFound(Version),

    #[error(
        "Invalid encryption key length for key version {v}: expected 64 hex characters \
         (32 bytes), got {len} characters; generate a key with `openssl rand -hex 32`",
        v = version_str(version)
    )]
    InvalidKeyLength { version: Version, len: usize },

    #[error(
        "Invalid encryption key for key version {v}: the key must be 64 hexadecimal \
         characters (0-9, a-f); generate one with `openssl rand -hex 32`",
        v = version_str(.0)
    )]
    InvalidKey(Version),

    #[error(
        "Weak encryption key for key version {v}: all 32 bytes are the same (an all-zero or placeholder \
         key); generate a random key with `openssl rand -hex 32`",
        v = version_str(.0)
    )]
    WeakKey(Version),

    #[error("Invalid key version: key versions are two digits, such as \"01\" or \"02\"")]
    InvalidKeyVersion,

    #[error(
        "Conflicting keys for key version 01: ENCRYPTION_KEY and ENCRYPTION_KEY_V01 are both \
         set and differ; unset one of them"
    )]
    KeyConflict,

    #[error(
        "Index key not found for index key version {v}: set {var} to 64 hex characters (generate one with \
         `openssl rand -hex 32`; it must differ from every encryption key), or pass it to configureIndexKeys()",
        v = version_str(.0),
        var = index_key_variable_hint(.0)
    )]
    IndexKeyNotFound(Version),

    // A malformed index key: the same codes as an encryption key's
    // (`ERR_FIELDCRYPT_INVALID_KEY_LENGTH`, `_INVALID_KEY`, `_WEAK_KEY`), with
    // messages that say which key it was (see [`FieldCryptError::for_index_key`]).
    #[error(
        "Invalid index key length for index key version {v}: expected 64 hex characters (32 bytes), got {len} \
         characters; generate a key with `openssl rand -hex 32`",
        v = version_str(version)
    )]
    InvalidIndexKeyLength { version: Version, len: usize },

    #[error(
        "Invalid index key for index key version {v}: the key must be 64 hexadecimal characters (0-9, a-f); \
         generate one with `openssl rand -hex 32`",
        v = version_str(.0)
    )]
    InvalidIndexKey(Version),

    #[error(
        "Weak index key for index key version {v}: all 32 bytes are the same (an all-zero or placeholder key); \
         generate a random key with `openssl rand -hex 32`",
        v = version_str(.0)
    )]
    WeakIndexKey(Version),

    #[error(
        "Conflicting keys: the index key of index key version {i} is the encryption key of key version {e}; \
         index keys must be keys of their own (generate one with `openssl rand -hex 32`)",
        i = version_str(index),
        e = version_str(encryption)
    )]
    IndexKeyConflict { index: Version, encryption: Version },

    #[error(
        "Invalid encrypted data format: expected VV:IV:TAG:CT (two-digit key version, \
         32 hex IV, 32 hex tag, hex ciphertext)"
    )]
    InvalidFormat,

    #[error(
        "Decryption failed: authentication failed for key version {v}; the value was \
         modified or was encrypted with a different key for that version",
        v = version_str(.0)
    )]
    AuthenticationFailed(Version),

    #[error(
        "Decryption failed: the value does not belong here (key version {v}): it is bound to another \
         collection, field or document, or was modified, or was encrypted with a different key for that version",
        v = version_str(.0)
    )]
    ContextMismatch(Version),

    #[error(
        "The value is not bound to its context (key version {v}): it was stored before context binding was \
         enabled, or copied from an unbound field; bind existing values with `fieldcrypt bind`, or allow \
         unbound values during the migration",
        v = version_str(.0)
    )]
    UnboundValue(Version),

    #[error(
        "Value too large to encrypt: its stored form (twice its UTF-8 size plus 69 characters) would exceed \
         the longest string JavaScript allows (about 256 MiB of plaintext); split it or store it elsewhere"
    )]
    TooLarge,

    #[error(
        "Decrypted value is not valid UTF-8 text; it was encrypted as binary data, \
         use decryptBuffer()"
    )]
    NotUtf8,

    /// A master key or KMS could not wrap or unwrap a data key (the reason, never key bytes).
    #[error("Key management failed: {0}")]
    Kms(String),

    /// The key vault's documents or their use are inconsistent (the reason, never key bytes).
    #[error("Key vault: {0}")]
    KeyVault(String),

    #[error(
        "Key version {v} is defined twice, in the key vault and by an environment or configureKeys() key; \
         remove one of them (after moving a key into the vault, unset its ENCRYPTION_KEY_V{v})",
        v = version_str(.0)
    )]
    KeyVaultConflict(Version),

    #[error(
        "Index key version {v} is defined twice, in the key vault and by an environment or configureIndexKeys() \
         key; remove one of them (after moving an index key into the vault, unset its ENCRYPTION_INDEX_KEY_V{v})",
        v = version_str(.0)
    )]
    IndexKeyVaultConflict(Version),
}

impl FieldCryptError {
    /// The stable code JavaScript sees as `err.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::KeyNotFound(_) => "ERR_FIELDCRYPT_KEY_NOT_FOUND",
            Self::InvalidKeyLength { .. } => "ERR_FIELDCRYPT_INVALID_KEY_LENGTH",
            Self::InvalidKey(_) => "ERR_FIELDCRYPT_INVALID_KEY",
            Self::WeakKey(_) => "ERR_FIELDCRYPT_WEAK_KEY",
            Self::InvalidKeyVersion => "ERR_FIELDCRYPT_INVALID_KEY_VERSION",
            Self::KeyConflict => "ERR_FIELDCRYPT_KEY_CONFLICT",
            Self::InvalidFormat => "ERR_FIELDCRYPT_INVALID_FORMAT",
            Self::AuthenticationFailed(_) => "ERR_FIELDCRYPT_AUTH_FAILED",
            Self::ContextMismatch(_) => "ERR_FIELDCRYPT_CONTEXT_MISMATCH",
            Self::UnboundValue(_) => "ERR_FIELDCRYPT_UNBOUND_VALUE",
            Self::TooLarge => "ERR_FIELDCRYPT_TOO_LARGE",
            Self::NotUtf8 => "ERR_FIELDCRYPT_NOT_UTF8",
            Self::Kms(_) => "ERR_FIELDCRYPT_KMS",
            Self::KeyVault(_) | Self::KeyVaultConflict(_) | Self::IndexKeyVaultConflict(_) => {
                "ERR_FIELDCRYPT_KEY_VAULT"
            }
            Self::IndexKeyNotFound(_) => "ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND",
            Self::InvalidIndexKeyLength { .. } => "ERR_FIELDCRYPT_INVALID_KEY_LENGTH",
            Self::InvalidIndexKey(_) => "ERR_FIELDCRYPT_INVALID_KEY",
            Self::WeakIndexKey(_) => "ERR_FIELDCRYPT_WEAK_KEY",
            Self::IndexKeyConflict { .. } => "ERR_FIELDCRYPT_KEY_CONFLICT",
        }
    }

    /// A key-parsing error of [`crate::keyring`] relabelled for an index key
    /// (same code, a message that names the index key); others unchanged.
    pub fn for_index_key(self) -> Self {
        match self {
            Self::InvalidKeyLength { version, len } => Self::InvalidIndexKeyLength { version, len },
            Self::InvalidKey(v) => Self::InvalidIndexKey(v),
            Self::WeakKey(v) => Self::WeakIndexKey(v),
            Self::KeyNotFound(v) => Self::IndexKeyNotFound(v),
            other => other,
        }
    }
}

pub type Result<T> = std::result::Result<T, FieldCryptError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_version_and_variable() {
        let m = FieldCryptError::KeyNotFound(*b"02").to_string();
        assert!(m.starts_with("Encryption key not found"));
        assert!(m.contains("ENCRYPTION_KEY_V02"));
        let m = FieldCryptError::KeyNotFound(*b"01").to_string();
        assert!(m.contains("ENCRYPTION_KEY (or ENCRYPTION_KEY_V01)"));
        let m = FieldCryptError::InvalidKeyLength { version: *b"01", len: 10 }.to_string();
        assert!(m.starts_with("Invalid encryption key length"));
        assert!(m.contains("64 hex"));
        assert!(FieldCryptError::InvalidFormat.to_string().starts_with("Invalid encrypted data format"));
    }

    #[test]
    fn codes_are_distinct() {
        let all = [
            FieldCryptError::KeyNotFound(*b"01"),
            FieldCryptError::InvalidKeyLength { version: *b"01", len: 0 },
            FieldCryptError::InvalidKey(*b"01"),
            FieldCryptError::WeakKey(*b"01"),
            FieldCryptError::InvalidKeyVersion,
            FieldCryptError::KeyConflict,
            FieldCryptError::InvalidFormat,
            FieldCryptError::AuthenticationFailed(*b"01"),
            FieldCryptError::ContextMismatch(*b"01"),
            FieldCryptError::UnboundValue(*b"01"),
            FieldCryptError::TooLarge,
            FieldCryptError::NotUtf8,
            FieldCryptError::Kms(String::new()),
            FieldCryptError::KeyVault(String::new()),
            FieldCryptError::IndexKeyNotFound(*b"01"),
        ];
        let mut codes: Vec<_> = all.iter().map(|e| e.code()).collect();
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
    }

    #[test]
    fn index_key_errors_share_the_encryption_key_codes() {
        for e in [
            FieldCryptError::InvalidKeyLength { version: *b"02", len: 3 },
            FieldCryptError::InvalidKey(*b"02"),
            FieldCryptError::WeakKey(*b"02"),
            FieldCryptError::KeyNotFound(*b"02"),
        ] {
            let index = e.clone().for_index_key();
            assert_ne!(index, e);
            assert!(index.to_string().contains("index key version 02"), "{index}");
        }
        assert_eq!(FieldCryptError::WeakKey(*b"01").for_index_key().code(), FieldCryptError::WeakKey(*b"01").code());
        assert_eq!(FieldCryptError::InvalidFormat.for_index_key(), FieldCryptError::InvalidFormat);
        let m = FieldCryptError::IndexKeyNotFound(*b"01").to_string();
        assert!(m.contains("ENCRYPTION_INDEX_KEY (or ENCRYPTION_INDEX_KEY_V01)"), "{m}");
        assert!(FieldCryptError::IndexKeyNotFound(*b"07").to_string().contains("ENCRYPTION_INDEX_KEY_V07"));
        let c = FieldCryptError::IndexKeyConflict { index: *b"01", encryption: *b"03" };
        assert_eq!(c.code(), "ERR_FIELDCRYPT_KEY_CONFLICT");
        assert!(c.to_string().contains("index key version 01") && c.to_string().contains("key version 03"));
    }
}
