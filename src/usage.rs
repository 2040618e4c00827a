//! Key usage: how many encryptions each key version has done in this
//! process.
//!
//! NIST SP 800-38D section 8.3: with IVs that are not 96 bits long (the
//! stored format's are 16 bytes, turned into the pre-counter block by
//! GHASH), the authenticated encryption function must not be invoked more
//! than 2^32 times with one key. fieldcrypt counts; the app decides when
//! to rotate (`keyUsage()`, and `onKeyUsage()` warns near the limit: see
//! `lib/core/usage.js`, which holds the limit).
//!
//! What is counted: every encryption, once its key was found, just before
//! its IV is drawn. The increments are in two places only:
//!
//! * `finish_seal` in `src/napi/single.rs`: `encrypt`, `encryptBytes` and
//!   `reEncrypt` (which encrypts once), one relaxed add per call;
//! * [`crate::batch::process`]: a batch piece (sync or on the thread pool)
//!   adds all its values at once, before its first value, instead of one
//!   contended add per value from several pool threads.
//!
//! Decryption is not counted. After the key lookup, encryption fails only
//! for sizes the string limits already exclude, so the counts are the
//! number of values encrypted; were one to fail, it would still count:
//! the counts may be higher than the IVs drawn, never lower.
//!
//! Invariants: counts are per version (`00`..`99`), not per key object, so
//! they survive `configureKeys` and `reloadKeys`; they only grow (there is
//! no reset); they are process-wide statics, shared by every module
//! instance (worker threads) of one loaded addon file.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::Version;

static COUNTS: [AtomicU64; 100] = [const { AtomicU64::new(0) }; 100];

fn counter(v: &Version) -> &'static AtomicU64 {
    &COUNTS[usize::from(v[0] - b'0') * 10 + usize::from(v[1] - b'0')]
}

/// Counts `n` encryptions under `version`. Relaxed: the counts order
/// nothing else, and every add is seen by later reads of the same counter.
pub(crate) fn add(version: &Version, n: u64) {
    if n > 0 {
        counter(version).fetch_add(n, Ordering::Relaxed);
    }
}

/// The encryptions counted under `version` so far.
pub(crate) fn count(version: &Version) -> u64 {
    counter(version).load(Ordering::Relaxed)
}

/// The versions with at least one encryption, ascending, and their counts.
pub(crate) fn counts() -> Vec<(Version, u64)> {
    (0..100u8).map(|i| [b'0' + i / 10, b'0' + i % 10]).map(|v| (v, count(&v))).filter(|&(_, n)| n > 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The counters are process-wide and tests run in parallel: each test
    // uses versions no other test encrypts under, and checks differences.

    #[test]
    fn counts_per_version() {
        let (a, b) = (*b"91", *b"92");
        let (a0, b0) = (count(&a), count(&b));
        add(&a, 1);
        add(&a, 41);
        add(&b, 0);
        assert_eq!(count(&a) - a0, 42);
        assert_eq!(count(&b) - b0, 0);
        let listed = counts();
        assert!(listed.contains(&(a, count(&a))));
        assert!(listed.iter().all(|&(v, n)| n > 0 && v != b), "versions without encryptions are not listed");
        assert!(listed.windows(2).all(|w| w[0].0 < w[1].0), "ascending");
    }

    #[test]
    fn every_version_has_its_own_counter() {
        for i in 0..100u8 {
            let v = [b'0' + i / 10, b'0' + i % 10];
            assert!(std::ptr::eq(counter(&v), &COUNTS[usize::from(i)]), "{}", i);
        }
    }

    #[test]
    fn adds_from_many_threads_all_count() {
        let v = *b"93";
        let before = count(&v);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| (0..10_000).for_each(|_| add(&v, 1)));
            }
        });
        assert_eq!(count(&v) - before, 40_000);
    }
}
