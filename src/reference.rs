//! An independent, slow reference for the AES-GCM composition of
//! [`crate::cipher`] and the CLMUL GHASH of [`crate::clmul`] (NIST SP 800-38D
//! written out bit by bit), and the stored format's rule for the parser, for
//! tests, property tests and fuzz targets only.
//!
//! What must stay true: nothing here shares code or algorithm with the
//! product. The field multiplication is SP 800-38D Algorithm 1 (one bit of
//! `X` per step, `V` shifted right with the `R = 11100001 || 0^120`
//! reduction), not the R/F carry-less method of `clmul` and the `polyval`
//! crate; GHASH is Algorithm 2 over whole blocks; the counter blocks, `J0`
//! for a non-96-bit IV and the tag follow sections 6.5, 7.1 and 7.2 directly.
//! Only the AES block function is shared (the `aes` crate).
//!
//! Blind index values ([`blind_index`]): HMAC is RFC 2104 written out over
//! SHA-256 (the `sha2` crate, the only part shared with the product, which
//! uses the `hmac` and `hkdf` crates), HKDF RFC 5869's two steps over it.

use aes_gcm::aes::cipher::{BlockCipherEncrypt, KeyInit};
use aes_gcm::aes::Aes256;
use sha2::{Digest, Sha256};

/// docs/format.md's rule for a stored value, written out separately from
/// src/format.rs: two digits, `:`, 32 hex, `:`, 32 hex, `:`, an even number
/// of hex digits (the oracle of the parser's property tests and fuzz target).
pub fn well_formed(s: &[u8]) -> bool {
    let hex = |b: &[u8]| b.iter().all(u8::is_ascii_hexdigit);
    s.len() >= 69
        && s[..2].iter().all(u8::is_ascii_digit)
        && s[2] == b':'
        && s[35] == b':'
        && s[68] == b':'
        && hex(&s[3..35])
        && hex(&s[36..68])
        && hex(&s[69..])
        && (s.len() - 69).is_multiple_of(2)
}

/// `X • Y` in GF(2^128), SP 800-38D Algorithm 1. Blocks are big-endian
/// numbers: bit 0 of the standard (the leftmost) is bit 127 here.
pub fn gf_mul(x: u128, y: u128) -> u128 {
    const R: u128 = 0xe1 << 120;
    let mut z = 0u128;
    let mut v = y;
    for i in 0..128 {
        if (x >> (127 - i)) & 1 == 1 {
            z ^= v;
        }
        v = if v & 1 == 0 { v >> 1 } else { (v >> 1) ^ R };
    }
    z
}

/// `GHASH_H(X_1 .. X_m)` over whole 16-byte blocks, SP 800-38D Algorithm 2.
pub fn ghash_blocks(h: &[u8; 16], blocks: &[u8]) -> [u8; 16] {
    assert!(blocks.len().is_multiple_of(16), "GHASH takes whole blocks");
    let h = u128::from_be_bytes(*h);
    let mut y = 0u128;
    for block in blocks.chunks_exact(16) {
        y = gf_mul(y ^ u128::from_be_bytes(block.try_into().unwrap()), h);
    }
    y.to_be_bytes()
}

/// `GHASH_H(data zero-padded to whole blocks || last)`: what
/// [`crate::clmul::Ghash::hash`] computes.
pub fn ghash(h: &[u8; 16], data: &[u8], last: &[u8; 16]) -> [u8; 16] {
    let mut blocks = data.to_vec();
    blocks.resize(data.len().div_ceil(16) * 16, 0);
    blocks.extend_from_slice(last);
    ghash_blocks(h, &blocks)
}

/// `X^-1` in GF(2^128) (`X^(2^128 - 2)`), for building test inputs; zero for zero.
pub fn gf_inv(x: u128) -> u128 {
    // 2^128 - 2 has every bit set but bit 0: multiply x^(2^i) for i = 1..127.
    let mut result = 1u128 << 127; // the field's one
    let mut square = x;
    for _ in 1..128 {
        square = gf_mul(square, square);
        result = gf_mul(result, square);
    }
    result
}

/// The 16-byte IV whose pre-counter block `J0 = GHASH_H(IV || 0^64 || [128]_64)`
/// is `j0`: `IV = ((J0 • H^-1) xor L) • H^-1`. Used to find IVs that make the
/// 32-bit counter wrap inside a message.
pub fn iv_for_j0(h: &[u8; 16], j0: &[u8; 16]) -> [u8; 16] {
    let h_inv = gf_inv(u128::from_be_bytes(*h));
    let l = u128::from_be_bytes(lengths(0, 16));
    gf_mul(gf_mul(u128::from_be_bytes(*j0), h_inv) ^ l, h_inv).to_be_bytes()
}

/// `J0` for a 16-byte IV under GHASH key `h` (section 7.1, step 2).
pub fn j0_of(h: &[u8; 16], iv: &[u8; 16]) -> [u8; 16] {
    let mut s = iv.to_vec();
    s.extend_from_slice(&lengths(0, 16));
    ghash_blocks(h, &s)
}

/// The GHASH key `H = E_K(0^128)`.
pub fn ghash_key(key: &[u8; 32]) -> [u8; 16] {
    let aes = Aes256::new(key.into());
    let mut b = [0u8; 16].into();
    aes.encrypt_block(&mut b);
    b.into()
}

/// `inc32(X)`: the low 32 bits plus one, modulo 2^32 (section 6.2).
pub fn inc32(x: [u8; 16]) -> [u8; 16] {
    let mut out = x;
    let low = u32::from_be_bytes([x[12], x[13], x[14], x[15]]).wrapping_add(1);
    out[12..].copy_from_slice(&low.to_be_bytes());
    out
}

/// `[len(A)]_64 || [len(C)]_64` in bits.
fn lengths(aad: usize, ct: usize) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&((aad as u64) * 8).to_be_bytes());
    b[8..].copy_from_slice(&((ct as u64) * 8).to_be_bytes());
    b
}

fn padded(x: &[u8]) -> Vec<u8> {
    let mut v = x.to_vec();
    v.resize(x.len().div_ceil(16) * 16, 0);
    v
}

/// AES-256-GCM with any IV length and additional data `aad`: returns the
/// ciphertext and the 16-byte tag (SP 800-38D Algorithm 4).
pub fn gcm_seal(key: &[u8; 32], iv: &[u8], aad: &[u8], plaintext: &[u8]) -> (Vec<u8>, [u8; 16]) {
    let aes = Aes256::new(key.into());
    let e = |block: [u8; 16]| {
        let mut b = block.into();
        aes.encrypt_block(&mut b);
        <[u8; 16]>::from(b)
    };
    let h = e([0u8; 16]);
    let j0 = if iv.len() == 12 {
        let mut j = [0u8; 16];
        j[..12].copy_from_slice(iv);
        j[15] = 1;
        j
    } else {
        let mut s = padded(iv);
        s.extend_from_slice(&lengths(0, iv.len()));
        ghash_blocks(&h, &s)
    };
    // GCTR (Algorithm 3) from inc32(J0)
    let mut ct = Vec::with_capacity(plaintext.len());
    let mut cb = j0;
    for chunk in plaintext.chunks(16) {
        cb = inc32(cb);
        let ks = e(cb);
        ct.extend(chunk.iter().zip(ks.iter()).map(|(p, k)| p ^ k));
    }
    let mut u = padded(aad);
    u.extend_from_slice(&padded(&ct));
    u.extend_from_slice(&lengths(aad.len(), ct.len()));
    let s = ghash_blocks(&h, &u);
    let mask = e(j0);
    let mut tag = [0u8; 16];
    for i in 0..16 {
        tag[i] = s[i] ^ mask[i];
    }
    (ct, tag)
}

/// Decrypts with [`gcm_seal`]'s inputs; `None` when the tag does not match.
pub fn gcm_open(key: &[u8; 32], iv: &[u8], aad: &[u8], ct: &[u8], tag: &[u8; 16]) -> Option<Vec<u8>> {
    // CTR is its own inverse: seal the ciphertext to get the plaintext back,
    // then check the tag of the original ciphertext.
    let (pt, _) = gcm_seal(key, iv, aad, ct);
    let (_, expected) = gcm_seal(key, iv, aad, &pt);
    (expected == *tag).then_some(pt)
}

/// HMAC-SHA256 as RFC 2104 defines it: `H((K' ^ opad) || H((K' ^ ipad) || m))`,
/// `K'` the key zero-padded to the 64-byte block (hashed first when longer).
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let mut inner = Sha256::new();
    inner.update(pad(0x36));
    inner.update(message);
    let mut outer = Sha256::new();
    outer.update(pad(0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// HKDF-SHA256 (RFC 5869): `PRK = HMAC(salt, IKM)`, then
/// `T(i) = HMAC(PRK, T(i-1) || info || i)` up to `len` bytes.
pub fn hkdf_sha256(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let prk = hmac_sha256(salt, ikm);
    let mut okm = Vec::with_capacity(len);
    let mut t: Vec<u8> = Vec::new();
    let mut i = 1u8;
    while okm.len() < len {
        let mut m = t.clone();
        m.extend_from_slice(info);
        m.push(i);
        t = hmac_sha256(&prk, &m).to_vec();
        okm.extend_from_slice(&t);
        i += 1;
    }
    okm.truncate(len);
    okm
}

/// docs/format.md's blind index value, written out: `VV:` + hex of
/// `HMAC(HKDF(key, "fieldcrypt/blind-index/v1", collection || 0 || path, 32), input)`.
pub fn blind_index(key: &[u8; 32], version: &[u8; 2], collection: &[u8], path: &[u8], input: &[u8]) -> String {
    let mut info = collection.to_vec();
    info.push(0);
    info.extend_from_slice(path);
    let k_path = hkdf_sha256(b"fieldcrypt/blind-index/v1", key, &info, 32);
    let mac = hmac_sha256(&k_path, input);
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}:{hex}", String::from_utf8_lossy(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SP 800-38D / the GCM specification's test case 14 (AES-256, 96-bit IV,
    /// 16 zero bytes) and test case 16's GHASH key, so the reference itself is
    /// pinned to published values and not only to other code.
    #[test]
    fn published_vectors() {
        let key = [0u8; 32];
        let (ct, tag) = gcm_seal(&key, &[0u8; 12], &[], &[0u8; 16]);
        assert_eq!(hex::encode(ct), "cea7403d4d606b6e074ec5d3baf39d18");
        assert_eq!(hex::encode(tag), "d0d1c8a799996bf0265b98b5d48ab919");
        let (_, tag) = gcm_seal(&key, &[0u8; 12], &[], &[]);
        assert_eq!(hex::encode(tag), "530f8afbc74536b9a963b4f1c4cb738b");

        let key: [u8; 32] = hex::decode("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308")
            .unwrap()
            .try_into()
            .unwrap();
        let iv = hex::decode("cafebabefacedbaddecaf888").unwrap();
        let aad = hex::decode("feedfacedeadbeeffeedfacedeadbeefabaddad2").unwrap();
        let pt = hex::decode(
            "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525\
             b16aedf5aa0de657ba637b39",
        )
        .unwrap();
        let (ct, tag) = gcm_seal(&key, &iv, &aad, &pt);
        assert_eq!(
            hex::encode(&ct),
            "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838\
             c5f61e6393ba7a0abcc9f662"
        );
        assert_eq!(hex::encode(tag), "76fc6ece0f4e1768cddf8853bb2d551b");
        assert_eq!(gcm_open(&key, &iv, &aad, &ct, &tag).unwrap(), pt);
    }

    #[test]
    fn inverse_and_iv_construction() {
        let one = 1u128 << 127;
        for x in [one, 3u128 << 100, 0xdead_beef_0123_4567_89ab_cdef_f00d_cafe] {
            assert_eq!(gf_mul(x, gf_inv(x)), one);
        }
        let h = ghash_key(&[7u8; 32]);
        let j0 = [0x11u8; 16];
        assert_eq!(j0_of(&h, &iv_for_j0(&h, &j0)), j0);
    }

    #[test]
    fn multiplication_is_commutative_and_one_is_neutral() {
        let one = 1u128 << 127; // the block 80 00 .. 00
        for x in [0u128, 1, one, 0xdead_beef << 64, u128::MAX] {
            assert_eq!(gf_mul(x, one), x);
            assert_eq!(gf_mul(one, x), x);
            assert_eq!(gf_mul(x, 0x1234_5678_9abc << 40), gf_mul(0x1234_5678_9abc << 40, x));
        }
    }
}
