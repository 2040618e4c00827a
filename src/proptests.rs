//! Property tests: the comparisons of the fuzz targets in `fuzz/` (see
//! fuzz/README.md) with generated inputs, at a modest number of cases, inside
//! `cargo test` on the stable toolchain and in both configurations of
//! `npm run test:rust` (with `--cfg polyval_backend="soft"` the CLMUL-only
//! hashers do not exist and the long path is aes-gcm's).
//!
//! * the parser: `parse`, `parse_into`, `is_well_formed` and `version_of`
//!   agree with each other and with a predicate written from docs/format.md;
//!   a parsed value is re-serialized as its lowercase self;
//! * sealing and opening against aes-gcm's `AesGcm<Aes256, U16>` and the
//!   bit-by-bit reference of src/reference.rs, on arbitrary keys, IVs,
//!   additional data and lengths on both sides of `SHORT_MAX` and across the
//!   long path's chunks; a one-bit change is refused, the buffer unchanged;
//! * GHASH (`Ghash::new`, the 128-bit code forced, the wide code's algorithm
//!   emulated lane by lane) against the reference.
//! * blind index values (single and batch) against the RFC 2104 / RFC 5869
//!   reference over SHA-256, on arbitrary keys, collections, paths and inputs.
//!
//! `PROPTEST_CASES=n` overrides every test's case count (for a longer run).
//! A failing case is shrunk and saved under `proptest-regressions/`.

use aes_gcm::aead::consts::U16;
use aes_gcm::aead::AeadInOut;
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, KeyInit, Nonce, Tag};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::cipher::{open_in_place, seal_in_place, SHORT_MAX};
use crate::clmul::Ghash;
use crate::error::FieldCryptError;
use crate::format::{self, Envelope};
use crate::keyring::Key;
use crate::reference;

/// `cases` unless `PROPTEST_CASES` is set.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(cases);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

/// Every reading of `s` agrees; a parsed value is re-serialized as `s` in
/// lowercase and parses to itself.
fn check_parser(s: &[u8]) -> Result<(), TestCaseError> {
    let well_formed = format::is_well_formed(s);
    prop_assert_eq!(well_formed, reference::well_formed(s));
    let parsed = format::parse(s);
    let mut ct = vec![0xa5; 3]; // parse_into clears it first
    let header = format::parse_into(s, &mut ct);
    let version = format::version_of(s);
    match parsed {
        Ok(env) => {
            prop_assert!(well_formed);
            prop_assert_eq!(header, Ok((env.version, env.iv, env.tag)));
            prop_assert_eq!(&ct, &env.ciphertext);
            prop_assert_eq!(version, Ok(env.version));
            let out = format::serialize(&env.version, &env.iv, &env.tag, &env.ciphertext);
            prop_assert_eq!(out.as_bytes(), &s.to_ascii_lowercase()[..]);
            prop_assert_eq!(out.len(), format::stored_len(env.ciphertext.len()));
            prop_assert_eq!(format::parse(&out), Ok(env));
        }
        Err(e) => {
            prop_assert!(!well_formed);
            prop_assert_eq!(e, FieldCryptError::InvalidFormat);
            prop_assert_eq!(header, Err(FieldCryptError::InvalidFormat));
            prop_assert_eq!(version, Err(FieldCryptError::InvalidFormat));
        }
    }
    Ok(())
}

/// A well-formed stored value with every hex digit's case chosen by `upper`.
fn stored_value() -> impl Strategy<Value = (Envelope, Vec<u8>)> {
    (any::<[u8; 2]>(), any::<[u8; 16]>(), any::<[u8; 16]>(), vec(any::<u8>(), 0..80), any::<u64>()).prop_map(
        |(v, iv, tag, ciphertext, upper)| {
            let version = [b'0' + v[0] % 10, b'0' + v[1] % 10];
            let mut s = format::serialize(&version, &iv, &tag, &ciphertext).into_bytes();
            for (i, c) in s.iter_mut().enumerate() {
                if upper >> (i % 64) & 1 == 1 {
                    c.make_ascii_uppercase();
                }
            }
            (Envelope { version, iv, tag, ciphertext }, s)
        },
    )
}

/// Bytes near the format's alphabet, so that generated strings are often
/// close to well-formed.
fn format_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => prop::sample::select(b"0123456789abcdefABCDEF:".to_vec()),
        1 => any::<u8>(),
    ]
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn parser_agrees_on_arbitrary_bytes(s in vec(any::<u8>(), 0..160)) {
        check_parser(&s)?;
    }

    #[test]
    fn parser_agrees_on_format_like_bytes(s in vec(format_byte(), 60..120)) {
        check_parser(&s)?;
    }

    #[test]
    fn parser_round_trips_stored_values((env, s) in stored_value()) {
        prop_assert_eq!(format::parse(&s), Ok(env));
        check_parser(&s)?;
    }

    #[test]
    fn parser_agrees_after_one_byte_changes(
        (_, s) in stored_value(),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let mut s = s;
        let i = at.index(s.len());
        s[i] = byte;
        check_parser(&s)?;
        // and with the byte removed, or one inserted
        let mut shorter = s.clone();
        shorter.remove(i);
        check_parser(&shorter)?;
        s.insert(i, byte);
        check_parser(&s)?;
    }
}

/// Plaintext lengths: the short path in full, its boundary, and the long
/// path across its 1 KiB chunks.
fn plaintext_len() -> impl Strategy<Value = usize> {
    prop_oneof![
        2 => 0..=SHORT_MAX + 1,
        1 => prop::sample::select(vec![0, 15, 16, 17, 255, 256, 257, 1023, 1024, 1025, 2048, 4096 + 3]),
        2 => SHORT_MAX + 1..=5000usize,
    ]
}

/// `len` bytes from `seed`, cheaper to generate than `len` arbitrary ones.
fn bytes(seed: &[u8], len: usize) -> Vec<u8> {
    let mut x = seed.iter().fold(0x9e37_79b9_7f4a_7c15u64, |x, &b| (x ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (0..len)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 56) as u8
        })
        .collect()
}

/// What can be changed by one bit before opening.
#[derive(Debug, Clone, Copy)]
enum Tamper {
    Ciphertext,
    Tag,
    Aad,
    Iv,
}

proptest! {
    #![proptest_config(config(256))]

    /// `seal_in_place` against aes-gcm and the reference, `open_in_place`
    /// back, and a one-bit change refused with the buffer unchanged.
    #[test]
    fn seal_and_open_match_aes_gcm_and_the_reference(
        kb in any::<[u8; 32]>(),
        iv in any::<[u8; 16]>(),
        aad in vec(any::<u8>(), 0..300),
        len in plaintext_len(),
        seed in vec(any::<u8>(), 1..16),
        tamper in prop_oneof![Just(Tamper::Ciphertext), Just(Tamper::Tag), Just(Tamper::Aad), Just(Tamper::Iv)],
        bit in any::<prop::sample::Index>(),
    ) {
        let key = Key::from_bytes(&kb);
        let plain = bytes(&seed, len);

        let mut ours = plain.clone();
        let tag = seal_in_place(&key, &iv, &aad, &mut ours).unwrap();

        let theirs_cipher = AesGcm::<Aes256, U16>::new(&kb.into());
        let mut theirs = plain.clone();
        let their_tag: [u8; 16] =
            theirs_cipher.encrypt_inout_detached(&Nonce::from(iv), &aad, theirs.as_mut_slice().into()).unwrap().into();
        prop_assert_eq!(&ours, &theirs, "ciphertext vs aes-gcm");
        prop_assert_eq!(tag, their_tag, "tag vs aes-gcm");

        let (want_ct, want_tag) = reference::gcm_seal(&kb, &iv, &aad, &plain);
        prop_assert_eq!(&ours, &want_ct, "ciphertext vs the reference");
        prop_assert_eq!(tag, want_tag, "tag vs the reference");

        // one bit of the ciphertext, tag, additional data or IV
        let (mut ct, mut t, mut a, mut v) = (ours.clone(), tag, aad.clone(), iv);
        match tamper {
            Tamper::Ciphertext if !ct.is_empty() => { let i = bit.index(ct.len() * 8); ct[i / 8] ^= 1 << (i % 8) }
            Tamper::Aad if !a.is_empty() => { let i = bit.index(a.len() * 8); a[i / 8] ^= 1 << (i % 8) }
            Tamper::Aad => a.push(0), // no additional data: one zero byte of it
            Tamper::Iv => { let i = bit.index(128); v[i / 8] ^= 1 << (i % 8) }
            _ => { let i = bit.index(128); t[i / 8] ^= 1 << (i % 8) }
        }
        let before = ct.clone();
        prop_assert_eq!(
            open_in_place(&key, b"07", &v, &t, &a, &mut ct),
            Err(FieldCryptError::AuthenticationFailed(*b"07")),
            "{:?} changed", tamper
        );
        prop_assert_eq!(&ct, &before, "buffer changed by a failed open");
        prop_assert!(theirs_cipher.decrypt_inout_detached(&Nonce::from(v), &a, ct.as_mut_slice().into(), &Tag::from(t)).is_err());

        open_in_place(&key, b"07", &iv, &tag, &aad, &mut ours).unwrap();
        prop_assert_eq!(&ours, &plain, "opened");
    }

    /// The whole stored-value path: `encrypt_with_iv`, `parse`,
    /// `decrypt_envelope`, against the reference.
    #[test]
    fn stored_values_match_the_reference(
        kb in any::<[u8; 32]>(),
        iv in any::<[u8; 16]>(),
        aad in vec(any::<u8>(), 0..40),
        plain in vec(any::<u8>(), 0..600),
    ) {
        let key = Key::from_bytes(&kb);
        let s = crate::cipher::encrypt_with_iv(&key, b"42", &iv, &aad, &plain).unwrap();
        let (want_ct, want_tag) = reference::gcm_seal(&kb, &iv, &aad, &plain);
        prop_assert_eq!(&s, &format::serialize(b"42", &iv, &want_tag, &want_ct));
        let env = format::parse(&s).unwrap();
        prop_assert_eq!(&crate::cipher::decrypt_envelope(&key, env, &aad).unwrap()[..], &plain[..]);
    }
}

/// Every GHASH this build and CPU have for `h`: `Ghash::new` (the wide code
/// where the CPU has it) and, with CLMUL, the 128-bit code forced.
fn hashers(h: &[u8; 16]) -> Vec<(&'static str, Ghash)> {
    let mut out = vec![("Ghash::new", Ghash::new(h))];
    out.extend(Ghash::new_narrow(h).map(|g| ("128-bit CLMUL", g)));
    out
}

/// `aad` zero-padded, then `data`: what `hash_with_aad` hashes before `last`.
fn joined(aad: &[u8], data: &[u8]) -> Vec<u8> {
    let mut all = aad.to_vec();
    all.resize(aad.len().div_ceil(16) * 16, 0);
    all.extend_from_slice(data);
    all
}

/// GHASH keys: arbitrary, and the edge cases of `polyval_key`'s reduction.
fn ghash_key() -> impl Strategy<Value = [u8; 16]> {
    prop_oneof![
        6 => any::<[u8; 16]>(),
        1 => Just([0u8; 16]),
        1 => Just([0xff; 16]),
        1 => Just({ let mut h = [0u8; 16]; h[15] = 1; h }),
        1 => Just({ let mut h = [0u8; 16]; h[0] = 0x80; h }),
    ]
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn ghash_matches_the_reference(
        h in ghash_key(),
        last in any::<[u8; 16]>(),
        data in prop_oneof![vec(any::<u8>(), 0..80), vec(any::<u8>(), 240..1200)],
        aad in prop_oneof![Just(vec![]), vec(any::<u8>(), 1..70)],
    ) {
        let want = reference::ghash(&h, &data, &last);
        let want_aad = reference::ghash(&h, &joined(&aad, &data), &last);
        for (name, g) in hashers(&h) {
            prop_assert_eq!(g.hash(&data, &last), want, "{}: hash", name);
            prop_assert_eq!(g.hash_with_aad(&aad, &data, &last), want_aad, "{}: hash_with_aad", name);
            if let Some(got) = g.hash_wide_by_lanes(&data, &last) {
                prop_assert_eq!(got, want, "{}: the wide algorithm by lanes", name);
            }
        }
        prop_assert_eq!(Ghash::new_narrow(&h).is_some(), Ghash::new(&h).is_clmul());
        prop_assert!(!Ghash::new_narrow(&h).is_some_and(|g| g.is_wide()));
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// The fuzz target `blind_index`'s comparison: index values (single and
    /// batch, the path key cached after the first) against the RFC 2104 /
    /// RFC 5869 reference over SHA-256.
    #[test]
    fn blind_index_matches_the_reference(
        key in any::<[u8; 32]>(),
        v in 0u8..100,
        collection in vec(any::<u8>(), 0..40),
        path in vec(any::<u8>(), 0..80),
        inputs in vec(prop_oneof![vec(any::<u8>(), 0..70), vec(any::<u8>(), 100..300)], 1..5),
    ) {
        use crate::blind_index::{index_many, index_one, scope_info};
        use crate::index_keys::{IndexKey, IndexKeyring};
        let version = [b'0' + v / 10, b'0' + v % 10];
        let mut ring = IndexKeyring::new();
        ring.insert(version, IndexKey::from_bytes(&key), &crate::keyring::Keyring::new()).unwrap();
        let mut info = Vec::new();
        let valid = !collection.is_empty() && !path.is_empty() && !collection.contains(&0) && !path.contains(&0);
        prop_assert_eq!(scope_info(&collection, &path, &mut info), valid);
        if valid {
            let many = index_many(&mut ring, &version, &info, inputs.iter().map(|i| &i[..])).unwrap();
            for (input, got) in inputs.iter().zip(&many) {
                let want = reference::blind_index(&key, &version, &collection, &path, input);
                prop_assert_eq!(&got[..], want.as_bytes());
                prop_assert_eq!(index_one(&mut ring, &version, &info, input).unwrap(), *got);
            }
        }
    }
}
