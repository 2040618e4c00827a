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
mod x86;

#[cfg(test)]
mod tests;
