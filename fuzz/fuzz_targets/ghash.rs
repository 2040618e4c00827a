//! fieldcrypt's GHASH (src/clmul.rs) against the bit-by-bit reference of
//! src/reference.rs (SP 800-38D Algorithms 1 and 2) on arbitrary `H`, data
//! and last block: `Ghash::new` (the wide AVX-512 code where the CPU has
//! it, else the 128-bit CLMUL code, else the `ghash` crate), the 128-bit
//! CLMUL code forced, the wide code's algorithm emulated lane by lane, and
//! `hash_with_aad` with the input split into additional data and data.
//!
//! The input (zero-padded to 34 bytes): `H` (16 bytes), the last block
//! (16), the additional data's length (u16 LE, mod the rest's length + 1),
//! then the additional data and the data.
#![no_main]

use fieldcrypt::clmul::Ghash;
use fieldcrypt::reference;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: &[u8]| {
    let mut head = [0u8; 34];
    let n = input.len().min(34);
    head[..n].copy_from_slice(&input[..n]);
    let rest = &input[n..];
    let h: [u8; 16] = head[..16].try_into().unwrap();
    let last: [u8; 16] = head[16..32].try_into().unwrap();
    let split = usize::from(u16::from_le_bytes([head[32], head[33]])) % (rest.len() + 1);
    let (aad, data) = rest.split_at(split);

    // the whole rest as data, and as additional data then data
    let want = reference::ghash(&h, rest, &last);
    let mut joined = aad.to_vec();
    joined.resize(aad.len().div_ceil(16) * 16, 0);
    joined.extend_from_slice(data);
    let want_aad = reference::ghash(&h, &joined, &last);

    let default = Ghash::new(&h);
    let narrow = Ghash::new_narrow(&h);
    assert_eq!(narrow.is_some(), default.is_clmul());
    for (name, g) in [("Ghash::new", Some(&default)), ("128-bit CLMUL", narrow.as_ref())] {
        let Some(g) = g else { continue };
        assert_eq!(g.hash(rest, &last), want, "{name}: hash of {} bytes", rest.len());
        assert_eq!(
            g.hash_with_aad(aad, data, &last),
            want_aad,
            "{name}: hash_with_aad of {} + {} bytes",
            aad.len(),
            data.len()
        );
        if let Some(got) = g.hash_wide_by_lanes(rest, &last) {
            assert_eq!(got, want, "{name}: the wide algorithm by lanes, {} bytes", rest.len());
        }
    }
    assert!(!narrow.is_some_and(|g| g.is_wide()));
});
