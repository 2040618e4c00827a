//! GHASH with carry-less multiplication (PCLMULQDQ), for the short path in
//! [`crate::cipher`].
//!
//! The `ghash` crate keeps its hash state (the powers of H and the running
//! sum, 144 bytes) in one value: the short path cloned it twice per value,
//! and each clone was zeroized a byte at a time when dropped. That was 45%
//! of a 100-byte batch's crypto. Here the powers of H live in the [`Key`]
//! and a hash is a function of them: the running sum stays in registers.
//!
//! GHASH is computed through POLYVAL (RFC 8452, Appendix A):
//! `GHASH(H, X_1..X_n) = ByteReverse(POLYVAL(mulX_POLYVAL(ByteReverse(H)),
//! ByteReverse(X_1), .., ByteReverse(X_n)))`. The field multiplication is the
//! R/F algorithm of "Efficient GHASH Implementation Using CLMUL"
//! (<https://eprint.iacr.org/2025/2171>), as in the x86 backend of RustCrypto's
//! `polyval` 0.7 (MIT/Apache-2.0), which this follows: four CLMULs per
//! block, one for the reduction, up to four blocks per reduction with
//! precomputed `H^1..H^4`. No table lookups and no branch on data: the
//! lengths are the only thing the control flow depends on.
//!
//! Without PCLMULQDQ and SSSE3 (checked at run time), on other architectures,
//! and under `--cfg polyval_backend="soft"` (the second run of `npm run
//! test:rust`), [`Ghash`] holds the `ghash` crate's state instead and copies
//! it per hash, as before.
//!
//! [`Key`]: crate::keyring::Key

use zeroize::Zeroize;

/// GHASH under one key `H`, for the short path.
pub enum Ghash {
    /// The CLMUL code's key: see [`Powers`].
    #[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
    Clmul(Powers),
    /// The `ghash` crate's state (zeroized on drop by its `zeroize` feature).
    Crate(ghash::GHash),
}

/// The powers `H^1..H^4` of a POLYVAL key and their R/F companions `D^i`,
/// as `[h1, d1, h2, d2, h3, d3, h4, d4]`. Wiped on drop.
#[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
pub struct Powers([[u8; 16]; 8]);

#[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
impl Drop for Powers {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Ghash {
    /// GHASH under key `h` (`AES_K(0^128)`): the CLMUL code where the CPU
    /// has it (see the module docs), else the `ghash` crate.
    pub fn new(h: &[u8; 16]) -> Self {
        #[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
        if x86::available() {
            let mut key = polyval_key(h);
            // SAFETY: `available` checked the CPU features `expand` needs.
            let powers = Powers(unsafe { x86::expand(&key) });
            key.zeroize();
            return Ghash::Clmul(powers);
        }
        Ghash::Crate(ghash::GHash::new(h.into()))
    }

    /// `GHASH_H(data zero-padded to whole blocks || last)`.
    pub fn hash(&self, data: &[u8], last: &[u8; 16]) -> [u8; 16] {
        match self {
            // SAFETY: `Clmul` is made only where `new` found the CPU features.
            #[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
            Ghash::Clmul(powers) => unsafe { x86::hash(&powers.0, data, last) },
            Ghash::Crate(state) => {
                use ghash::universal_hash::UniversalHash;
                let mut g = state.clone();
                g.update_padded(data);
                g.update(&[(*last).into()]);
                g.finalize().into()
            }
        }
    }
}

/// `mulX_POLYVAL(ByteReverse(h))`: the POLYVAL key of GHASH key `h`.
#[cfg_attr(not(all(target_arch = "x86_64", not(polyval_backend = "soft"))), allow(dead_code))]
fn polyval_key(h: &[u8; 16]) -> [u8; 16] {
    let mut v = u128::from_be_bytes(*h); // the reversed bytes, as a little-endian number
    let top = v >> 127;
    v <<= 1;
    // x^128 = x^127 + x^126 + x^121 + 1 in POLYVAL's field; `top` is 0 or 1.
    v ^= top | (top << 127) | (top << 126) | (top << 121);
    let out = v.to_le_bytes();
    v.zeroize();
    out
}

#[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
mod x86 {
    use core::arch::x86_64::*;

    /// `x^63 + x^62 + x^57`: the reduction constant of the R/F algorithm.
    const P1: u64 = 0xC200_0000_0000_0000;

    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("pclmulqdq") && std::arch::is_x86_feature_detected!("ssse3")
    }

    #[target_feature(enable = "pclmulqdq,ssse3")]
    unsafe fn load(b: &[u8; 16]) -> __m128i {
        unsafe { _mm_loadu_si128(b.as_ptr().cast()) }
    }

    #[target_feature(enable = "pclmulqdq,ssse3")]
    unsafe fn store(x: __m128i) -> [u8; 16] {
        let mut out = [0u8; 16];
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), x) };
        out
    }

    /// The pshufb mask that reverses a block's bytes.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    unsafe fn reverse_mask() -> __m128i {
        _mm_set_epi8(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    }

    /// `D = swap(H) xor (H_0 * P1)`.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    unsafe fn companion(h: __m128i) -> __m128i {
        let p = _mm_set_epi64x(P1 as i64, 0);
        _mm_xor_si128(_mm_shuffle_epi32(h, 0x4e), _mm_clmulepi64_si128(h, p, 0x10))
    }

    /// The unreduced product of `m` and the power `(h, d)`: `(R, F)`.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    unsafe fn mul_unreduced(m: __m128i, h: __m128i, d: __m128i) -> (__m128i, __m128i) {
        let r = _mm_xor_si128(_mm_clmulepi64_si128(m, d, 0x10), _mm_clmulepi64_si128(m, h, 0x11));
        let f = _mm_xor_si128(_mm_clmulepi64_si128(m, d, 0x00), _mm_clmulepi64_si128(m, h, 0x01));
        (r, f)
    }

    /// `R xor F_1 xor x^64 F_0 xor P1 F_0`.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    unsafe fn reduce(r: __m128i, f: __m128i) -> __m128i {
        let p1 = _mm_set_epi64x(0, P1 as i64);
        let x = _mm_xor_si128(r, _mm_srli_si128(f, 8));
        _mm_xor_si128(_mm_xor_si128(x, _mm_slli_si128(f, 8)), _mm_clmulepi64_si128(f, p1, 0x00))
    }

    #[target_feature(enable = "pclmulqdq,ssse3")]
    unsafe fn mul(m: __m128i, h: __m128i, d: __m128i) -> __m128i {
        let (r, f) = unsafe { mul_unreduced(m, h, d) };
        unsafe { reduce(r, f) }
    }

    /// `[h1, d1, .., h4, d4]` for POLYVAL key `key`.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    pub unsafe fn expand(key: &[u8; 16]) -> [[u8; 16]; 8] {
        unsafe {
            let h1 = load(key);
            let d1 = companion(h1);
            let h2 = mul(h1, h1, d1);
            let d2 = companion(h2);
            let h3 = mul(h2, h1, d1);
            let h4 = mul(h2, h2, d2);
            [h1, d1, h2, d2, h3, companion(h3), h4, companion(h4)].map(|x| store(x))
        }
    }

    /// GHASH of `data` zero-padded, then `last`, in groups of up to four
    /// blocks: `acc' = (acc xor X_1) H^g xor X_2 H^(g-1) xor .. xor X_g H`.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    pub unsafe fn hash(hd: &[[u8; 16]; 8], data: &[u8], last: &[u8; 16]) -> [u8; 16] {
        unsafe {
            let full = data.len() / 16;
            let rem = data.len() % 16;
            // The partial block (zero-padded) and `last`.
            let mut tail = [0u8; 32];
            tail[..rem].copy_from_slice(&data[full * 16..]);
            let tail_blocks = 1 + usize::from(rem > 0);
            tail[(tail_blocks - 1) * 16..tail_blocks * 16].copy_from_slice(last);
            let total = full + tail_blocks;

            let rev = reverse_mask();
            let h = [load(&hd[0]), load(&hd[2]), load(&hd[4]), load(&hd[6])];
            let d = [load(&hd[1]), load(&hd[3]), load(&hd[5]), load(&hd[7])];
            let mut acc = _mm_setzero_si128();
            let mut i = 0;
            while i < total {
                let g = (total - i).min(4);
                let (mut r, mut f) = (_mm_setzero_si128(), _mm_setzero_si128());
                for j in 0..g {
                    let k = i + j;
                    let p = if k < full { data.as_ptr().add(k * 16) } else { tail.as_ptr().add((k - full) * 16) };
                    let mut m = _mm_shuffle_epi8(_mm_loadu_si128(p.cast()), rev);
                    if j == 0 {
                        m = _mm_xor_si128(m, acc);
                    }
                    let (rj, fj) = mul_unreduced(m, h[g - 1 - j], d[g - 1 - j]);
                    r = _mm_xor_si128(r, rj);
                    f = _mm_xor_si128(f, fj);
                }
                acc = reduce(r, f);
                i += g;
            }
            store(_mm_shuffle_epi8(acc, rev))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ghash::universal_hash::UniversalHash;
    use rand::RngCore;

    fn reference(h: &[u8; 16], data: &[u8], last: &[u8; 16]) -> [u8; 16] {
        let mut g = ghash::GHash::new(h.into());
        g.update_padded(data);
        g.update(&[(*last).into()]);
        g.finalize().into()
    }

    /// The path this build takes against the `ghash` crate, at every length
    /// that makes a different grouping of blocks (up to 21 blocks).
    #[test]
    fn matches_the_ghash_crate() {
        let mut rng = rand::rng();
        for round in 0..50 {
            let mut h = [0u8; 16];
            rng.fill_bytes(&mut h);
            if round == 0 {
                h = [0xff; 16]; // the top bit set: mulX's reduction
            }
            let g = Ghash::new(&h);
            for len in 0..=330 {
                let mut data = vec![0u8; len];
                rng.fill_bytes(&mut data);
                let mut last = [0u8; 16];
                rng.fill_bytes(&mut last);
                assert_eq!(g.hash(&data, &last), reference(&h, &data, &last), "round {round}, {len} bytes");
            }
        }
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
    }

    #[cfg(polyval_backend = "soft")]
    #[test]
    fn soft_backend_run_uses_the_ghash_crate() {
        assert!(matches!(Ghash::new(&[7; 16]), Ghash::Crate(_)));
    }
}
