//! AES-256-GCM over the stored format, with 16-byte IVs.
//!
//! `node:crypto` accepts a 16-byte IV for GCM and derives the initial counter
//! block with GHASH (NIST SP 800-38D, IVs other than 96 bits); `AesGcm<Aes256,
//! U16>` does the same, so values are byte-compatible both ways. A value
//! bound to a context authenticates it as additional data (see
//! [`crate::work::Context`]); an unbound value has none, as in the original
//! implementation.
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
use zeroize::Zeroizing;

use crate::error::{FieldCryptError, Result, Version};
use crate::format::{self, Envelope, IV_LEN, TAG_LEN};
use crate::keyring::Key;

pub use crate::iv::random_iv;

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

/// `[len(A)]_64 || [len(C)]_64` in bits: GHASH's length block.
fn length_block(aad: usize, bytes: usize) -> Block {
    let mut b = Block::default();
    b[..8].copy_from_slice(&((aad as u64) * 8).to_be_bytes());
    b[8..].copy_from_slice(&((bytes as u64) * 8).to_be_bytes());
    b
}

/// The pre-counter block for a 16-byte IV (SP 800-38D 7.1 step 2, an IV
/// that is not 96 bits long): `J0 = GHASH_H(IV || 0^64 || [128]_64)`.
/// The caller wipes it.
fn pre_counter_block(key: &Key, iv: &[u8; IV_LEN]) -> Block {
    ghash(key, b"", iv, &length_block(0, IV_LEN))
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

/// `GHASH_H(aad zero-padded || data zero-padded || last)` (see [`crate::clmul`]).
fn ghash(key: &Key, aad: &[u8], data: &[u8], last: &Block) -> Block {
    Block::from(key.ghash.hash_with_aad(aad, data, &(*last).into()))
}

/// `E(J0) xor GHASH_H(A || C || lengths)`: the tag of ciphertext `ct` with
/// additional data `aad`.
fn masked_tag(key: &Key, ks0: &Block, aad: &[u8], ct: &[u8]) -> [u8; TAG_LEN] {
    let mut s = ghash(key, aad, ct, &length_block(aad.len(), ct.len()));
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

fn seal_short(key: &Key, iv: &[u8; IV_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
    let mut ks = [Block::default(); SHORT_BLOCKS];
    let n = short_keystream(key, iv, buf.len(), &mut ks);
    xor_keystream(buf, &ks[1..n]);
    let tag = masked_tag(key, &ks[0], aad, buf);
    wipe_blocks(&mut ks[..n]);
    tag
}

/// Whether `tag` is ciphertext `ct`'s tag under `mask` (`E(J0)`), compared
/// in constant time; the expected tag is wiped.
fn tag_matches(key: &Key, mask: &Block, aad: &[u8], ct: &[u8], tag: &[u8; TAG_LEN]) -> bool {
    let mut expected = masked_tag(key, mask, aad, ct);
    let ok: bool = expected.ct_eq(tag).into();
    wipe(&mut expected, [0u8; TAG_LEN]);
    ok
}

/// Checks the tag before decrypting; `buf` is unchanged when it fails.
fn open_short(key: &Key, iv: &[u8; IV_LEN], tag: &[u8; TAG_LEN], aad: &[u8], buf: &mut [u8]) -> bool {
    let mut ks = [Block::default(); SHORT_BLOCKS];
    let n = short_keystream(key, iv, buf.len(), &mut ks);
    let ok = tag_matches(key, &ks[0], aad, buf, tag);
    if ok {
        xor_keystream(buf, &ks[1..n]);
    }
    wipe_blocks(&mut ks[..n]);
    ok
}

/// The long path: [`ctr_xor`], then the tag over the ciphertext.
fn seal_long(key: &Key, iv: &[u8; IV_LEN], aad: &[u8], buf: &mut [u8]) -> [u8; TAG_LEN] {
    let mut jm = [Block::default(); 2];
    j0_and_mask(key, iv, &mut jm);
    ctr_xor(&key.aes, &jm[0], buf);
    let tag = masked_tag(key, &jm[1], aad, buf);
    wipe_blocks(&mut jm);
    tag
}

/// Checks the tag before decrypting; `buf` is unchanged when it fails.
fn open_long(key: &Key, iv: &[u8; IV_LEN], tag: &[u8; TAG_LEN], aad: &[u8], buf: &mut [u8]) -> bool {
    let mut jm = [Block::default(); 2];
    j0_and_mask(key, iv, &mut jm);
    let ok = tag_matches(key, &jm[1], aad, buf, tag);
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

/// Encrypts `buf` in place under `iv`, authenticating `aad` too (empty for
/// a value bound to no context), returning the tag.
pub fn seal_in_place(key: &Key, iv: &[u8; IV_LEN], aad: &[u8], buf: &mut [u8]) -> Result<[u8; TAG_LEN]> {
    if buf.len() <= SHORT_MAX {
        return Ok(seal_short(key, iv, aad, buf));
    }
    if long_path(key, buf.len()) {
        return Ok(seal_long(key, iv, aad, buf));
    }
    let tag =
        key.cipher.encrypt_inout_detached(&Nonce::from(*iv), aad, buf.into()).map_err(|_| FieldCryptError::TooLarge)?;
    Ok(tag.into())
}

/// Decrypts `buf` in place after checking `tag`. On failure `buf` is left
/// as it was (every path checks the tag before decrypting).
pub fn open_in_place(
    key: &Key,
    version: &Version,
    iv: &[u8; IV_LEN],
    tag: &[u8; TAG_LEN],
    aad: &[u8],
    buf: &mut [u8],
) -> Result<()> {
    let ok = if buf.len() <= SHORT_MAX {
        open_short(key, iv, tag, aad, buf)
    } else if long_path(key, buf.len()) {
        open_long(key, iv, tag, aad, buf)
    } else {
        key.cipher.decrypt_inout_detached(&Nonce::from(*iv), aad, buf.into(), &Tag::from(*tag)).is_ok()
    };
    if ok {
        Ok(())
    } else {
        Err(FieldCryptError::AuthenticationFailed(*version))
    }
}

/// Encrypts bytes into a stored value under a fresh random IV, bound to
/// `aad` (empty: bound to nothing).
pub fn encrypt(key: &Key, version: &Version, aad: &[u8], plaintext: &[u8]) -> Result<String> {
    encrypt_with_iv(key, version, &random_iv(), aad, plaintext)
}

/// Encrypts a buffer the caller owns, in place (it holds ciphertext
/// afterwards), appending the stored value (ASCII) to `out`, under a fresh
/// random IV. Saves a copy and an allocation on the hot path.
pub fn encrypt_into(key: &Key, version: &Version, aad: &[u8], buf: &mut [u8], out: &mut Vec<u8>) -> Result<()> {
    let iv = random_iv();
    let tag = seal_in_place(key, &iv, aad, buf)?;
    format::serialize_into(version, &iv, &tag, buf, out);
    Ok(())
}

/// Encrypts with a caller-chosen IV. Only for test vectors: reusing an IV
/// under one key destroys GCM's security.
pub fn encrypt_with_iv(
    key: &Key,
    version: &Version,
    iv: &[u8; IV_LEN],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<String> {
    let mut buf = plaintext.to_vec();
    let tag = seal_in_place(key, iv, aad, &mut buf)?;
    Ok(format::serialize(version, iv, &tag, &buf))
}

/// Decrypts a parsed stored value to bytes, in a buffer zeroized on drop.
pub fn decrypt_envelope(key: &Key, env: Envelope, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    let Envelope { version, iv, tag, ciphertext } = env;
    let mut buf = Zeroizing::new(ciphertext);
    open_in_place(key, &version, &iv, &tag, aad, &mut buf)?;
    Ok(buf)
}

/// Parses a stored value and decrypts it into `buf` (cleared first; a
/// caller-owned buffer saves an allocation). `ring` supplies the key of the
/// value's version.
pub fn decrypt_into(ring: &crate::keyring::Keyring, stored: &[u8], aad: &[u8], buf: &mut Vec<u8>) -> Result<()> {
    let (version, iv, tag) = format::parse_into(stored, buf)?;
    let key = ring.get(&version)?;
    open_in_place(key, &version, &iv, &tag, aad, buf)
}

/// Checks that decrypted bytes are UTF-8 text.
pub fn utf8(bytes: &[u8]) -> Result<&str> {
    std::str::from_utf8(bytes).map_err(|_| FieldCryptError::NotUtf8)
}

#[cfg(test)]
mod tests;
