//! Tests of src/cipher.rs: both paths against aes-gcm, `ctr` and the bit-by-bit
//! reference of src/reference.rs, the counter wrap-around, tampering.

use super::*;
use crate::keyring::Keyring;
use rand::RngCore;

const K1: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const K2: &str = "1f1e1d1c1b1a191817161514131211100f0e0d0c0b0a09080706050403020100";

fn ring() -> Keyring {
    Keyring::from_hex_pairs([("01", K1), ("02", K2)]).unwrap()
}

fn decrypt_str(ring: &Keyring, s: &str) -> Result<String> {
    let env = format::parse(s)?;
    let key = ring.get(&env.version)?.clone();
    let bytes = decrypt_envelope(&key, env, b"")?;
    Ok(utf8(&bytes)?.to_owned())
}

#[test]
fn round_trips_text() {
    let ring = ring();
    for pt in ["", "A1234567", "ünïcödé 日本語", "emoji 🛂🪪", "nul\0inside", &"x".repeat(100_000)] {
        let s = encrypt(ring.get(b"01").unwrap(), b"01", b"", pt.as_bytes()).unwrap();
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
    let s = encrypt_with_iv(ring.get(b"01").unwrap(), b"01", &iv, b"", b"A1234567").unwrap();
    assert_eq!(s, NODE_KAT);
    assert_eq!(decrypt_str(&ring, NODE_KAT).unwrap(), "A1234567");
}
const NODE_KAT: &str = "01:000102030405060708090a0b0c0d0e0f:53bccad86bf07da7959fb62e17a77241:265d92450dd17c1f";

#[test]
fn every_flipped_bit_is_rejected() {
    let ring = ring();
    let s = encrypt(ring.get(b"01").unwrap(), b"01", b"", b"123-45-6789").unwrap();
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
                    decrypt_envelope(ring.get(b"01").unwrap(), e, b"").unwrap_err(),
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
    let tag_b = seal_in_place(key, &iv, b"", &mut b).unwrap();
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
    open_in_place(key, b"01", iv, tag, b"", buf).is_ok()
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

/// IVs under key `000102..1f` whose `J0` ends in the given low word, built
/// with `reference::iv_for_j0` (`J0 = a5a5..a5 || low`): the 32-bit counter
/// wraps inside the message, on the short path (`fffffffd`, `ffffffff`)
/// and, across the long path's chunks, on the long path (`ffffffb9`).
const WRAP_IVS: [(u32, &str); 3] = [
    (0xffff_fffd, "3757e3cbd3532af73343a358b0a4d4c5"),
    (0xffff_ffff, "c44743f426628fe07d111b797380a27c"),
    (0xffff_ffb9, "1762a44a9f04c23065b1d7235262ee85"),
];

/// Messages that cross the counter's wrap-around on both paths, against
/// the bit-by-bit reference and aes-gcm, and back.
#[test]
fn counter_wraps_inside_messages_like_the_references() {
    let kb: [u8; 32] = core::array::from_fn(|i| i as u8);
    let key = Key::from_bytes(&kb);
    let h = crate::reference::ghash_key(&kb);
    for (low, iv_hex) in WRAP_IVS {
        let iv: [u8; IV_LEN] = hex::decode(iv_hex).unwrap().try_into().unwrap();
        let j0 = crate::reference::j0_of(&h, &iv);
        assert_eq!(j0[..12], [0xa5; 12]);
        assert_eq!(u32::from_be_bytes(j0[12..].try_into().unwrap()), low, "the IV's J0");
        for len in [16, 47, 100, SHORT_MAX, SHORT_MAX + 1, 1500, 8192 + 5] {
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 + 7) as u8).collect();
            let (want_ct, want_tag) = crate::reference::gcm_seal(&kb, &iv, b"", &plain);
            let mut buf = plain.clone();
            let tag = seal_in_place(&key, &iv, b"", &mut buf).unwrap();
            assert!(buf == want_ct && tag == want_tag, "low word {low:#x}, {len} bytes: reference");
            let mut theirs = plain.clone();
            assert_eq!(aes_gcm_seal(&key, &iv, &mut theirs), tag, "low word {low:#x}, {len} bytes: aes-gcm");
            assert_eq!(theirs, buf);
            assert!(open_short_or_long(&key, &iv, &tag, &mut buf) && buf == plain);
        }
    }
}

/// The product against the bit-by-bit reference on random keys, IVs and
/// every length of the short path and a spread of long ones.
#[test]
fn both_paths_match_the_bit_by_bit_reference() {
    let mut rng = rand::rng();
    let lengths: Vec<usize> = (0..=SHORT_MAX + 20).chain([511, 1024, 1025, 4096 + 3]).collect();
    for _ in 0..3 {
        let mut kb = [0u8; 32];
        rng.fill_bytes(&mut kb);
        let key = Key::from_bytes(&kb);
        for &len in &lengths {
            let iv = random_iv();
            let mut plain = vec![0u8; len];
            rng.fill_bytes(&mut plain);
            let (want_ct, want_tag) = crate::reference::gcm_seal(&kb, &iv, b"", &plain);
            let mut buf = plain.clone();
            let tag = seal_in_place(&key, &iv, b"", &mut buf).unwrap();
            assert!(buf == want_ct && tag == want_tag, "{len} bytes");
            assert_eq!(crate::reference::gcm_open(&kb, &iv, b"", &buf, &tag).as_deref(), Some(&plain[..]));
        }
    }
}

#[test]
fn wrong_key_is_an_authentication_failure() {
    let ring = ring();
    let s = encrypt(ring.get(b"01").unwrap(), b"01", b"", b"secret").unwrap();
    let env = format::parse(&s).unwrap();
    assert_eq!(
        decrypt_envelope(ring.get(b"02").unwrap(), env, b"").unwrap_err(),
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
    let s = encrypt(ring.get(b"01").unwrap(), b"01", b"", &[0xff, 0xfe]).unwrap();
    assert_eq!(decrypt_str(&ring, &s).unwrap_err(), FieldCryptError::NotUtf8);
}

/// Both paths with additional data against the bit-by-bit reference and
/// aes-gcm; any change to the additional data is an authentication failure,
/// the buffer left as it was.
#[test]
fn additional_data_matches_the_references() {
    let mut rng = rand::rng();
    let mut kb = [0u8; 32];
    rng.fill_bytes(&mut kb);
    let key = Key::from_bytes(&kb);
    let lengths: Vec<usize> = (0..=SHORT_MAX + 1).step_by(13).chain([SHORT_MAX, 1000, 4096 + 5]).collect();
    for aad_len in [1usize, 15, 16, 17, 40, 100, 300] {
        let mut aad = vec![0u8; aad_len];
        rng.fill_bytes(&mut aad);
        for &len in &lengths {
            let iv = random_iv();
            let mut plain = vec![0u8; len];
            rng.fill_bytes(&mut plain);
            let (want_ct, want_tag) = crate::reference::gcm_seal(&kb, &iv, &aad, &plain);
            let mut buf = plain.clone();
            let tag = seal_in_place(&key, &iv, &aad, &mut buf).unwrap();
            assert!(buf == want_ct && tag == want_tag, "aad {aad_len}, {len} bytes: reference");
            let mut theirs = plain.clone();
            let their_tag: [u8; TAG_LEN] =
                key.cipher.encrypt_inout_detached(&Nonce::from(iv), &aad, theirs.as_mut_slice().into()).unwrap().into();
            assert!(theirs == buf && their_tag == tag, "aad {aad_len}, {len} bytes: aes-gcm");
            let mut other = aad.clone();
            other[aad_len / 2] ^= 1;
            let before = buf.clone();
            assert!(open_in_place(&key, b"01", &iv, &tag, &other, &mut buf).is_err(), "changed aad {aad_len}, {len}");
            assert_eq!(buf, before);
            assert!(open_in_place(&key, b"01", &iv, &tag, b"", &mut buf).is_err(), "no aad, {len}");
            open_in_place(&key, b"01", &iv, &tag, &aad, &mut buf).unwrap();
            assert_eq!(buf, plain);
        }
    }
}

#[test]
fn wipes_zero_what_they_are_given() {
    let mut block = Block::from([0xa5u8; 16]);
    wipe(&mut block, Block::default());
    assert_eq!(block, Block::default());
    let mut tag = [0x5au8; TAG_LEN];
    wipe(&mut tag, [0u8; TAG_LEN]);
    assert_eq!(tag, [0u8; TAG_LEN]);
    let mut blocks = [Block::from([0xffu8; 16]); 3];
    wipe_blocks(&mut blocks[..2]);
    assert_eq!(blocks[..2], [Block::default(); 2]);
    assert_eq!(blocks[2], Block::from([0xffu8; 16]), "only the blocks given are wiped");
}

#[test]
fn the_long_path_ends_at_the_gcm_limit() {
    // SP 800-38D: a plaintext of at most 2^39 - 256 bits.
    assert_eq!(GCM_MAX * 8, (1u64 << 39) - 256);
    let ring = ring();
    let key = ring.get(b"01").unwrap();
    let limit = usize::try_from(GCM_MAX).unwrap();
    for len in [SHORT_MAX + 1, limit] {
        assert_eq!(long_path(key, len), key.ghash.is_clmul(), "{len} bytes");
    }
    assert!(!long_path(key, limit + 1), "past the limit, aes-gcm refuses the value");
}
