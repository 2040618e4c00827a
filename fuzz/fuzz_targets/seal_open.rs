//! `cipher::seal_in_place` and `open_in_place` against RustCrypto's aes-gcm
//! (`AesGcm<Aes256, U16>`) and the bit-by-bit SP 800-38D reference of
//! src/reference.rs, on keys, IVs, additional data and plaintexts derived
//! from the input; then a one-bit change of the ciphertext, tag, additional
//! data or IV must be refused, leaving the buffer as it was.
//!
//! The input (zero-padded to 55 bytes):
//!
//! | bytes  | what |
//! |--------|------|
//! | 0..32  | the AES-256 key |
//! | 32..48 | the 16-byte IV |
//! | 48..50 | additional data length, u16 LE mod 301 |
//! | 50..52 | plaintext length, u16 LE mod 5001 (crosses `SHORT_MAX` and the long path's 1 KiB chunks) |
//! | 52     | what to change (low 2 bits): ciphertext, tag, additional data, IV |
//! | 53..55 | which bit, u16 LE mod the field's size in bits |
//! | 55..   | the additional data, then the plaintext: these bytes, repeated (plus the round number) as far as needed; zeros if none |
#![no_main]

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::AeadInOut;
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, KeyInit, Nonce, Tag};
use fieldcrypt::cipher::{self, open_in_place, seal_in_place};
use fieldcrypt::error::FieldCryptError;
use fieldcrypt::format;
use fieldcrypt::keyring::Key;
use fieldcrypt::reference;
use libfuzzer_sys::fuzz_target;

const HEADER: usize = 55;
const MAX_AAD: usize = 300;
const MAX_PLAIN: usize = 5000;

fn u16_at(h: &[u8; HEADER], i: usize) -> usize {
    usize::from(u16::from_le_bytes([h[i], h[i + 1]]))
}

/// `len` bytes of `content` repeated, each round shifted by its number.
fn stretch(content: &[u8], from: usize, len: usize) -> Vec<u8> {
    if content.is_empty() {
        return vec![0; len];
    }
    let n = content.len();
    (from..from + len).map(|i| content[i % n].wrapping_add((i / n) as u8)).collect()
}

fn flip(bytes: &mut [u8], bit: usize) {
    let bit = bit % (bytes.len() * 8);
    bytes[bit / 8] ^= 1 << (bit % 8);
}

fuzz_target!(|data: &[u8]| {
    let mut h = [0u8; HEADER];
    let n = data.len().min(HEADER);
    h[..n].copy_from_slice(&data[..n]);
    let content = &data[n..];

    let kb: [u8; 32] = h[..32].try_into().unwrap();
    let iv: [u8; 16] = h[32..48].try_into().unwrap();
    let aad_len = u16_at(&h, 48) % (MAX_AAD + 1);
    let len = u16_at(&h, 50) % (MAX_PLAIN + 1);
    let aad = stretch(content, 0, aad_len);
    let plain = stretch(content, aad_len, len);

    let key = Key::from_bytes(&kb);
    let theirs_cipher = AesGcm::<Aes256, U16>::new(&kb.into());

    // seal: ours, aes-gcm's, the reference's
    let mut ours = plain.clone();
    let tag = seal_in_place(&key, &iv, &aad, &mut ours).expect("seal");
    let mut theirs = plain.clone();
    let their_tag: [u8; 16] = theirs_cipher
        .encrypt_inout_detached(&Nonce::from(iv), &aad, theirs.as_mut_slice().into())
        .expect("aes-gcm seal")
        .into();
    assert!(ours == theirs, "ciphertext differs from aes-gcm's: aad {aad_len}, {len} bytes");
    assert_eq!(tag, their_tag, "tag differs from aes-gcm's: aad {aad_len}, {len} bytes");
    let (want_ct, want_tag) = reference::gcm_seal(&kb, &iv, &aad, &plain);
    assert!(ours == want_ct, "ciphertext differs from the reference's: aad {aad_len}, {len} bytes");
    assert_eq!(tag, want_tag, "tag differs from the reference's: aad {aad_len}, {len} bytes");

    // the stored-value path
    let stored = cipher::encrypt_with_iv(&key, b"01", &iv, &aad, &plain).expect("encrypt_with_iv");
    assert_eq!(stored, format::serialize(b"01", &iv, &tag, &ours));

    // one bit changed: refused by both, the buffer unchanged
    let (mut ct, mut t, mut a, mut v) = (ours.clone(), tag, aad.clone(), iv);
    let bit = u16_at(&h, 53);
    match h[52] & 3 {
        0 if !ct.is_empty() => flip(&mut ct, bit),
        2 if !a.is_empty() => flip(&mut a, bit),
        2 => a.push(0), // no additional data: one zero byte of it
        3 => flip(&mut v, bit),
        _ => flip(&mut t, bit),
    }
    let before = ct.clone();
    assert_eq!(
        open_in_place(&key, b"01", &v, &t, &a, &mut ct),
        Err(FieldCryptError::AuthenticationFailed(*b"01")),
        "a changed value opened: choice {}, bit {bit}, aad {aad_len}, {len} bytes",
        h[52] & 3
    );
    assert!(ct == before, "a failed open changed the buffer");
    assert!(theirs_cipher
        .decrypt_inout_detached(&Nonce::from(v), &a, ct.as_mut_slice().into(), &Tag::from(t))
        .is_err());

    // open: ours, and aes-gcm's of our output, and through the stored value
    open_in_place(&key, b"01", &iv, &tag, &aad, &mut ours).expect("open");
    assert!(ours == plain, "opened to something else: aad {aad_len}, {len} bytes");
    theirs_cipher
        .decrypt_inout_detached(&Nonce::from(iv), &aad, theirs.as_mut_slice().into(), &Tag::from(tag))
        .expect("aes-gcm open");
    assert!(theirs == plain);
    let env = format::parse(&stored).expect("parse");
    assert!(cipher::decrypt_envelope(&key, env, &aad).expect("decrypt_envelope")[..] == plain[..]);
});
