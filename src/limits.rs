//! Sizes that decide how results cross into JS, kept together because
//! `lib/core/limits.js` mirrors some of them.
//!
//! Invariant: `EXTERNAL_MIN` and `TEXT_EXTERNAL_MIN` equal the JS constants
//! `SINGLE_EXTERNAL_STORED` and `SINGLE_EXTERNAL_TEXT` in `lib/core/limits.js`
//! (JS chooses between a batch and single calls from them). Each stays a
//! one-line `usize` constant with its name unchanged, so that
//! `__test__/shared-facts.test.js` can read it from this file. The stored
//! value's fixed header, `VV:IV:TAG:` (69 bytes, JS's `STORED_HEADER`), is
//! `HEADER_LEN` in `src/format.rs`.
//!
//! Plain numbers: nothing here knows napi.

/// V8's longest string on 64-bit platforms, in characters: 2^29 - 24.
pub(crate) const MAX_STRING_LEN: usize = (1 << 29) - 24;

/// Results at least this long are returned as external strings (when
/// available): V8 then reads our buffer instead of copying it. Below it, the
/// copy is cheaper than the finalizer bookkeeping.
pub(crate) const EXTERNAL_MIN: usize = 32 * 1024;

/// The same for decrypted text, which V8 would otherwise copy: below V8's
/// large-object size (128 KiB) the copy is a bump in the young generation;
/// above it, a fresh mapping of pages per string, which costs more than an
/// external string's bookkeeping.
pub(crate) const TEXT_EXTERNAL_MIN: usize = 128 * 1024;

/// The same for batch segments: a batch's results all live until the batch
/// returns, so a young-generation collection meanwhile would copy every
/// copied segment; an external segment's buffer comes from the pool.
pub(crate) const SEGMENT_EXTERNAL_MIN: usize = 8 * 1024;
