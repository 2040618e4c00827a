//! The x86-64 CLMUL code of [`super`]: PCLMULQDQ with SSSE3, and the wide
//! VPCLMULQDQ/AVX-512 groups of 16 blocks where the CPU has them (checked at
//! run time, with a known-answer test at start-up).

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
                    let mut x = _mm_shuffle_epi8(_mm_loadu_si128(chunk.as_ptr().add(64 * k + 16 * lane).cast()), rev);
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
