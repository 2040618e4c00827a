//! Random IVs from the operating system's generator, fork-safe.
//!
//! Every IV is 16 bytes read from the OS (`getrandom(2)` on Linux, through
//! `rand`'s `OsRng`), never expanded in user space: a user-space generator
//! such as `rand::rng()` copies its state into a child made by `fork()`
//! without `exec`, and parent and child would then write the same IVs under
//! the same key, which breaks GCM.
//!
//! Asking the OS for each IV costs a system call per value, more than the
//! rest of a short encryption. So each thread reads [`POOL_BYTES`] at a time
//! and hands them out 16 by 16. What must stay true:
//! * a byte of the pool is handed out once, then wiped;
//! * a pool filled before a `fork()` is never used after it, in the parent
//!   or the child: a `pthread_atfork` child handler bumps [`GENERATION`],
//!   and a pool from another generation is discarded before use;
//! * a failure of the OS generator is not papered over: the process aborts
//!   rather than encrypt under an IV that may repeat.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use rand::TryRngCore;

use crate::format::IV_LEN;

/// Bytes read from the OS at a time: 128 IVs (the system call is then a
/// small share of the cost; the kernel's generator costs the rest).
pub const POOL_BYTES: usize = 2048;

/// Bumped in a child process after `fork()`; pools of an older generation
/// are discarded.
static GENERATION: AtomicU64 = AtomicU64::new(0);

struct Pool {
    bytes: [u8; POOL_BYTES],
    next: usize,
    generation: u64,
}

thread_local! {
    static POOL: RefCell<Pool> = const {
        RefCell::new(Pool { bytes: [0; POOL_BYTES], next: POOL_BYTES, generation: u64::MAX })
    };
}

/// Fills `out` from the OS generator; aborts the process if it fails.
pub fn os_fill(out: &mut [u8]) {
    if rand::rngs::OsRng.try_fill_bytes(out).is_err() {
        eprintln!(
            "fieldcrypt: the operating system's random generator failed; aborting rather than risk a repeated IV"
        );
        std::process::abort();
    }
}

/// A fresh random IV (see the module docs).
pub fn random_iv() -> [u8; IV_LEN] {
    watch_forks();
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let generation = GENERATION.load(Ordering::Acquire);
        if pool.next + IV_LEN > POOL_BYTES || pool.generation != generation {
            os_fill(&mut pool.bytes);
            pool.next = 0;
            pool.generation = generation;
        }
        let at = pool.next;
        let mut iv = [0u8; IV_LEN];
        iv.copy_from_slice(&pool.bytes[at..at + IV_LEN]);
        pool.bytes[at..at + IV_LEN].fill(0);
        pool.next = at + IV_LEN;
        iv
    })
}

/// Nanoseconds per IV of three sources, `count` IVs each, for `npm run
/// bench`: [`random_iv`] (this module's pools), the OS generator asked once
/// per IV, and a user-space generator (`rand::rng()`: ChaCha seeded from the
/// OS, fast but not fork-safe).
pub fn source_costs(count: u32) -> [f64; 3] {
    use rand::RngCore;
    let per_iv = |f: &mut dyn FnMut()| {
        let start = std::time::Instant::now();
        for _ in 0..count {
            f();
        }
        start.elapsed().as_nanos() as f64 / f64::from(count.max(1))
    };
    let mut iv = [0u8; IV_LEN];
    let pool = per_iv(&mut || iv = std::hint::black_box(random_iv()));
    let os = per_iv(&mut || os_fill(std::hint::black_box(&mut iv)));
    let mut rng = rand::rng();
    let user = per_iv(&mut || rng.fill_bytes(std::hint::black_box(&mut iv)));
    [pool, os, user]
}

#[cfg(unix)]
fn watch_forks() {
    use std::sync::Once;
    static REGISTER: Once = Once::new();
    unsafe extern "C" {
        fn pthread_atfork(
            prepare: Option<unsafe extern "C" fn()>,
            parent: Option<unsafe extern "C" fn()>,
            child: Option<unsafe extern "C" fn()>,
        ) -> i32;
    }
    /// Runs in the child, in the thread that forked: async-signal-safe (one
    /// atomic add).
    unsafe extern "C" fn in_child() {
        GENERATION.fetch_add(1, Ordering::AcqRel);
    }
    REGISTER.call_once(|| {
        // SAFETY: registers a handler that only touches an atomic.
        if unsafe { pthread_atfork(None, None, Some(in_child)) } != 0 {
            eprintln!("fieldcrypt: pthread_atfork failed; aborting rather than risk repeated IVs after fork()");
            std::process::abort();
        }
    });
}

#[cfg(not(unix))]
fn watch_forks() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ivs_are_distinct_across_many_pools() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..100_000 {
            assert!(seen.insert(random_iv()));
        }
    }

    #[test]
    fn handed_out_bytes_are_wiped_and_a_new_generation_refills() {
        let first = random_iv();
        POOL.with(|pool| {
            let pool = pool.borrow();
            assert!(pool.bytes[..pool.next].iter().all(|&b| b == 0), "used bytes are wiped");
        });
        // What the fork handler does: every pool of the old generation is stale.
        GENERATION.fetch_add(1, Ordering::AcqRel);
        let before = POOL.with(|pool| pool.borrow().bytes);
        let second = random_iv();
        POOL.with(|pool| {
            let pool = pool.borrow();
            assert_eq!(pool.next, IV_LEN, "a new generation starts a new pool");
            assert_ne!(pool.bytes[IV_LEN..], before[IV_LEN..], "the pool was read again from the OS");
        });
        assert_ne!(first, second);
    }

    #[test]
    fn threads_have_their_own_pools() {
        let a = std::thread::spawn(|| (0..40).map(|_| random_iv()).collect::<Vec<_>>()).join().unwrap();
        let b = std::thread::spawn(|| (0..40).map(|_| random_iv()).collect::<Vec<_>>()).join().unwrap();
        let all: std::collections::HashSet<_> = a.iter().chain(&b).collect();
        assert_eq!(all.len(), 80);
    }
}
