//! Tests of src/clmul.rs: every hashing path against the `ghash` crate and
//! the bit-by-bit reference of src/reference.rs, and the wide code's
//! algorithm emulated lane by lane.

use super::*;
use ghash::universal_hash::UniversalHash;
use rand::RngCore;

fn reference(h: &[u8; 16], data: &[u8], last: &[u8; 16]) -> [u8; 16] {
    let mut g = ghash::GHash::new(h.into());
    g.update_padded(data);
    g.update(&[(*last).into()]);
    g.finalize().into()
}

/// Every way this build can hash (the wide code, where the CPU has it,
/// and the 128-bit code alone) against the `ghash` crate: every length
/// up to 37 blocks (each grouping of 16, 4 and the rest), and longer ones.
#[test]
fn matches_the_ghash_crate() {
    let mut rng = rand::rng();
    let lengths: Vec<usize> = (0..=600).chain([1023, 1024, 4096 + 15, 65536 + 7, (1 << 20) + 33]).collect();
    for round in 0..30 {
        let mut h = [0u8; 16];
        rng.fill_bytes(&mut h);
        if round == 0 {
            h = [0xff; 16]; // the top bit set: mulX's reduction
        }
        let hashers = hashers(&h);
        for &len in &lengths {
            if len > 4200 && round > 2 {
                continue;
            }
            let mut data = vec![0u8; len];
            rng.fill_bytes(&mut data);
            let mut last = [0u8; 16];
            rng.fill_bytes(&mut last);
            let want = reference(&h, &data, &last);
            for (name, g) in &hashers {
                assert_eq!(g.hash(&data, &last), want, "{name}: round {round}, {len} bytes");
            }
        }
    }
}

/// The GHASH of `Ghash::new` and, where that is the wide code, the
/// 128-bit code alone.
fn hashers(h: &[u8; 16]) -> Vec<(&'static str, Ghash)> {
    #[allow(unused_mut)]
    let mut out = vec![("Ghash::new", Ghash::new(h))];
    #[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
    if matches!(&out[0].1, Ghash::Clmul(p) if p.wide) {
        out.push(("128-bit CLMUL", Ghash::Clmul(Powers::new(h, false))));
    }
    out
}

/// Every way this build can hash against the bit-by-bit reference of
/// SP 800-38D (an algorithm unrelated to the R/F multiplication the
/// `ghash` crate's backend shares with this code).
#[test]
fn matches_the_bit_by_bit_reference() {
    let mut rng = rand::rng();
    let lengths: Vec<usize> = (0..=300).chain([511, 512, 513, 16 * 33 + 7, 4096 + 15]).collect();
    for round in 0..6 {
        let mut h = [0u8; 16];
        rng.fill_bytes(&mut h);
        if round == 0 {
            h = [0xff; 16];
        }
        let hashers = hashers(&h);
        for &len in &lengths {
            let mut data = vec![0u8; len];
            rng.fill_bytes(&mut data);
            let mut last = [0u8; 16];
            rng.fill_bytes(&mut last);
            let want = crate::reference::ghash(&h, &data, &last);
            for (name, g) in &hashers {
                assert_eq!(g.hash(&data, &last), want, "{name}: round {round}, {len} bytes");
            }
        }
    }
}

/// GHASH over additional data, then data, then the length block, against
/// the bit-by-bit reference: every AAD length up to 3 blocks and longer
/// ones, with data that crosses the wide code's groups.
#[test]
fn hash_with_aad_matches_the_reference() {
    let mut rng = rand::rng();
    let mut h = [0u8; 16];
    rng.fill_bytes(&mut h);
    let hashers = hashers(&h);
    for aad_len in (0..=48).chain([100, 255, 256, 257, 1000]) {
        for len in [0usize, 1, 15, 16, 17, 64, 255, 256, 300, 16 * 33 + 5] {
            let mut aad = vec![0u8; aad_len];
            rng.fill_bytes(&mut aad);
            let mut data = vec![0u8; len];
            rng.fill_bytes(&mut data);
            let mut last = [0u8; 16];
            rng.fill_bytes(&mut last);
            let mut all = aad.clone();
            all.resize(aad_len.div_ceil(16) * 16, 0);
            all.extend_from_slice(&data);
            let want = crate::reference::ghash(&h, &all, &last);
            for (name, g) in &hashers {
                assert_eq!(g.hash_with_aad(&aad, &data, &last), want, "{name}: aad {aad_len}, data {len}");
            }
        }
    }
}

/// The wide code's grouping and power order, emulated lane by lane with
/// 128-bit operations, against both references: on every machine with
/// PCLMULQDQ, whether or not it has AVX-512.
#[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
#[test]
fn wide_algorithm_by_lanes_matches_the_references() {
    if !x86::available() {
        return; // no CLMUL at all: the ghash crate is used and tested above
    }
    let mut rng = rand::rng();
    let lengths: Vec<usize> = (16 * 15..=16 * 50).step_by(5).chain([16 * 64, 16 * 64 + 3, 16 * 100 + 15]).collect();
    for round in 0..8 {
        let mut h = [0u8; 16];
        rng.fill_bytes(&mut h);
        let powers = Powers::new(&h, false);
        for &len in &lengths {
            let mut data = vec![0u8; len];
            rng.fill_bytes(&mut data);
            let mut last = [0u8; 16];
            rng.fill_bytes(&mut last);
            // SAFETY: `x86::available` holds.
            let got = unsafe { x86::hash_grouped(&powers, &[0; 16], &data, &last, Some(x86::wide_by_lanes)) };
            assert_eq!(got, reference(&h, &data, &last), "round {round}, {len} bytes: ghash crate");
            assert_eq!(got, crate::reference::ghash(&h, &data, &last), "round {round}, {len} bytes: bit by bit");
        }
    }
}

#[test]
fn the_wide_code_needs_features_no_switch_and_a_passing_self_test() {
    use std::ffi::OsString;
    let on = || true;
    assert!(wide_allowed(true, None, on));
    assert!(wide_allowed(true, Some(OsString::from("0")), on));
    assert!(wide_allowed(true, Some(OsString::new()), on));
    assert!(!wide_allowed(true, Some(OsString::from("1")), on));
    assert!(!wide_allowed(false, None, on));
    assert!(!wide_allowed(true, None, || false));
    // The self-test runs only when it decides something.
    assert!(!wide_allowed(false, None, || panic!("self-test run without the CPU features")));
    assert!(!wide_allowed(true, Some(OsString::from("yes")), || panic!("self-test run though switched off")));
}

#[test]
fn polyval_key_is_mulx_of_the_reversed_key() {
    // RFC 8452 Appendix A (errata 6023): mulX_POLYVAL(9c98c04d..) = 3931819b..
    let input: [u8; 16] = *b"\x9c\x98\xc0\x4d\xf9\x38\x7d\xed\x82\x81\x75\xa9\x2b\xa6\x52\xd8";
    let mut reversed = input;
    reversed.reverse();
    assert_eq!(polyval_key(&reversed), *b"\x39\x31\x81\x9b\xf2\x71\xfa\xda\x05\x03\xeb\x52\x57\x4c\xa5\x72");
}

/// On x86-64 builds with the hardware backends, this machine's tests run
/// the CLMUL path (CI machines have PCLMULQDQ).
#[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
#[test]
fn clmul_is_used_where_the_cpu_has_it() {
    let has = std::arch::is_x86_feature_detected!("pclmulqdq") && std::arch::is_x86_feature_detected!("ssse3");
    assert_eq!(matches!(Ghash::new(&[7; 16]), Ghash::Clmul(_)), has);
    let wide = has && x86::wide_available();
    assert_eq!(matches!(Ghash::new(&[7; 16]), Ghash::Clmul(p) if p.wide), wide);
}

#[cfg(polyval_backend = "soft")]
#[test]
fn soft_backend_run_uses_the_ghash_crate() {
    assert!(matches!(Ghash::new(&[7; 16]), Ghash::Crate(_)));
}
