//! Blind index values (issue 20): equality search over encrypted fields.
//!
//! The stored ciphertext stays randomized; beside it the plugin stores a
//! keyed, deterministic index value of the (normalised) plaintext. The
//! derivation is fixed by docs/format.md ("Blind index values") and must
//! stay exactly this, since stored index values and queries must agree:
//!
//! ```text
//! k_path = HKDF-SHA256(ikm  = the 32-byte index key of version VV,
//!                      salt = "fieldcrypt/blind-index/v1",
//!                      info = UTF-8(collection) || 0x00 || UTF-8(path),
//!                      L    = 32)
//! value  = "VV:" || lowercase hex(HMAC-SHA256(k_path, input bytes))   (67 characters)
//! ```
//!
//! A node:crypto implementation of the same lines produces the same values
//! (`__test__/blind-index.test.js` checks it; the fuzz target `blind_index`
//! and the property tests check this module against src/reference.rs).
//!
//! What must stay true: a [`PathKey`] holds only an HMAC state keyed with
//! `k_path` (the derived bytes themselves are zeroized at once) and is
//! zeroized when dropped (the `zeroize` features of hmac and sha2, asserted
//! below); neither collection nor path may be empty or hold a NUL byte, so
//! that `info` names exactly one (collection, path) pair.

use hkdf::Hkdf;
use hmac::block_api::HmacCore;
use hmac::digest::block_api::Buffer;
use hmac::{EagerHash, Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{ZeroizeOnDrop, Zeroizing};

use crate::error::{Result, Version};
use crate::index_keys::IndexKeyring;

/// HKDF's salt for every index key (a domain separator; a new derivation
/// would get a new one).
pub const SALT: &[u8] = b"fieldcrypt/blind-index/v1";

/// HMAC-SHA256's output, in bytes.
pub const INDEX_MAC_LEN: usize = 32;

/// `VV:` and 64 hex digits.
pub const INDEX_VALUE_LEN: usize = 3 + INDEX_MAC_LEN * 2;

/// One index value, as ASCII.
pub type IndexValue = [u8; INDEX_VALUE_LEN];

// Path keys and HKDF's state must be wiped when dropped. `Hmac<Sha256>`
// holds two SHA-256 cores (the states after the padded key's inner and
// outer blocks) and a block buffer; with the `zeroize` features of sha2 and
// hmac (digest, block-buffer) each wipes itself on drop, which this checks.
const _: () = {
    const fn zeroized_on_drop<T: ZeroizeOnDrop + ?Sized>() {}
    zeroized_on_drop::<<Sha256 as EagerHash>::Core>();
    zeroized_on_drop::<Buffer<HmacCore<Sha256>>>();
};

/// Writes HKDF's `info` for a (collection, path) pair into `out` (cleared
/// first): `collection || 0x00 || path`. False (and `out` empty) when either
/// is empty or holds a NUL byte: such a pair would be ambiguous (and is no
/// MongoDB collection or schema path).
pub fn scope_info(collection: &[u8], path: &[u8], out: &mut Vec<u8>) -> bool {
    out.clear();
    out.reserve(collection.len() + 1 + path.len());
    out.extend_from_slice(collection);
    out.push(0);
    out.extend_from_slice(path);
    if !is_scope_info(out, collection.len()) {
        out.clear();
        return false;
    }
    true
}

/// Whether `info` is `collection || 0x00 || path` with the NUL at
/// `collection_len` and no other, both parts non-empty (for callers that
/// read the two parts straight into one buffer).
pub fn is_scope_info(info: &[u8], collection_len: usize) -> bool {
    collection_len > 0
        && info.len() > collection_len + 1
        && info[collection_len] == 0
        && !info[..collection_len].contains(&0)
        && !info[collection_len + 1..].contains(&0)
}

/// The key of one (version, collection, path): an HMAC-SHA256 state keyed
/// with `k_path`, cloned for each value (no key schedule per value).
#[derive(Clone)]
pub struct PathKey {
    mac: Hmac<Sha256>,
}

impl PathKey {
    /// `k_path` from an index key's extracted HKDF state and `info`.
    pub fn derive(hkdf: &Hkdf<Sha256>, info: &[u8]) -> Self {
        let mut k = Zeroizing::new([0u8; INDEX_MAC_LEN]);
        hkdf.expand(info, k.as_mut()).expect("32 bytes is a valid HKDF-SHA256 length");
        Self::from_key(&k)
    }

    /// A path key from `k_path` itself (tests and the fuzz target).
    pub fn from_key(k_path: &[u8; INDEX_MAC_LEN]) -> Self {
        PathKey { mac: <Hmac<Sha256> as KeyInit>::new_from_slice(k_path).expect("HMAC takes any key length") }
    }

    /// HMAC-SHA256(k_path, input).
    pub fn mac(&self, input: &[u8]) -> [u8; INDEX_MAC_LEN] {
        let mut mac = self.mac.clone();
        mac.update(input);
        mac.finalize().into_bytes().into()
    }

    /// The index value of `input` under `version`: `VV:` + 64 lowercase hex.
    pub fn value(&self, version: &Version, input: &[u8]) -> IndexValue {
        let mut out = [0u8; INDEX_VALUE_LEN];
        out[..2].copy_from_slice(version);
        out[2] = b':';
        crate::format::encode_hex(&self.mac(input), &mut out[3..]);
        out
    }
}

impl std::fmt::Debug for PathKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PathKey(..)")
    }
}

/// The index values of `inputs` under one version, collection and path:
/// one key lookup (and at most one derivation) for the whole batch. `info`
/// comes from [`scope_info`].
pub fn index_many<'a>(
    ring: &mut IndexKeyring,
    version: &Version,
    info: &[u8],
    inputs: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<IndexValue>> {
    let key = ring.get_mut(version)?.path_key(info);
    Ok(inputs.into_iter().map(|input| key.value(version, input)).collect())
}

/// The index value of one input (see [`index_many`]).
pub fn index_one(ring: &mut IndexKeyring, version: &Version, info: &[u8], input: &[u8]) -> Result<IndexValue> {
    Ok(ring.get_mut(version)?.path_key(info).value(version, input))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldCryptError;
    use crate::keyring::Keyring;
    use crate::reference;

    const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

    fn h(s: &str) -> Vec<u8> {
        hex::decode(s).unwrap()
    }

    fn seq(from: u8, to: u8) -> Vec<u8> {
        (from..=to).collect()
    }

    /// RFC 4231 section 4: HMAC-SHA-256 of test cases 1-7 (case 5 truncated to 128 bits).
    const RFC4231: [(&str, &str, &str); 7] = [
        ("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", "4869205468657265",
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        ("4a656665", "7768617420646f2079612077616e7420666f72206e6f7468696e673f",
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        ("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "dd*50",
         "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
        ("0102030405060708090a0b0c0d0e0f10111213141516171819", "cd*50",
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
        ("0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c", "546573742057697468205472756e636174696f6e",
         "a3b6167473100ee06e0c796c2955552b"),
        ("aa*131", "54657374205573696e67204c6172676572205468616e20426c6f636b2d53697a65204b6579202d2048617368204b6579204669727374",
         "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ("aa*131", "text:This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
         "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"),
    ];

    /// `hex`, `bb*n` (byte bb repeated n times) or `text:…`.
    fn bytes_of(spec: &str) -> Vec<u8> {
        if let Some(text) = spec.strip_prefix("text:") {
            text.as_bytes().to_vec()
        } else if let Some((b, n)) = spec.split_once('*') {
            vec![h(b)[0]; n.parse().unwrap()]
        } else {
            h(spec)
        }
    }

    #[test]
    fn hmac_sha256_rfc4231() {
        for (i, (key, data, want)) in RFC4231.iter().enumerate() {
            let (key, data) = (bytes_of(key), bytes_of(data));
            let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&key).unwrap();
            mac.update(&data);
            let ours = mac.finalize().into_bytes();
            assert_eq!(hex::encode(&ours[..want.len() / 2]), *want, "case {}", i + 1);
            let theirs = reference::hmac_sha256(&key, &data);
            assert_eq!(hex::encode(&theirs[..want.len() / 2]), *want, "reference, case {}", i + 1);
            if key.len() == INDEX_MAC_LEN {
                assert_eq!(PathKey::from_key(&key.try_into().unwrap()).mac(&data)[..], ours[..]);
            }
        }
    }

    #[test]
    fn hkdf_sha256_rfc5869() {
        // RFC 5869 appendix A, test cases 1-3: (IKM, salt, info, L, PRK, OKM)
        let cases = [
            (
                vec![0x0b; 22],
                seq(0, 12),
                seq(0xf0, 0xf9),
                42,
                "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5",
                "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
            ),
            (
                seq(0, 0x4f),
                seq(0x60, 0xaf),
                seq(0xb0, 0xff),
                82,
                "06a6b88c5853361a06104c9ceb35b45cef760014904671014a193f40c15fc244",
                "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e590e0\
              9da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87",
            ),
            (
                vec![0x0b; 22],
                vec![],
                vec![],
                42,
                "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04",
                "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
            ),
        ];
        for (i, (ikm, salt, info, len, prk, okm)) in cases.iter().enumerate() {
            let (their_prk, hk) = Hkdf::<Sha256>::extract(Some(salt), ikm);
            assert_eq!(hex::encode(their_prk), *prk, "PRK, case {}", i + 1);
            let mut out = vec![0u8; *len];
            hk.expand(info, &mut out).unwrap();
            assert_eq!(hex::encode(&out), *okm, "OKM, case {}", i + 1);
            assert_eq!(hex::encode(reference::hkdf_sha256(salt, ikm, info, *len)), *okm, "reference, case {}", i + 1);
        }
    }

    /// Values computed with node:crypto (`hkdfSync('sha256', key, salt, info, 32)`,
    /// then `createHmac('sha256', k_path)`): the derivation must never change.
    #[test]
    fn pinned_index_values() {
        let mut ring = IndexKeyring::from_hex_pairs([("01", K1), ("02", K1)], &Keyring::new()).unwrap();
        let mut info = Vec::new();
        let mut value = |v: &Version, coll: &str, path: &str, input: &[u8]| {
            assert!(scope_info(coll.as_bytes(), path.as_bytes(), &mut info));
            String::from_utf8(index_one(&mut ring, v, &info, input).unwrap().to_vec()).unwrap()
        };
        assert_eq!(
            value(b"01", "people", "ssn", b"123-45-6789"),
            "01:816920ab0bd9c392fe5af91608bba1f3f62a6b82415c423b61374adad91dff49"
        );
        assert_eq!(
            value(b"01", "people", "ssn", b""),
            "01:57269769ab7d0df2397f1131fd8c17e239cab8d923198829a2a542c24c08764b"
        );
        assert_eq!(
            value(b"02", "patients", "personExtended.identifications.idNumber", "Zoë Ünïcödé 🚀".as_bytes()),
            "02:38924de762c54e35685fab50d93102f5214f1c6dd32e874fbfa2ab07388c4213"
        );
        assert_eq!(
            value(b"01", "people", "ssn", &[0xff, 0xfe, 0x00, 0x80]),
            "01:be8d3eb0b6a864239ffcb962139665acebeb5fa110d1e3ae5361cdfecc52daf7"
        );
    }

    #[test]
    fn matches_the_reference_and_batches_agree() {
        let key: [u8; 32] = h(K1).try_into().unwrap();
        let mut ring = IndexKeyring::new();
        ring.insert(*b"03", crate::index_keys::IndexKey::from_bytes(&key), &Keyring::new()).unwrap();
        let mut info = Vec::new();
        assert!(scope_info(b"c", b"a.b", &mut info));
        let inputs: Vec<Vec<u8>> = (0..200usize).map(|n| (0..n).map(|i| (i * 7 + n) as u8).collect()).collect();
        let many = index_many(&mut ring, b"03", &info, inputs.iter().map(|v| &v[..])).unwrap();
        for (input, got) in inputs.iter().zip(&many) {
            assert_eq!(got[..], reference::blind_index(&key, b"03", b"c", b"a.b", input).as_bytes()[..]);
            assert_eq!(*got, index_one(&mut ring, b"03", &info, input).unwrap());
        }
        assert_eq!(
            index_many(&mut ring, b"04", &info, [&b"x"[..]]).unwrap_err(),
            FieldCryptError::IndexKeyNotFound(*b"04")
        );
    }

    #[test]
    fn scopes_are_unambiguous() {
        let mut info = vec![9];
        assert!(!scope_info(b"", b"p", &mut info) && info.is_empty());
        assert!(!scope_info(b"c", b"", &mut info));
        assert!(!scope_info(b"a\0b", b"c", &mut info));
        assert!(!scope_info(b"a", b"b\0c", &mut info));
        assert!(scope_info("é".as_bytes(), b"x.y", &mut info));
        assert_eq!(info, b"\xc3\xa9\0x.y");
    }
}
