//! GHASH with carry-less multiplication (PCLMULQDQ, and VPCLMULQDQ where the
//! CPU has it), for [`crate::cipher`].
//!
//! The `ghash` crate keeps its hash state (the powers of H and the running
//! sum, 144 bytes) in one value: the short path would clone it twice per
//! value, and each clone is zeroized a byte at a time when dropped. Here the
//! powers of H live in the [`Key`] and a hash is a function of them: the
//! running sum stays in registers.
//!
//! GHASH is computed through POLYVAL (RFC 8452, Appendix A):
//! `GHASH(H, X_1..X_n) = ByteReverse(POLYVAL(mulX_POLYVAL(ByteReverse(H)),
//! ByteReverse(X_1), .., ByteReverse(X_n)))`. The field multiplication is the
//! R/F algorithm of "Efficient GHASH Implementation Using CLMUL"
//! (<https://eprint.iacr.org/2025/2171>), as in the x86 backend of RustCrypto's
//! `polyval` 0.7 (MIT/Apache-2.0), which this follows: four CLMULs per
//! block, one for the reduction, up to four blocks per reduction with
//! precomputed `H^1..H^4`. Where the CPU has VPCLMULQDQ and AVX-512 (checked
//! at run time), whole groups of 16 blocks go four to a 512-bit multiply,
//! one reduction per group, against `H^1..H^16`. No table lookups and no
//! branch on data: the lengths are the only thing the control flow depends
//! on.
//!
//! Without PCLMULQDQ and SSSE3 (checked at run time), on other architectures,
//! and under `--cfg polyval_backend="soft"` (the second run of `npm run
//! test:rust`), [`Ghash`] holds the `ghash` crate's state instead and copies
//! it per hash, as before.
//!
//! [`Key`]: crate::keyring::Key

use zeroize::Zeroize;

/// GHASH under one key `H`.
// One per key, made once and never moved on a hot path: boxing the larger
// variant would only add a pointer to follow on every hash.
#[allow(clippy::large_enum_variant)]
pub enum Ghash {
    /// The CLMUL code's key: see [`Powers`].
    #[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
    Clmul(Powers),
    /// The `ghash` crate's state (zeroized on drop by its `zeroize` feature).
    Crate(ghash::GHash),
}

/// The powers `H^1..H^16` of a POLYVAL key and their R/F companions `D^i`,
/// highest first (`h[k] = H^(16-k)`, so that four consecutive entries are
/// one 512-bit operand of the wide code), and whether the CPU has the wide
/// code's features (VPCLMULQDQ with AVX-512). Wiped on drop.
#[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
pub struct Powers {
    h: [[u8; 16]; POWERS],
    d: [[u8; 16]; POWERS],
    wide: bool,
}

/// How many powers of H are kept: 16 blocks per reduction in the wide code.
#[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
const POWERS: usize = 16;

#[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
impl Drop for Powers {
    fn drop(&mut self) {
        self.h.zeroize();
        self.d.zeroize();
    }
}

impl Ghash {
    /// GHASH under key `h` (`AES_K(0^128)`): the CLMUL code where the CPU
    /// has it (see the module docs), else the `ghash` crate.
    pub fn new(h: &[u8; 16]) -> Self {
        #[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
        if x86::available() {
            return Ghash::Clmul(Powers::new(h, x86::wide_available()));
        }
        Ghash::Crate(ghash::GHash::new(h.into()))
    }

    /// `GHASH_H(aad zero-padded || data zero-padded || last)`: the hash of
    /// AES-GCM with additional data `aad` (`last` holds both lengths).
    pub fn hash_with_aad(&self, aad: &[u8], data: &[u8], last: &[u8; 16]) -> [u8; 16] {
        if aad.is_empty() {
            return self.hash(data, last);
        }
        match self {
            #[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
            Ghash::Clmul(powers) => {
                // The AAD's whole blocks, then its last block zero-padded as
                // `last`; the hash goes on from there over `data`.
                let split = (aad.len() - 1) / 16 * 16;
                let mut final_block = [0u8; 16];
                final_block[..aad.len() - split].copy_from_slice(&aad[split..]);
                // SAFETY: `Clmul` is made only where `new` found the CPU features.
                unsafe {
                    let y = x86::hash(powers, &aad[..split], &final_block);
                    x86::hash_from(powers, &y, data, last)
                }
            }
            Ghash::Crate(state) => {
                use ghash::universal_hash::UniversalHash;
                let mut g = state.clone();
                g.update_padded(aad);
                g.update_padded(data);
                g.update(&[(*last).into()]);
                g.finalize().into()
            }
        }
    }

    /// Whether this is the CLMUL code (not the `ghash` crate).
    pub fn is_clmul(&self) -> bool {
        match self {
            #[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
            Ghash::Clmul(_) => true,
            Ghash::Crate(_) => false,
        }
    }

    /// `GHASH_H(data zero-padded to whole blocks || last)`.
    pub fn hash(&self, data: &[u8], last: &[u8; 16]) -> [u8; 16] {
        match self {
            // SAFETY: `Clmul` is made only where `new` found the CPU features.
            #[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
            Ghash::Clmul(powers) => unsafe { x86::hash(powers, data, last) },
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

/// Hooks for the property tests (src/proptests.rs) and the fuzz targets in
/// `fuzz/` (crate feature `fuzzing`, never enabled by the addon's build): the
/// code paths `Ghash::new` would not pick on this machine.
#[cfg(any(test, feature = "fuzzing"))]
impl Ghash {
    /// The 128-bit CLMUL code alone (no 16-block groups), whether or not the
    /// CPU has the wide code; `None` where this build or CPU has no CLMUL.
    pub fn new_narrow(h: &[u8; 16]) -> Option<Self> {
        #[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
        if x86::available() {
            return Some(Ghash::Clmul(Powers::new(h, false)));
        }
        let _ = h;
        None
    }

    /// Whether this is the wide (AVX-512) code.
    pub fn is_wide(&self) -> bool {
        match self {
            #[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
            Ghash::Clmul(p) => p.wide,
            Ghash::Crate(_) => false,
        }
    }

    /// [`Ghash::hash`] with the groups of 16 blocks done by the wide code's
    /// algorithm emulated lane by lane with 128-bit operations: the wide
    /// code's grouping and order of powers, on CPUs without AVX-512.
    /// `None` where this is not the CLMUL code.
    pub fn hash_wide_by_lanes(&self, data: &[u8], last: &[u8; 16]) -> Option<[u8; 16]> {
        match self {
            // SAFETY: `Clmul` is made only where the CPU has the features
            // `hash_grouped` and `wide_by_lanes` need (`x86::available`).
            #[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
            Ghash::Clmul(p) => Some(unsafe { x86::hash_grouped(p, &[0; 16], data, last, Some(x86::wide_by_lanes)) }),
            Ghash::Crate(_) => {
                let _ = (data, last);
                None
            }
        }
    }
}

#[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
impl Powers {
    /// The powers of GHASH key `h`; `wide` only where [`x86::wide_available`].
    /// Needs PCLMULQDQ and SSSE3 ([`x86::available`]).
    fn new(h: &[u8; 16], wide: bool) -> Self {
        let mut key = polyval_key(h);
        let mut powers = Powers { h: [[0; 16]; POWERS], d: [[0; 16]; POWERS], wide };
        // SAFETY: the caller checked the CPU features `expand` needs.
        unsafe { x86::expand(&key, &mut powers) };
        key.zeroize();
        powers
    }
}

/// Set to anything but `0` or the empty string, this environment variable
/// keeps the wide (AVX-512) GHASH off: the 128-bit CLMUL code is used.
pub const NO_WIDE_ENV: &str = "FIELDCRYPT_NO_WIDE_GHASH";

/// Whether the wide GHASH may be used: the CPU has its features, the
/// environment does not turn it off, and `self_test` passes (run last, only
/// when it matters).
#[cfg_attr(not(all(target_arch = "x86_64", not(polyval_backend = "soft"))), allow(dead_code))]
fn wide_allowed(features: bool, env: Option<std::ffi::OsString>, self_test: impl FnOnce() -> bool) -> bool {
    let off = env.is_some_and(|v| !v.is_empty() && v != "0");
    features && !off && self_test()
}

/// Whether this process hashes with the wide (AVX-512) code.
pub fn wide_in_use() -> bool {
    #[cfg(all(target_arch = "x86_64", not(polyval_backend = "soft")))]
    {
        x86::available() && x86::wide_available()
    }
    #[cfg(not(all(target_arch = "x86_64", not(polyval_backend = "soft"))))]
    {
        false
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

    use super::POWERS;

    /// `x^63 + x^62 + x^57`: the reduction constant of the R/F algorithm.
    const P1: u64 = 0xC200_0000_0000_0000;

    pub fn available() -> bool {
        std::arch::is_x86_feature_detected!("pclmulqdq") && std::arch::is_x86_feature_detected!("ssse3")
    }

    /// Whether [`wide`] is used: the CPU has what it needs (VPCLMULQDQ,
    /// AVX-512F and AVX-512BW for the byte shuffle, on top of [`available`]),
    /// [`super::NO_WIDE_ENV`] does not turn it off, and the start-up
    /// known-answer test ([`wide_self_test`]) found it agrees with the
    /// 128-bit code. Decided once per process.
    pub fn wide_available() -> bool {
        static WIDE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *WIDE.get_or_init(|| {
            let features = std::arch::is_x86_feature_detected!("vpclmulqdq")
                && std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw");
            // SAFETY: the self-test runs only where `features` (and so
            // `available`) hold.
            super::wide_allowed(features, std::env::var_os(super::NO_WIDE_ENV), || {
                available() && unsafe { wide_self_test() }
            })
        })
    }

    /// The wide code against the 128-bit code on lengths that exercise it:
    /// 17 blocks and more (one group of 16 and a remainder), several whole
    /// groups, and lengths that leave partial groups and a partial block.
    /// Any mismatch and the wide code is never used.
    #[target_feature(enable = "pclmulqdq,ssse3,avx512f,avx512bw,vpclmulqdq")]
    unsafe fn wide_self_test() -> bool {
        let mut h = [0u8; 16];
        let mut data = [0u8; 16 * 50];
        // A fixed, irregular key and message (a small LCG), so a failure is
        // reproducible and no lane sees zeros.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for b in h.iter_mut().chain(data.iter_mut()) {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (x >> 56) as u8;
        }
        let last = [0x5au8; 16];
        let wide = super::Powers::new(&h, true);
        let narrow = super::Powers::new(&h, false);
        [16 * 17, 16 * 17 + 5, 16 * 31 + 15, 16 * 32, 16 * 33 + 1, 16 * 47, 16 * 48 + 9, 16 * 50].iter().all(|&len| {
            // SAFETY: this function's features include `hash`'s.
            unsafe { hash(&wide, &data[..len], &last) == hash(&narrow, &data[..len], &last) }
        })
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

    /// Fills `p.h` and `p.d` with `H^16..H^1` and their companions, for
    /// POLYVAL key `key`.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    pub unsafe fn expand(key: &[u8; 16], p: &mut super::Powers) {
        unsafe {
            let h1 = load(key);
            let d1 = companion(h1);
            let mut hk = h1;
            for k in (0..POWERS).rev() {
                // entry k is H^(16-k): H^1 last
                if k < POWERS - 1 {
                    hk = mul(hk, h1, d1);
                }
                p.h[k] = store(hk);
                p.d[k] = store(companion(hk));
            }
        }
    }

    /// How whole groups of 16 blocks are hashed: `acc` in, `acc` out, over a
    /// multiple of 256 bytes (see [`wide`]).
    pub type Groups16 = unsafe fn(&super::Powers, &[u8], __m128i) -> __m128i;

    /// GHASH of `data` zero-padded, then `last`, in groups of blocks:
    /// `acc' = (acc xor X_1) H^g xor X_2 H^(g-1) xor .. xor X_g H`. Groups of
    /// 16 in [`wide`] where the key was made for it, then of 4, then the rest.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    pub unsafe fn hash(p: &super::Powers, data: &[u8], last: &[u8; 16]) -> [u8; 16] {
        unsafe { hash_from(p, &[0; 16], data, last) }
    }

    /// [`hash`] continued from the GHASH state `init` (standard byte order)
    /// instead of zero: the hash of what `init` hashed, then `data`, then `last`.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    pub unsafe fn hash_from(p: &super::Powers, init: &[u8; 16], data: &[u8], last: &[u8; 16]) -> [u8; 16] {
        // SAFETY: `wide` is set only where `wide_available` found the
        // features `wide` is compiled for (see `Ghash::new`).
        unsafe { hash_grouped(p, init, data, last, if p.wide { Some(wide as Groups16) } else { None }) }
    }

    /// [`hash`] with the groups of 16 blocks done by `groups16`, if any: the
    /// product passes [`wide`], the tests an emulation of it lane by lane.
    #[target_feature(enable = "pclmulqdq,ssse3")]
    pub unsafe fn hash_grouped(
        p: &super::Powers,
        init: &[u8; 16],
        data: &[u8],
        last: &[u8; 16],
        groups16: Option<Groups16>,
    ) -> [u8; 16] {
        unsafe {
            let full = data.len() / 16;
            let rem = data.len() % 16;
            let rev = reverse_mask();
            let pow = |e: usize| (load(&p.h[POWERS - e]), load(&p.d[POWERS - e]));
            let mut acc = _mm_shuffle_epi8(load(init), rev);
            let mut done = 0;
            if let Some(groups16) = groups16.filter(|_| full >= 16) {
                done = full / 16 * 16;
                acc = groups16(p, &data[..done * 16], acc);
            }
            let (h4, d4) = pow(4);
            let (h3, d3) = pow(3);
            let (h2, d2) = pow(2);
            let (h1, d1) = pow(1);
            while full - done >= 4 {
                let b = data.as_ptr().add(done * 16);
                let x = |k: usize| _mm_shuffle_epi8(_mm_loadu_si128(b.add(16 * k).cast()), rev);
                let (r0, f0) = mul_unreduced(_mm_xor_si128(x(0), acc), h4, d4);
                let (r1, f1) = mul_unreduced(x(1), h3, d3);
                let (r2, f2) = mul_unreduced(x(2), h2, d2);
                let (r3, f3) = mul_unreduced(x(3), h1, d1);
                let r = _mm_xor_si128(_mm_xor_si128(r0, r1), _mm_xor_si128(r2, r3));
                let f = _mm_xor_si128(_mm_xor_si128(f0, f1), _mm_xor_si128(f2, f3));
                acc = reduce(r, f);
                done += 4;
            }
            // What is left: up to three whole blocks, the partial block
            // (zero-padded) and `last`, at most five.
            let mut tail = [0u8; 32];
            tail[..rem].copy_from_slice(&data[full * 16..]);
            let tail_blocks = 1 + usize::from(rem > 0);
            tail[(tail_blocks - 1) * 16..tail_blocks * 16].copy_from_slice(last);
            let total = full + tail_blocks;
            let mut i = done;
            while i < total {
                let g = (total - i).min(4);
                let (mut r, mut f) = (_mm_setzero_si128(), _mm_setzero_si128());
                for j in 0..g {
                    let k = i + j;
                    let b = if k < full { data.as_ptr().add(k * 16) } else { tail.as_ptr().add((k - full) * 16) };
                    let mut m = _mm_shuffle_epi8(_mm_loadu_si128(b.cast()), rev);
                    if j == 0 {
                        m = _mm_xor_si128(m, acc);
                    }
                    let (h, d) = pow(g - j);
                    let (rj, fj) = mul_unreduced(m, h, d);
                    r = _mm_xor_si128(r, rj);
                    f = _mm_xor_si128(f, fj);
                }
                acc = reduce(r, f);
                i += g;
            }
            store(_mm_shuffle_epi8(acc, rev))
        }
    }

    /// The running sum `acc` over `blocks` (a multiple of 16 blocks), 16
    /// blocks per reduction: four blocks per 512-bit carry-less multiply,
    /// against `H^16..H^13`, `H^12..H^9`, `H^8..H^5`, `H^4..H^1`.
    #[target_feature(enable = "pclmulqdq,ssse3,avx512f,avx512bw,vpclmulqdq")]
    unsafe fn wide(p: &super::Powers, blocks: &[u8], acc: __m128i) -> __m128i {
        debug_assert!(p.wide && blocks.len().is_multiple_of(256));
        unsafe {
            let rev = _mm512_broadcast_i32x4(reverse_mask());
            let hv: [__m512i; 4] = core::array::from_fn(|k| _mm512_loadu_si512(p.h[4 * k..].as_ptr().cast()));
            let dv: [__m512i; 4] = core::array::from_fn(|k| _mm512_loadu_si512(p.d[4 * k..].as_ptr().cast()));
            let mut acc = acc;
            for chunk in blocks.chunks_exact(256) {
                let (mut r, mut f) = (_mm512_setzero_si512(), _mm512_setzero_si512());
                for k in 0..4 {
                    let mut x = _mm512_shuffle_epi8(_mm512_loadu_si512(chunk.as_ptr().add(64 * k).cast()), rev);
                    if k == 0 {
                        x = _mm512_xor_si512(x, _mm512_zextsi128_si512(acc));
                    }
                    r = _mm512_xor_si512(r, _mm512_clmulepi64_epi128(x, dv[k], 0x10));
                    r = _mm512_xor_si512(r, _mm512_clmulepi64_epi128(x, hv[k], 0x11));
                    f = _mm512_xor_si512(f, _mm512_clmulepi64_epi128(x, dv[k], 0x00));
                    f = _mm512_xor_si512(f, _mm512_clmulepi64_epi128(x, hv[k], 0x01));
                }
                acc = reduce(fold(r), fold(f));
            }
            acc
        }
    }

    /// [`wide`]'s algorithm through 128-bit operations, lane by lane: per
    /// 256-byte group, vector `k` (blocks `4k..4k+3`) is multiplied lane by
    /// lane against the powers `p.h[4k..4k+4]` (`H^(16-4k)..H^(13-4k)`), the
    /// running sum folded into lane 0 of vector 0, the products' lanes summed
    /// and reduced once. It pins the grouping and power order of the wide
    /// code on machines without AVX-512.
    #[cfg(any(test, feature = "fuzzing"))]
    #[target_feature(enable = "pclmulqdq,ssse3")]
    pub unsafe fn wide_by_lanes(p: &super::Powers, blocks: &[u8], acc: __m128i) -> __m128i {
        unsafe {
            let rev = reverse_mask();
            let mut acc = acc;
            for chunk in blocks.chunks_exact(256) {
                let (mut r, mut f) = (_mm_setzero_si128(), _mm_setzero_si128());
                for k in 0..4 {
                    for lane in 0..4 {
                        let mut x =
                            _mm_shuffle_epi8(_mm_loadu_si128(chunk.as_ptr().add(64 * k + 16 * lane).cast()), rev);
                        if k == 0 && lane == 0 {
                            x = _mm_xor_si128(x, acc);
                        }
                        let (rl, fl) = mul_unreduced(x, load(&p.h[4 * k + lane]), load(&p.d[4 * k + lane]));
                        r = _mm_xor_si128(r, rl);
                        f = _mm_xor_si128(f, fl);
                    }
                }
                acc = reduce(r, f);
            }
            acc
        }
    }

    /// The XOR of a 512-bit value's four 128-bit lanes.
    #[target_feature(enable = "pclmulqdq,ssse3,avx512f,avx512bw,vpclmulqdq")]
    unsafe fn fold(v: __m512i) -> __m128i {
        let y = _mm256_xor_si256(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
        _mm_xor_si128(_mm256_castsi256_si128(y), _mm256_extracti128_si256(y, 1))
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
}
