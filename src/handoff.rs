//! Handing a buffer to the JavaScript runtime as the storage of an external
//! string, and taking it back: the ownership rule, free of N-API so that
//! `cargo test` can play every way a runtime may answer.
//!
//! The rule (Node-API's contract for `node_api_create_external_string_*`):
//! once the buffer has been offered, its finalizer runs at most once, and
//! whoever runs it owns the buffer from then on. The runtime may run it
//! *during* the create call: when it copies the string instead of using the
//! buffer in place (`copied`: Deno, runtimes built with V8's sandbox such as
//! Electron) or disposes of the buffer because creation failed. So the
//! offering side never takes the buffer back after the runtime ran the
//! finalizer, and never runs it itself:
//! * [`offer`] learns whether the finalizer ran during the call through a
//!   flag on its own stack, which the [`Handoff`] points to only while the
//!   call is under way;
//! * only a buffer the runtime neither uses nor has finalized (creation
//!   failed before the runtime took it) comes back to the caller;
//! * a runtime that reports `copied` without having run the finalizer breaks
//!   the contract; the buffer is then left to the finalizer it may still run
//!   (a leak is safe; taking it back could be a double free);
//! * bytes are reported as external memory only when the runtime keeps the
//!   buffer, and [`take_back`] un-reports exactly those.

use std::ffi::c_void;
use std::ptr;

/// What the finalizer's hint points to.
pub struct Handoff {
    bytes: Vec<u8>,
    secret: bool,
    /// While [`offer`]'s create call is under way, where the finalizer
    /// records that it ran; null afterwards.
    ran_during_call: *mut bool,
    /// Whether the runtime keeps the buffer and its bytes were reported as
    /// external memory ([`take_back`] un-reports them).
    reported: bool,
}

/// How the runtime answered a create call.
pub struct Answer {
    pub created: bool,
    pub copied: bool,
}

/// What became of an offered buffer.
pub enum Offered {
    /// The runtime reads the buffer in place: report `len` bytes as external
    /// memory; the finalizer will hand the buffer back.
    InPlace(usize),
    /// The runtime finalized the buffer already (it copied the string, or
    /// disposed of the buffer), or keeps it for a finalizer it may still
    /// run: nothing to do.
    Gone,
    /// The runtime never took the buffer: it is the caller's again.
    Refused(Vec<u8>, bool),
}

/// Offers `bytes` to the runtime through `create(data, len, hint)`, which
/// makes the string with the finalizer that calls [`take_back`] on `hint`.
///
/// # Safety
/// `create` must follow Node-API's contract: it calls the finalizer at most
/// once for `hint`, and only calls it after returning if it reports the
/// string created and not copied.
pub unsafe fn offer(
    bytes: Vec<u8>,
    secret: bool,
    create: impl FnOnce(*mut u8, usize, *mut c_void) -> Answer,
) -> Offered {
    let mut ran = false;
    let len = bytes.len();
    let hint = Box::into_raw(Box::new(Handoff { bytes, secret, ran_during_call: &mut ran, reported: false }));
    // SAFETY: `hint` is live until the finalizer runs, and it cannot have
    // run before the call.
    let data = unsafe { (*hint).bytes.as_mut_ptr() };
    let answer = create(data, len, hint.cast());
    if ran {
        return Offered::Gone;
    }
    // SAFETY: the finalizer has not run, so `hint` is still live, and it
    // runs on this thread, never concurrently with this function.
    unsafe { (*hint).ran_during_call = ptr::null_mut() };
    match answer {
        Answer { created: true, copied: false } => {
            unsafe { (*hint).reported = true };
            Offered::InPlace(len)
        }
        Answer { created: true, copied: true } => Offered::Gone,
        Answer { created: false, .. } => {
            // SAFETY: never taken by the runtime, never finalized.
            let handoff = unsafe { Box::from_raw(hint) };
            Offered::Refused(handoff.bytes, handoff.secret)
        }
    }
}

/// The finalizer's work: the buffer, whether it held plaintext, and how many
/// bytes to un-report as external memory.
///
/// # Safety
/// `hint` is one [`offer`] made, and this runs once for it.
pub unsafe fn take_back(hint: *mut c_void) -> (Vec<u8>, bool, usize) {
    let handoff = unsafe { Box::from_raw(hint.cast::<Handoff>()) };
    if !handoff.ran_during_call.is_null() {
        // SAFETY: non-null only while `offer`'s create call is under way,
        // when it points to `offer`'s own flag.
        unsafe { *handoff.ran_during_call = true };
    }
    let Handoff { bytes, secret, reported, .. } = *handoff;
    let unreport = if reported { bytes.len() } else { 0 };
    (bytes, secret, unreport)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Each buffer, by its data pointer, must come back exactly once: to
    /// the caller (Refused) or through the finalizer.
    #[derive(Default)]
    struct Ledger {
        back: RefCell<Vec<(*const u8, usize)>>,
        reported: RefCell<i64>,
    }

    impl Ledger {
        fn finalize(&self, hint: *mut c_void) {
            let (bytes, _, unreport) = unsafe { take_back(hint) };
            *self.reported.borrow_mut() -= unreport as i64;
            self.back.borrow_mut().push((bytes.as_ptr(), bytes.len()));
        }

        fn settle(&self, offered: Offered) {
            match offered {
                Offered::InPlace(len) => *self.reported.borrow_mut() += len as i64,
                Offered::Gone => {}
                Offered::Refused(bytes, _) => self.back.borrow_mut().push((bytes.as_ptr(), bytes.len())),
            }
        }
    }

    fn buffer() -> Vec<u8> {
        b"01:00112233445566778899aabbccddeeff:00112233445566778899aabbccddeeff:00".to_vec()
    }

    /// The runtime as Node without a sandbox: the string uses the buffer in
    /// place; the finalizer runs when it is collected.
    #[test]
    fn in_place_then_finalized_later() {
        let ledger = Ledger::default();
        let mut kept = ptr::null_mut();
        let bytes = buffer();
        let at = bytes.as_ptr();
        let offered = unsafe {
            offer(bytes, false, |_, _, hint| {
                kept = hint;
                Answer { created: true, copied: false }
            })
        };
        assert!(matches!(offered, Offered::InPlace(71)));
        ledger.settle(offered);
        assert_eq!(*ledger.reported.borrow(), 71);
        assert!(ledger.back.borrow().is_empty(), "the runtime still reads it");
        ledger.finalize(kept);
        assert_eq!(*ledger.back.borrow(), vec![(at, 71)]);
        assert_eq!(*ledger.reported.borrow(), 0);
    }

    /// The runtime as Deno or a V8 sandbox build: it copies the characters
    /// and runs the finalizer before returning `copied = true`. The buffer
    /// must come back once (the double free this module exists to prevent)
    /// and nothing stays reported.
    #[test]
    fn copied_with_the_finalizer_run_during_the_call() {
        for secret in [false, true] {
            let ledger = Ledger::default();
            let bytes = buffer();
            let at = bytes.as_ptr();
            let offered = unsafe {
                offer(bytes, secret, |data, len, hint| {
                    let copy = std::slice::from_raw_parts(data, len).to_vec();
                    assert_eq!(copy, buffer(), "the runtime reads the characters before finalizing");
                    ledger.finalize(hint);
                    Answer { created: true, copied: true }
                })
            };
            assert!(matches!(offered, Offered::Gone));
            ledger.settle(offered);
            assert_eq!(*ledger.back.borrow(), vec![(at, 71)]);
            assert_eq!(*ledger.reported.borrow(), 0);
        }
    }

    /// Creation fails before the runtime takes the buffer (an invalid
    /// argument): it is the caller's again.
    #[test]
    fn refused_without_the_finalizer() {
        let ledger = Ledger::default();
        let bytes = buffer();
        let at = bytes.as_ptr();
        let offered = unsafe { offer(bytes, true, |_, _, _| Answer { created: false, copied: false }) };
        assert!(matches!(offered, Offered::Refused(_, true)));
        ledger.settle(offered);
        assert_eq!(*ledger.back.borrow(), vec![(at, 71)]);
        assert_eq!(*ledger.reported.borrow(), 0);
    }

    /// Creation fails after the runtime took the buffer, and it disposes of
    /// it (running the finalizer) before returning the error.
    #[test]
    fn failed_with_the_finalizer_run_during_the_call() {
        let ledger = Ledger::default();
        let bytes = buffer();
        let at = bytes.as_ptr();
        let offered = unsafe {
            offer(bytes, false, |_, _, hint| {
                ledger.finalize(hint);
                Answer { created: false, copied: false }
            })
        };
        assert!(matches!(offered, Offered::Gone));
        ledger.settle(offered);
        assert_eq!(*ledger.back.borrow(), vec![(at, 71)]);
    }

    /// A runtime that reports `copied` but runs the finalizer only later:
    /// the buffer is left to that finalizer, which un-reports nothing.
    #[test]
    fn copied_with_the_finalizer_run_later() {
        let ledger = Ledger::default();
        let mut kept = ptr::null_mut();
        let bytes = buffer();
        let at = bytes.as_ptr();
        let offered = unsafe {
            offer(bytes, false, |_, _, hint| {
                kept = hint;
                Answer { created: true, copied: true }
            })
        };
        assert!(matches!(offered, Offered::Gone));
        ledger.settle(offered);
        assert!(ledger.back.borrow().is_empty());
        ledger.finalize(kept);
        assert_eq!(*ledger.back.borrow(), vec![(at, 71)]);
        assert_eq!(*ledger.reported.borrow(), 0);
    }
}
