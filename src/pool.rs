//! Reused buffers for batch results and inputs.
//!
//! A batch of 100,000 values produces about 23 MB of stored values. Fresh
//! buffers of that size cost the kernel a page fault and a zeroed page per
//! 4 KiB (glibc hands large freed blocks back to the system, and per-thread
//! arenas shrink), a large share of an async batch's CPU time.
//! Buffers come from here instead and go back when their JS string is
//! collected (result segments) or their piece is done (async inputs).
//!
//! Two classes, each with its own budget: result segments (up to 128 KiB)
//! come back in bulk when V8 collects their strings and would otherwise
//! crowd out the larger input buffers, which come back one piece at a time.
//!
//! Buffers given back are wiped first when they may hold plaintext, so a
//! pooled buffer never holds any (see [`give_back`]).
//!
//! Plaintext buffers of collected strings are wiped on a thread of their
//! own ([`give_back_later`]): V8 runs string finalizers inside a full
//! collection's pause, which wiping the decrypted segments of batches there
//! would lengthen by milliseconds.

use std::sync::{Condvar, Mutex, OnceLock};

/// Buffers up to this capacity are in the small class, larger ones in the
/// large class.
pub const SMALL_MAX: usize = 128 << 10;

/// At most this many bytes of buffers are kept for reuse, per class.
pub const KEEP_BYTES: [usize; 2] = [16 << 20, 8 << 20];

/// Buffers larger than this are never kept.
pub const KEEP_MAX: usize = 1 << 20;

struct Pool {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

static POOLS: [Mutex<Pool>; 2] =
    [Mutex::new(Pool { buffers: Vec::new(), bytes: 0 }), Mutex::new(Pool { buffers: Vec::new(), bytes: 0 })];

fn class(cap: usize) -> usize {
    usize::from(cap > SMALL_MAX)
}

fn pool(class: usize) -> std::sync::MutexGuard<'static, Pool> {
    // A panic while holding the lock leaves the pool consistent (only pushes
    // and pops happen under it), so a poisoned lock is still usable.
    POOLS[class].lock().unwrap_or_else(|e| e.into_inner())
}

/// An empty buffer with room for at least `cap` bytes: a pooled one when one
/// is large enough, otherwise a new one.
pub fn take(cap: usize) -> Vec<u8> {
    if cap <= KEEP_MAX {
        let mut p = pool(class(cap));
        // The most recently returned buffer first (its pages are likeliest
        // to be in cache); buffers are mostly of one size, so this rarely
        // looks past the last few.
        if let Some(i) = p.buffers.iter().rposition(|b| b.capacity() >= cap) {
            let buf = p.buffers.swap_remove(i);
            p.bytes -= buf.capacity();
            return buf;
        }
    }
    Vec::with_capacity(cap)
}

/// Overwrites a heap buffer that held plaintext with zeros, in one memset
/// (vectorised, unlike `zeroize`'s byte-wise volatile writes, which cost
/// about a microsecond per 3 KiB). `black_box` makes the compiler assume the
/// zeros are read, so the stores are kept even when the buffer is freed
/// next, and the fence keeps them from moving past a later reuse.
pub fn wipe_slice<T: Copy + Default>(buf: &mut [T]) {
    buf.fill(T::default());
    std::hint::black_box(&*buf);
    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
}

/// Makes `buf` (which holds or held plaintext) able to hold `total` bytes.
/// Growing a Vec reallocates, and realloc frees the old block with whatever
/// it held, spare capacity included (a reused buffer keeps earlier, longer
/// values past its length). Here the contents move to a new allocation and
/// the old one is wiped whole before it is freed.
pub fn reserve_secret(buf: &mut Vec<u8>, total: usize) {
    if buf.capacity() >= total {
        return;
    }
    let mut moved = Vec::with_capacity(total.max(buf.capacity() * 2));
    moved.extend_from_slice(buf);
    let mut old = std::mem::replace(buf, moved);
    wipe_capacity(&mut old);
}

/// [`wipe_slice`] over a buffer's whole capacity, not just its length.
pub fn wipe_capacity(buf: &mut Vec<u8>) {
    buf.resize(buf.capacity(), 0);
    wipe_slice(buf);
}

/// Returns a buffer for reuse (or frees it, when it is too large or the
/// pool is full). `secret` buffers (which held plaintext) are wiped first,
/// the bytes written only: a pooled buffer is all zeros up to the length any
/// earlier user wrote.
pub fn give_back(mut buf: Vec<u8>, secret: bool) {
    if secret {
        wipe_slice(&mut buf);
    }
    buf.clear();
    let cap = buf.capacity();
    if cap == 0 || cap > KEEP_MAX {
        return;
    }
    let class = class(cap);
    let mut p = pool(class);
    if p.bytes + cap <= KEEP_BYTES[class] {
        p.bytes += cap;
        p.buffers.push(buf);
    }
}

/// How long the recycling thread waits, once woken, before it wipes: the
/// first buffer arrives during a collection's pause, and wiping at once
/// competes with V8's helper threads for the cores, lengthening the pause
/// (the choice of 10 ms is measured in bench/HISTORY.md, "wiping thread").
const RECYCLE_AFTER: std::time::Duration = std::time::Duration::from_millis(10);

/// Plaintext buffers waiting for the recycling thread (see [`give_back_later`]).
static LATER: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());
static LATER_READY: Condvar = Condvar::new();
/// Whether the recycling thread runs (started once, when the addon first
/// hands plaintext to V8 as an external string).
static RECYCLER: OnceLock<bool> = OnceLock::new();

fn later() -> std::sync::MutexGuard<'static, Vec<Vec<u8>>> {
    LATER.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts the thread that wipes and pools what [`give_back_later`] queues;
/// false when no thread could be started (buffers are then wiped in place).
/// Call it where starting a thread is cheap to wait for (before handing V8
/// a plaintext buffer): [`give_back_later`] starts it too, inside a
/// collection's pause otherwise.
pub fn start_recycler() -> bool {
    *RECYCLER.get_or_init(|| {
        std::thread::Builder::new()
            .name("fieldcrypt-wipe".into())
            // It only wipes and pools buffers: no deep calls.
            .stack_size(64 << 10)
            .spawn(recycle)
            .is_ok()
    })
}

fn recycle() {
    // Two lists swapped under the lock, so the queue keeps its capacity and
    // the finalizers' pushes do not allocate once it has grown.
    let mut batch = Vec::new();
    loop {
        {
            let mut queue = later();
            while queue.is_empty() {
                queue = LATER_READY.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
        }
        // Woken by the first buffer of a collection, which is still running:
        // V8's helper threads need the cores until it ends.
        std::thread::sleep(RECYCLE_AFTER);
        std::mem::swap(&mut *later(), &mut batch);
        for buf in batch.drain(..) {
            give_back(buf, true);
        }
    }
}

/// [`give_back`] for a buffer that held plaintext, from a V8 finalizer: the
/// buffer is queued for the recycling thread, which wipes it about 10 ms
/// later ([`RECYCLE_AFTER`]), instead of being wiped inside the
/// collection's pause. Wiped in place when the thread cannot run.
pub fn give_back_later(buf: Vec<u8>) {
    if !start_recycler() {
        return give_back(buf, true);
    }
    let mut queue = later();
    let wake = queue.is_empty();
    queue.push(buf);
    drop(queue);
    if wake {
        LATER_READY.notify_one();
    }
}

/// A pooled buffer: given back (wiped first when `secret`) when dropped.
#[derive(Default)]
pub struct Buffer {
    pub bytes: Vec<u8>,
    pub secret: bool,
}

impl Buffer {
    /// [`take`] as a [`Buffer`].
    pub fn take(cap: usize, secret: bool) -> Self {
        Buffer { bytes: take(cap), secret }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.bytes), self.secret);
    }
}

/// Held by every test that takes or gives back pooled buffers: the pool is
/// shared by the whole process, and its own test checks which buffer comes
/// back.
#[cfg(test)]
pub(crate) static TEST_LOCK: Mutex<()> = Mutex::new(());

#[cfg(test)]
fn pooled_bytes() -> usize {
    pool(0).bytes + pool(1).bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the pool is shared by everything in the process.
    #[test]
    fn reuses_wiped_buffers_and_keeps_a_bounded_amount() {
        let _pool = TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let mut a = take(1000);
        assert!(a.capacity() >= 1000 && a.is_empty());
        a.extend_from_slice(b"secret plaintext");
        let (ptr_a, cap_a) = (a.as_ptr(), a.capacity());
        give_back(a, true);
        let b = take(1000);
        assert_eq!((b.as_ptr(), b.capacity()), (ptr_a, cap_a), "the buffer just given back");
        assert!(b.is_empty());
        // SAFETY: within the buffer's capacity; written before, wiped since.
        let seen = unsafe { std::slice::from_raw_parts(b.as_ptr(), 16) };
        assert_eq!(seen, &[0u8; 16]);
        give_back(b, false);

        // Given back later: the recycling thread wipes it, then pools it.
        assert!(start_recycler(), "the recycling thread starts");
        let mut c = take(3000);
        c.extend_from_slice(&[0xA5; 3000]);
        let ptr_c = c.as_ptr();
        give_back_later(c);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let pooled = loop {
            if let Some(b) = pool(class(3000)).buffers.iter().find(|b| b.as_ptr() == ptr_c) {
                // SAFETY: within the buffer's capacity; written before.
                break unsafe { std::slice::from_raw_parts(b.as_ptr(), 3000) }.to_vec();
            }
            assert!(std::time::Instant::now() < deadline, "not back in the pool after 10 s");
            std::thread::sleep(std::time::Duration::from_millis(1));
        };
        assert!(pooled.iter().all(|&x| x == 0), "wiped before it was pooled");
        assert!(later().is_empty());

        // Too large to keep: the pool does not grow.
        let before = pooled_bytes();
        give_back(Vec::with_capacity(KEEP_MAX + 1), false);
        assert_eq!(pooled_bytes(), before);

        // Never more than KEEP_BYTES per class.
        for cap in [SMALL_MAX, KEEP_MAX] {
            let many: Vec<_> = (0..KEEP_BYTES[class(cap)] / cap + 4).map(|_| Vec::<u8>::with_capacity(cap)).collect();
            for buf in many {
                give_back(buf, false);
            }
            assert!(pool(class(cap)).bytes <= KEEP_BYTES[class(cap)]);
        }
        assert!(pooled_bytes() <= KEEP_BYTES[0] + KEEP_BYTES[1]);

        // A Buffer goes back on drop.
        let buf = Buffer::take(100, true);
        let p = buf.bytes.as_ptr();
        drop(buf);
        let again = take(100);
        assert_eq!(again.as_ptr(), p);
    }

    #[test]
    fn reserve_secret_keeps_the_contents_and_only_grows() {
        let mut buf = Vec::with_capacity(8);
        buf.extend_from_slice(b"plain");
        let p = buf.as_ptr();
        reserve_secret(&mut buf, 8);
        assert_eq!(buf.as_ptr(), p, "room enough: not moved");
        reserve_secret(&mut buf, 100);
        assert!(buf.capacity() >= 100);
        assert_eq!(buf, b"plain");

        // A cleared buffer keeps earlier bytes past its length; wipe_capacity
        // zeroes all of them.
        buf.extend_from_slice(b" text");
        buf.truncate(2);
        wipe_capacity(&mut buf);
        assert_eq!(buf.len(), buf.capacity());
        assert!(buf.iter().all(|&b| b == 0));
    }
}
