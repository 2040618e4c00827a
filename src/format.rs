//! The stored string: `VV:IV:TAG:CT`.
//!
//! * `VV`  – two ASCII digits, the key version (`01`, `02`, …)
//! * `IV`  – 32 hex characters, a 16-byte random IV
//! * `TAG` – 32 hex characters, the 16-byte GCM authentication tag
//! * `CT`  – hex ciphertext, two characters per byte; empty for an empty plaintext
//!
//! This is byte-for-byte the format of the pure `node:crypto` implementation
//! that existing data was written with. We always write lowercase hex; when
//! reading we also accept uppercase hex, as `Buffer.from(x, 'hex')` did.
//! Anything else (odd length, a non-hex character, a field of the wrong length,
//! a missing or extra separator) is [`FieldCryptError::InvalidFormat`].

use crate::error::{FieldCryptError, Result, Version};

pub const IV_LEN: usize = 16;
pub const TAG_LEN: usize = 16;
const SEP: u8 = b':';
/// `VV:` + IV hex + `:` + TAG hex + `:`
const HEADER_LEN: usize = 2 + 1 + IV_LEN * 2 + 1 + TAG_LEN * 2 + 1;

/// A parsed stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub version: Version,
    pub iv: [u8; IV_LEN],
    pub tag: [u8; TAG_LEN],
    pub ciphertext: Vec<u8>,
}

/// Parses a key version given by a caller (`"01"`).
pub fn parse_version(s: &str) -> Result<Version> {
    parse_version_bytes(s.as_bytes())
}

/// [`parse_version`] over bytes.
pub fn parse_version_bytes(s: &[u8]) -> Result<Version> {
    match s {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => Ok([*a, *b]),
        _ => Err(FieldCryptError::InvalidKeyVersion),
    }
}

/// A stored value's fields, still hex: version, IV, tag, ciphertext.
type HexFields<'a> = (Version, &'a [u8], &'a [u8], &'a [u8]);

/// Splits a stored value into its four fields without decoding any of them,
/// checking the fixed layout: `VV:<32>:<32>:<rest>`.
fn split(s: &[u8]) -> Result<HexFields<'_>> {
    if s.len() < HEADER_LEN
        || !s[0].is_ascii_digit()
        || !s[1].is_ascii_digit()
        || s[2] != SEP
        || s[3 + IV_LEN * 2] != SEP
        || s[HEADER_LEN - 1] != SEP
    {
        return Err(FieldCryptError::InvalidFormat);
    }
    let iv = &s[3..3 + IV_LEN * 2];
    let tag = &s[4 + IV_LEN * 2..HEADER_LEN - 1];
    let ct = &s[HEADER_LEN..];
    // An extra separator anywhere makes a field non-hex, which the hex checks
    // below reject; ciphertext must also be whole bytes.
    if ct.len() % 2 == 1 {
        return Err(FieldCryptError::InvalidFormat);
    }
    Ok(([s[0], s[1]], iv, tag, ct))
}

fn is_hex(b: &[u8]) -> bool {
    faster_hex::hex_check(b)
}

/// Decodes hex (either case) into `dst`, which is exactly half as long.
pub fn decode_hex(src: &[u8], dst: &mut [u8]) -> Result<()> {
    debug_assert_eq!(src.len(), dst.len() * 2);
    faster_hex::hex_decode(src, dst).map(|_| ()).map_err(|_| FieldCryptError::InvalidFormat)
}

/// Encodes `src` as lowercase hex into `dst`, which is exactly twice as long.
pub(crate) fn encode_hex(src: &[u8], dst: &mut [u8]) {
    faster_hex::hex_encode(src, dst).expect("dst is sized by the caller");
}

/// Parses and decodes a stored value.
pub fn parse(s: impl AsRef<[u8]>) -> Result<Envelope> {
    let mut ciphertext = Vec::new();
    let (version, iv, tag) = parse_into(s.as_ref(), &mut ciphertext)?;
    Ok(Envelope { version, iv, tag, ciphertext })
}

/// The header of a stored value, with the ciphertext decoded into `ct`
/// (cleared first; a caller-owned buffer saves an allocation per value).
pub type Header = (Version, [u8; IV_LEN], [u8; TAG_LEN]);

/// [`parse`] into a reusable ciphertext buffer.
pub fn parse_into(s: &[u8], ct: &mut Vec<u8>) -> Result<Header> {
    let (version, iv_hex, tag_hex, ct_hex) = split(s)?;
    let mut iv = [0u8; IV_LEN];
    let mut tag = [0u8; TAG_LEN];
    decode_hex(iv_hex, &mut iv)?;
    decode_hex(tag_hex, &mut tag)?;
    ct.clear();
    ct.resize(ct_hex.len() / 2, 0);
    decode_hex(ct_hex, ct)?;
    Ok((version, iv, tag))
}

/// True when `s` is a well-formed stored value. Allocates nothing.
pub fn is_well_formed(s: impl AsRef<[u8]>) -> bool {
    match split(s.as_ref()) {
        Ok((_, iv, tag, ct)) => is_hex(iv) && is_hex(tag) && is_hex(ct),
        Err(_) => false,
    }
}

/// The key version of a well-formed stored value.
pub fn version_of(s: impl AsRef<[u8]>) -> Result<Version> {
    let b = s.as_ref();
    if is_well_formed(b) {
        Ok([b[0], b[1]])
    } else {
        Err(FieldCryptError::InvalidFormat)
    }
}

/// Writes a stored value, lowercase hex.
pub fn serialize(version: &Version, iv: &[u8; IV_LEN], tag: &[u8; TAG_LEN], ct: &[u8]) -> String {
    let mut out = Vec::new();
    serialize_into(version, iv, tag, ct, &mut out);
    // Only ASCII digits, separators and hex digits were written.
    String::from_utf8(out).expect("ASCII")
}

/// The length of the stored value for `ct_len` bytes of ciphertext.
pub fn stored_len(ct_len: usize) -> usize {
    HEADER_LEN + ct_len * 2
}

/// [`serialize`], appended to `out` (so batches can write back to back);
/// writes ASCII only.
pub fn serialize_into(version: &Version, iv: &[u8; IV_LEN], tag: &[u8; TAG_LEN], ct: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.resize(start + stored_len(ct.len()), 0);
    let out = &mut out[start..];
    out[..2].copy_from_slice(version);
    out[2] = SEP;
    encode_hex(iv, &mut out[3..3 + IV_LEN * 2]);
    out[3 + IV_LEN * 2] = SEP;
    encode_hex(tag, &mut out[4 + IV_LEN * 2..HEADER_LEN - 1]);
    out[HEADER_LEN - 1] = SEP;
    encode_hex(ct, &mut out[HEADER_LEN..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    const IV: &str = "000102030405060708090a0b0c0d0e0f";
    const TAG: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

    fn valid(ct: &str) -> String {
        format!("01:{IV}:{TAG}:{ct}")
    }

    #[test]
    fn round_trip() {
        let s = valid("deadbeef");
        let e = parse(&s).unwrap();
        assert_eq!(&e.version, b"01");
        assert_eq!(e.iv[15], 0x0f);
        assert_eq!(e.tag[0], 0xf0);
        assert_eq!(e.ciphertext, vec![0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(serialize(&e.version, &e.iv, &e.tag, &e.ciphertext), s);
        assert!(is_well_formed(&s));
        assert_eq!(&version_of(&s).unwrap(), b"01");
    }

    #[test]
    fn empty_ciphertext_is_valid() {
        // node:crypto writes `01:iv:tag:` for an empty plaintext.
        let s = valid("");
        assert!(is_well_formed(&s));
        assert!(parse(&s).unwrap().ciphertext.is_empty());
    }

    #[test]
    fn uppercase_hex_is_read_lowercase_is_written() {
        let s = format!("07:{}:{}:ABCD", IV.to_uppercase(), TAG.to_uppercase());
        let e = parse(&s).unwrap();
        assert_eq!(&e.version, b"07");
        assert_eq!(serialize(&e.version, &e.iv, &e.tag, &e.ciphertext), format!("07:{IV}:{TAG}:abcd"));
    }

    #[test]
    fn malformed_shapes_are_rejected() {
        let cases: Vec<String> = vec![
            String::new(),
            "01".into(),
            "01:".into(),
            "hello world".into(),
            "4111111111111111".into(),
            format!("01:{IV}:{TAG}"),                // missing CT separator
            format!("01:{IV}:{TAG}:abc"),            // odd-length CT
            format!("01:{IV}:{TAG}:zz"),             // non-hex CT
            format!("01:{IV}:{TAG}:ab:cd"),          // extra separator
            format!("01:{IV}:{TAG}:abcd:"),          // trailing separator
            format!("01:{IV}::{TAG}:abcd"),          // extra separator in header
            format!("1:{IV}:{TAG}:abcd"),            // one-digit version
            format!("001:{IV}:{TAG}:abcd"),          // three-digit version
            format!("v1:{IV}:{TAG}:abcd"),           // non-digit version
            format!("0a:{IV}:{TAG}:abcd"),           // hex but not digit version
            format!("01:{}:{TAG}:abcd", &IV[..30]),  // short IV
            format!("01:{IV}00:{TAG}:abcd"),         // long IV
            format!("01:{}:{TAG}:abcd", &IV[..24]),  // 12-byte IV is not this format
            format!("01:{IV}:{}:abcd", &TAG[..30]),  // short tag
            format!("01:{IV}:{TAG}00:abcd"),         // long tag
            format!("01:{}g:{TAG}:abcd", &IV[..31]), // non-hex IV
            format!("01:{IV}:{}x:abcd", &TAG[..31]), // non-hex tag
            format!("01:{IV}:{TAG}: abc"),           // whitespace
            format!(" 01:{IV}:{TAG}:abcd"),          // leading whitespace
            format!("01:{IV}:{TAG}:abcd\n"),         // trailing newline
            format!("01;{IV};{TAG};abcd"),           // wrong separator
            format!("01:{IV}:{TAG}:ab\u{e9}"),       // non-ASCII
            format!("01:{IV}:{TAG}:-1"),             // sign
            format!("01:{IV}:{TAG}:0x"),             // prefix
        ];
        for c in &cases {
            assert!(!is_well_formed(c), "accepted {c:?}");
            assert_eq!(parse(c), Err(FieldCryptError::InvalidFormat), "{c:?}");
            assert_eq!(version_of(c), Err(FieldCryptError::InvalidFormat), "{c:?}");
        }
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("01"), Ok(*b"01"));
        assert_eq!(parse_version("99"), Ok(*b"99"));
        for bad in ["", "1", "001", "a1", "0x", " 1", "１２"] {
            assert_eq!(parse_version(bad), Err(FieldCryptError::InvalidKeyVersion), "{bad:?}");
        }
    }
}
