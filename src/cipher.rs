//! AES-256-GCM over the stored format, with 16-byte IVs.
//!
//! `node:crypto` accepts a 16-byte IV for GCM and derives the initial counter
//! block with GHASH (NIST SP 800-38D, IVs other than 96 bits); `AesGcm<Aes256,
//! U16>` does the same, so values are byte-compatible both ways. There is no
//! additional authenticated data, as in the original implementation.
//!
//! The cipher itself is built from the same primitives aes-gcm uses (the
//! `aes` block cipher and GHASH: [`crate::clmul`] where the CPU has
//! PCLMULQDQ, else the `ghash` crate), following SP 800-38D section 7:
//!
//! * `J0 = GHASH_H(IV || 0^64 || [128]_64)`
//! * counter blocks `inc32^i(J0)` are written first and encrypted many per
//!   call, so the CPU pipelines the blocks (aes-gcm 0.11 makes each counter
//!   block from the previous one and encrypts blocks one at a time below its
//!   backend's parallel width, 64 blocks with VAES-512).
//! * `C = P xor E(inc32^i(J0))`, tag `= E(J0) xor GHASH_H(C || 0^64 || [len(C)]_64)`
//!
//! Values of up to [`SHORT_MAX`] bytes (ID numbers, SSNs, card numbers) take
//! the short path: every block of keystream, `E(J0)` first, in one call into
//! a stack buffer. Longer values take the long path where GHASH is the CLMUL
//! code: the keystream [`CHUNK_BLOCKS`] at a time, then GHASH over the whole
//! ciphertext (decrypting, GHASH first and the keystream only once the tag
//! matches). It is faster than aes-gcm mostly in GHASH: aes-gcm copies its
//! GHASH state per value and zeroizes the copies a byte at a time, and on
//! CPUs with VPCLMULQDQ the CLMUL code hashes 16 blocks per reduction.
//! Without CLMUL, long values go through aes-gcm.
//!
//! The keystream, `J0`, `E(J0)`, the unmasked hash and the expected tag are
//! wiped before returning. The tests below check both paths against aes-gcm
//! and the counter against `ctr`, src/vectors.rs runs the Wycheproof vectors
//! with 16-byte IVs through the short path (their messages are 0-40 bytes),
//! and `__test__/` checks both against `node:crypto` in both directions, at
//! every size.

use aes_gcm::aead::AeadInOut;
use aes_gcm::aes::cipher::{Array, BlockCipherEncrypt};
use aes_gcm::{Nonce, Tag};
use ctutils::CtEq;
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

/// Values up to this many bytes take the short path (see the module docs).
pub const SHORT_MAX: usize = 256;
const SHORT_BLOCKS: usize = SHORT_MAX / 16 + 1;

type Block = Array<u8, aes_gcm::aead::consts::U16>;

/// Overwrites `x` with zeros through a volatile write (one pass of wide
/// stores; `zeroize` on byte arrays writes a byte at a time).
fn wipe<T: Copy>(x: &mut T, zero: T) {
    // SAFETY: `x` is a valid, aligned, exclusive reference.
    unsafe { core::ptr::write_volatile(x, zero) };
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

/// [`wipe`]s each block: the used part of a keystream buffer.
fn wipe_blocks(blocks: &mut [Block]) {
    for b in blocks {
        wipe(b, Block::default());
    }
}

/// `[0]_64 || [bits]_64`: GHASH's length block with no associated data.
fn length_block(bytes: usize) -> Block {
    let mut b = Block::default();
    b[8..].copy_from_slice(&((bytes as u64) * 8).to_be_bytes());
    b
}

/// The pre-counter block for a 16-byte IV (SP 800-38D 7.1 step 2, an IV
/// that is not 96 bits long): `J0 = GHASH_H(IV || 0^64 || [128]_64)`.
/// The caller wipes it.
fn pre_counter_block(key: &Key, iv: &[u8; IV_LEN]) -> Block {
    ghash(key, iv, &length_block(IV_LEN))
}

/// The short path's keystream: `E(J0)` in block 0, then one block per 16
/// bytes of a `len`-byte value. Returns the number of blocks written.
fn short_keystream(key: &Key, iv: &[u8; IV_LEN], len: usize, ks: &mut [Block; SHORT_BLOCKS]) -> usize {
    debug_assert!(len <= SHORT_MAX);
    let mut j0 = pre_counter_block(key, iv);
    let n = 1 + len.div_ceil(16);
    counter_keystream(&key.aes, &j0, 0, &mut ks[..n]);
    wipe(&mut j0, Block::default());
    n
}

/// `ks[i] = E(inc32^(first + i)(j0))`, all blocks encrypted in one call.
fn counter_keystream(aes: &aes_gcm::aes::Aes256, j0: &Block, first: u32, ks: &mut [Block]) {
    let low = u32::from_be_bytes([j0[12], j0[13], j0[14], j0[15]]).wrapping_add(first);
    for (i, block) in ks.iter_mut().enumerate() {
        *block = *j0;
        // inc32: only the low 32 bits count, modulo 2^32
        block[12..].copy_from_slice(&low.wrapping_add(i as u32).to_be_bytes());
    }
    aes.encrypt_blocks(ks);
}

/// Keystream blocks made per call to the block cipher on the long path
/// (1 KiB, on the stack; aes's VAES-512 code works 64 blocks at a time).
const CHUNK_BLOCKS: usize = 64;

/// The most plaintext GCM allows (SP 800-38D: 2^39 - 256 bits), beyond
/// which the 32-bit counter would repeat.
const GCM_MAX: u64 = (1 << 36) - 32;

/// `[J0, E(J0)]` for `iv` (`E(J0)` masks the tag), written into `out`,
/// which the caller wipes.
fn j0_and_mask(key: &Key, iv: &[u8; IV_LEN], out: &mut [Block; 2]) {
    out[0] = pre_counter_block(key, iv);
    out[1] = out[0];
    key.aes.encrypt_blocks(&mut out[1..]);
}

/// `buf xor E(inc32^1(j0)), E(inc32^2(j0)), ..`: the counter-mode part of
/// the long path, [`CHUNK_BLOCKS`] at a time.
fn ctr_xor(aes: &aes_gcm::aes::Aes256, j0: &Block, buf: &mut [u8]) {
    let mut ks = [Block::default(); CHUNK_BLOCKS];
    let mut next = 1u32;
    let mut used = 0;
    for chunk in buf.chunks_mut(CHUNK_BLOCKS * 16) {
        let n = chunk.len().div_ceil(16);
        counter_keystream(aes, j0, next, &mut ks[..n]);
        xor_keystream(chunk, &ks[..n]);
        next = next.wrapping_add(n as u32);
        used = used.max(n);
    }
    wipe_blocks(&mut ks[..used]);
}

/// `GHASH_H(data zero-padded to whole blocks || last)` (see [`crate::clmul`]).
fn ghash(key: &Key, data: &[u8], last: &Block) -> Block {
    Block::from(key.ghash.hash(data, &(*last).into()))
}

/// `E(J0) xor GHASH_H(C || lengths)`: the tag of ciphertext `ct`.
fn masked_tag(key: &Key, ks0: &Block, ct: &[u8]) -> [u8; TAG_LEN] {
    let mut s = ghash(key, ct, &length_block(ct.len()));
    let mut tag = [0u8; TAG_LEN];
    for ((t, a), b) in tag.iter_mut().zip(s.iter()).zip(ks0.iter()) {
        *t = a ^ b;
    }
    wipe(&mut s, Block::default());
    tag
}

/// `buf xor ks`, 16 bytes at a time (one block per word, so the compiler
/// can use wide registers; a byte loop costs many instructions per block).
fn xor_keystream(buf: &mut [u8], ks: &[Block]) {
    let (blocks, tail) = buf.as_chunks_mut::<16>();
    for (b, k) in blocks.iter_mut().zip(ks) {
        let k: [u8; 16] = (*k).into();
        *b = (u128::from_ne_bytes(*b) ^ u128::from_ne_bytes(k)).to_ne_bytes();
    }
    if let Some(k) = ks.get(blocks.len()) {
        for (b, k) in tail.iter_mut().zip(k.iter()) {
            *b ^= k;
        }
    }
}

fn seal_short(key: &Key, iv: &[u8; IV_LEN], buf: &mut [u8]) -> [u8; TAG_LEN] {
    let mut ks = [Block::default(); SHORT_BLOCKS];
    let n = short_keystream(key, iv, buf.len(), &mut ks);
    xor_keystream(buf, &ks[1..n]);
    let tag = masked_tag(key, &ks[0], buf);
    wipe_blocks(&mut ks[..n]);
    tag
}

/// Whether `tag` is ciphertext `ct`'s tag under `mask` (`E(J0)`), compared
/// in constant time; the expected tag is wiped.
fn tag_matches(key: &Key, mask: &Block, ct: &[u8], tag: &[u8; TAG_LEN]) -> bool {
    let mut expected = masked_tag(key, mask, ct);
    let ok: bool = expected.ct_eq(tag).into();
    wipe(&mut expected, [0u8; TAG_LEN]);
    ok
}

/// Checks the tag before decrypting; `buf` is unchanged when it fails.
fn open_short(key: &Key, iv: &[u8; IV_LEN], tag: &[u8; TAG_LEN], buf: &mut [u8]) -> bool {
    let mut ks = [Block::default(); SHORT_BLOCKS];
    let n = short_keystream(key, iv, buf.len(), &mut ks);
    let ok = tag_matches(key, &ks[0], buf, tag);
    if ok {
        xor_keystream(buf, &ks[1..n]);
    }
    wipe_blocks(&mut ks[..n]);
    ok
}

/// The long path: [`ctr_xor`], then the tag over the ciphertext.
fn seal_long(key: &Key, iv: &[u8; IV_LEN], buf: &mut [u8]) -> [u8; TAG_LEN] {
    let mut jm = [Block::default(); 2];
    j0_and_mask(key, iv, &mut jm);
    ctr_xor(&key.aes, &jm[0], buf);
    let tag = masked_tag(key, &jm[1], buf);
    wipe_blocks(&mut jm);
    tag
}

/// Checks the tag before decrypting; `buf` is unchanged when it fails.
fn open_long(key: &Key, iv: &[u8; IV_LEN], tag: &[u8; TAG_LEN], buf: &mut [u8]) -> bool {
    let mut jm = [Block::default(); 2];
    j0_and_mask(key, iv, &mut jm);
    let ok = tag_matches(key, &jm[1], buf, tag);
    if ok {
        ctr_xor(&key.aes, &jm[0], buf);
    }
    wipe_blocks(&mut jm);
    ok
}

/// Whether a value of `len` bytes takes the long path: where GHASH is the
/// CLMUL code (see [`crate::clmul`]), up to GCM's limit; else aes-gcm.
fn long_path(key: &Key, len: usize) -> bool {
    key.ghash.is_clmul() && len as u64 <= GCM_MAX
}

/// Encrypts `buf` in place under `iv`, returning the tag.
pub fn seal_in_place(key: &Key, iv: &[u8; IV_LEN], buf: &mut [u8]) -> Result<[u8; TAG_LEN]> {
    if buf.len() <= SHORT_MAX {
        return Ok(seal_short(key, iv, buf));
    }
    if long_path(key, buf.len()) {
        return Ok(seal_long(key, iv, buf));
    }
    let tag =
        key.cipher.encrypt_inout_detached(&Nonce::from(*iv), b"", buf.into()).map_err(|_| FieldCryptError::TooLarge)?;
    Ok(tag.into())
}

/// Decrypts `buf` in place after checking `tag`. On failure `buf` is left
/// as it was (every path checks the tag before decrypting).
pub fn open_in_place(
    key: &Key,
    version: &Version,
    iv: &[u8; IV_LEN],
    tag: &[u8; TAG_LEN],
    buf: &mut [u8],
) -> Result<()> {
    let ok = if buf.len() <= SHORT_MAX {
        open_short(key, iv, tag, buf)
    } else if long_path(key, buf.len()) {
        open_long(key, iv, tag, buf)
    } else {
        key.cipher.decrypt_inout_detached(&Nonce::from(*iv), b"", buf.into(), &Tag::from(*tag)).is_ok()
    };
    if ok {
        Ok(())
    } else {
        Err(FieldCryptError::AuthenticationFailed(*version))
    }
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

    /// aes-gcm's own code, for comparison with the short path.
    fn aes_gcm_seal(key: &Key, iv: &[u8; IV_LEN], buf: &mut [u8]) -> [u8; TAG_LEN] {
        key.cipher.encrypt_inout_detached(&Nonce::from(*iv), b"", buf.into()).unwrap().into()
    }

    fn aes_gcm_open(key: &Key, iv: &[u8; IV_LEN], tag: &[u8; TAG_LEN], buf: &mut [u8]) -> bool {
        key.cipher.decrypt_inout_detached(&Nonce::from(*iv), b"", buf.into(), &Tag::from(*tag)).is_ok()
    }

    /// `seal_in_place`/`open_in_place` against aes-gcm on `len` random bytes:
    /// the same output, each opens the other's, and a flipped tag or
    /// ciphertext bit (chosen by `salt`) is rejected, the buffer left as it was.
    fn check_against_aes_gcm(key: &Key, len: usize, salt: usize) {
        let mut rng = rand::rng();
        let iv = random_iv();
        let mut plain = vec![0u8; len];
        rng.fill_bytes(&mut plain);
        let (mut a, mut b) = (plain.clone(), plain.clone());
        let tag_a = aes_gcm_seal(key, &iv, &mut a);
        let tag_b = seal_in_place(key, &iv, &mut b).unwrap();
        assert!(a == b && tag_a == tag_b, "{len} bytes");
        let mut c = a.clone();
        assert!(open_short_or_long(key, &iv, &tag_a, &mut c) && c == plain, "{len} bytes");
        assert!(aes_gcm_open(key, &iv, &tag_b, &mut b) && b == plain, "{len} bytes");
        let mut bad = tag_a;
        bad[salt % TAG_LEN] ^= 0x80;
        let mut d = a.clone();
        assert!(!open_short_or_long(key, &iv, &bad, &mut d) && d == a, "{len} bytes, tag");
        if len > 0 {
            d[salt * 7919 % len] ^= 1;
            let before = d.clone();
            assert!(!open_short_or_long(key, &iv, &tag_a, &mut d) && d == before, "{len} bytes, ciphertext");
        }
    }

    fn random_key() -> Key {
        let mut kb = [0u8; 32];
        rand::rng().fill_bytes(&mut kb);
        Key::from_bytes(&kb)
    }

    #[test]
    fn short_path_matches_aes_gcm() {
        for round in 0..40 {
            let key = random_key();
            for len in 0..=SHORT_MAX + 40 {
                check_against_aes_gcm(&key, len, round);
            }
        }
    }

    /// The long path (CLMUL GHASH, where this build has it) against aes-gcm,
    /// across chunk boundaries and the wide GHASH's 256-byte groups.
    #[test]
    fn long_path_matches_aes_gcm() {
        let lengths: Vec<usize> = (SHORT_MAX + 1..=1300)
            .step_by(7)
            .chain([1024, 1025, 4095, 4096, 16 * 1024 + 3, 65536, 65536 + 17, (1 << 20) + 5])
            .collect();
        for round in 0..6 {
            let key = random_key();
            assert_eq!(long_path(&key, 4096), key.ghash.is_clmul());
            for &len in &lengths {
                check_against_aes_gcm(&key, len, round);
            }
        }
    }

    fn open_short_or_long(key: &Key, iv: &[u8; IV_LEN], tag: &[u8; TAG_LEN], buf: &mut [u8]) -> bool {
        open_in_place(key, b"01", iv, tag, buf).is_ok()
    }

    /// `len` bytes of `ctr`'s Ctr32BE keystream from counter block `j0` on.
    fn ctr32be_keystream(kb: &[u8; 32], j0: &Block, len: usize) -> Vec<u8> {
        use aes_gcm::aes::cipher::{KeyIvInit, StreamCipher};
        let mut ks = vec![0u8; len];
        ctr::Ctr32BE::<aes_gcm::aes::Aes256>::new(kb.into(), j0).apply_keystream(&mut ks);
        ks
    }

    /// Both paths' counters against `ctr`'s, across the 32-bit wrap-around.
    #[test]
    fn counters_wrap_like_ctr32be() {
        let kb = [0x42u8; 32];
        let key = Key::from_bytes(&kb);
        for low in [0xffff_ffc0u32, 0xffff_fff0, 0xffff_fffe, 0xffff_ffff, 0] {
            let mut j0 = Block::from([0xa5u8; 16]);
            j0[12..].copy_from_slice(&low.to_be_bytes());
            // the short path: E(J0), E(inc32(J0)), .. in one call
            let mut ks = [Block::default(); SHORT_BLOCKS];
            counter_keystream(&key.aes, &j0, 0, &mut ks);
            assert_eq!(ks.concat(), ctr32be_keystream(&kb, &j0, SHORT_BLOCKS * 16), "short, low word {low:#x}");
            // the long path: from inc32(J0), over two chunks and a partial block
            let mut got = vec![0u8; CHUNK_BLOCKS * 16 * 2 + 40];
            ctr_xor(&key.aes, &j0, &mut got);
            assert_eq!(got, ctr32be_keystream(&kb, &j0, 16 + got.len())[16..], "long, low word {low:#x}");
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
