//! The batch algorithm: splitting a joined batch back into its values,
//! running the crypto over them, and collecting the results in segments.
//! Nothing here knows napi; `src/napi/batch.rs` and
//! `src/napi/batch_async.rs` read the input and wrap the results.
//!
//! A batch crosses N-API as one string each way: JS joins the values
//! (`values.join('')`, done inside V8) and passes each value's length in
//! UTF-16 units; the results come back joined, with their end offsets, and
//! JS slices them apart (V8 slices share the joined string). That is two
//! N-API string conversions per batch instead of two per value.
//!
//! A batch is all-or-nothing: the first failing value fails the batch, with
//! its index. When the joined form cannot be split back into the values (a
//! surrogate pair split across two values, or non-ASCII stored values)
//! [`split_points`] returns `None` and JS falls back to one call per value,
//! which reports the exact error.
//!
//! Invariants: plaintext lives only in [`Secret`] scratch (wiped whole on
//! drop) and in segments whose pooled buffer is marked `secret` (wiped
//! before reuse); a segment holds whole values only, and at most
//! [`SEGMENT_BYTES`] unless one value alone is longer.

use crate::error::{FieldCryptError, Version};
use crate::format;
use crate::keyring::Keyring;
use crate::pool;
use crate::work::{open_text, seal};

/// How many values a pool thread processes between offers of its core
/// (`sched_yield`, about every 40 us). With the pool's threads on every
/// core, the JS thread and V8's garbage-collection helpers otherwise wait
/// for a time slice when they wake; the cost is a system call per this
/// many values.
pub(crate) const POOL_YIELD_EVERY: usize = 128;

/// A buffer reused for value after value of a batch, wiped whole (its
/// capacity: a short value leaves the end of an earlier, longer one there)
/// with a memset when dropped. It grows with [`pool::reserve_secret`].
#[derive(Default)]
pub(crate) struct Secret(Vec<u8>);

impl Drop for Secret {
    fn drop(&mut self) {
        pool::wipe_capacity(&mut self.0);
    }
}

/// Byte offsets of the values in UTF-8 `bytes`, from their UTF-16 lengths;
/// `None` if a boundary falls inside a character.
pub(crate) fn split_points(bytes: &[u8], unit_lens: &[u32]) -> Option<Vec<usize>> {
    let mut ends = Vec::with_capacity(unit_lens.len());
    let mut pos = 0usize;
    if bytes.is_ascii() {
        for &u in unit_lens {
            pos += u as usize;
            ends.push(pos);
        }
    } else {
        for &u in unit_lens {
            let mut units = u as usize;
            while units > 0 {
                let (len, width) = match *bytes.get(pos)? {
                    0x00..=0x7F => (1, 1),
                    0xC0..=0xDF => (2, 1),
                    0xE0..=0xEF => (3, 1),
                    0xF0..=0xF7 => (4, 2),
                    _ => return None,
                };
                if width > units {
                    return None;
                }
                units -= width;
                pos += len;
            }
            ends.push(pos);
        }
    }
    (pos == bytes.len()).then_some(ends)
}

/// UTF-16 length of UTF-8 text: one unit per character, two for 4-byte ones.
pub(crate) fn utf16_len(text: &[u8]) -> usize {
    text.iter().filter(|&&b| (b & 0xC0) != 0x80).count() + text.iter().filter(|&&b| b >= 0xF0).count()
}

/// Results are returned in segments of whole values, each at most this long
/// (unless one value alone is longer): V8 allocates strings above 128 KiB as
/// large objects, a fresh mapping of pages each, which would dominate a
/// batch's cost.
pub(crate) const SEGMENT_BYTES: usize = 96 * 1024;

/// One segment of a batch's results: whole values back to back (in a
/// pooled buffer, wiped when it holds plaintext), and where each ends, in
/// UTF-16 units from the segment's start.
pub(crate) struct Segment {
    pub(crate) buf: pool::Buffer,
    pub(crate) unit_ends: Vec<u32>,
    /// Whether every value in it is ASCII (then `buf` is one-byte text).
    pub(crate) ascii: bool,
}

impl Segment {
    /// Records the end of a value of `units` UTF-16 units just appended.
    fn end_value(&mut self, units: usize) -> Result<(), FieldCryptError> {
        let end = self.unit_ends.last().map_or(0, |&u| u as usize) + units;
        self.unit_ends.push(u32::try_from(end).map_err(|_| FieldCryptError::TooLarge)?);
        Ok(())
    }
}

/// A batch's results, in segments built where the crypto runs (on the
/// thread pool for async batches), so that the JS thread only wraps them.
#[derive(Default)]
pub(crate) struct Results {
    pub(crate) segments: Vec<Segment>,
    /// Buffers taken in advance, on the JS thread (see [`Results::reserve`]).
    spare: Vec<pool::Buffer>,
}

impl Results {
    /// The segment the next result goes into: the last one, or a new one
    /// when `len` more bytes would take the last past [`SEGMENT_BYTES`].
    /// A new segment reserves `len` or, up to [`SEGMENT_BYTES`], what the
    /// rest of the batch needs (`rest`), so it never grows.
    fn segment_for(&mut self, len: usize, rest: usize, secret: bool) -> &mut Segment {
        let full = match self.segments.last() {
            Some(seg) => !seg.buf.bytes.is_empty() && seg.buf.bytes.len() + len > SEGMENT_BYTES,
            None => true,
        };
        if full {
            let cap = rest.min(SEGMENT_BYTES).max(len);
            let buf = match self.spare.pop() {
                Some(mut b) if b.bytes.capacity() >= cap => {
                    b.secret = secret;
                    b
                }
                _ => pool::Buffer::take(cap, secret),
            };
            self.segments.push(Segment {
                buf,
                unit_ends: Vec::with_capacity(cap / (format::stored_len(0) + 1) + 1),
                ascii: true,
            });
        }
        self.segments.last_mut().expect("a segment")
    }
}

impl Results {
    /// Takes the buffers for about `total` bytes of results now, on the JS
    /// thread, for a batch that runs on the thread pool. Memory a pool
    /// thread allocates lives in that thread's malloc arena, which hands
    /// freed pages back to the system eagerly: the next batch then pays a
    /// page fault per 4 KiB. Buffers from the JS thread are reused instead.
    pub(crate) fn reserve(&mut self, total: usize) {
        let cap = total.min(SEGMENT_BYTES);
        let count = if total > SEGMENT_BYTES { total.div_ceil(SEGMENT_BYTES) + 1 } else { 1 };
        self.spare = (0..count).map(|_| pool::Buffer::take(cap, false)).collect();
    }
}

/// The crypto of a batch; runs on the JS thread or the thread pool.
/// `version` is the write version to encrypt, `None` to decrypt. Values are
/// `bytes` split at `ends`; results are appended to `results`. On the
/// thread pool, `yield_every` values the thread offers its core to any
/// thread waiting for one (see [`POOL_YIELD_EVERY`]).
pub(crate) fn process(
    ring: &Keyring,
    version: Option<Version>,
    bytes: &[u8],
    ends: &[usize],
    results: &mut Results,
    yield_every: Option<usize>,
) -> Result<(), (usize, FieldCryptError)> {
    let mut scratch = Secret::default();
    let mut start = 0usize;
    for (i, &end) in ends.iter().enumerate() {
        if let Some(every) = yield_every {
            if i % every == every - 1 {
                std::thread::yield_now();
            }
        }
        let value = &bytes[start..end];
        // Room for the value (encrypting) or its ciphertext (decrypting).
        pool::reserve_secret(&mut scratch.0, value.len());
        // What the rest of the batch needs, stored values being 2x+69 bytes
        // (exact) and plaintexts at most half their stored values.
        let rest_in = bytes.len() - start;
        start = end;
        match version {
            Some(v) => {
                let len = format::stored_len(value.len());
                let rest = rest_in * 2 + (ends.len() - i) * format::stored_len(0);
                let seg = results.segment_for(len, rest, false);
                scratch.0.clear();
                scratch.0.extend_from_slice(value);
                seal(ring, &v, &mut scratch.0, &mut seg.buf.bytes).map_err(|e| (i, e))?;
                seg.end_value(len).map_err(|e| (i, e))?;
            }
            None => {
                open_text(ring, value, true, &mut scratch.0).map_err(|e| (i, e))?;
                let text = &scratch.0;
                let seg = results.segment_for(text.len(), rest_in / 2, true);
                let ascii = text.is_ascii();
                seg.ascii &= ascii;
                seg.buf.bytes.extend_from_slice(text);
                seg.end_value(if ascii { text.len() } else { utf16_len(text) }).map_err(|e| (i, e))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_points_follow_utf16_lengths() {
        assert_eq!(split_points(b"abcde", &[2, 0, 3]), Some(vec![2, 2, 5]));
        // "é" is 2 bytes / 1 unit, "🛂" 4 bytes / 2 units, "€" 3 bytes / 1 unit
        let s = "é🛂€x";
        assert_eq!(split_points(s.as_bytes(), &[1, 2, 2]), Some(vec![2, 6, 10]));
        // a boundary inside the surrogate pair cannot be split
        assert_eq!(split_points("🛂".as_bytes(), &[1, 1]), None);
        // lengths that do not add up
        assert_eq!(split_points(b"abc", &[2]), None);
        assert_eq!(split_points(b"abc", &[4]), None);
    }

    #[test]
    fn utf16_lengths() {
        for s in ["", "abc", "Ünïcödé 日本語", "🛂🪪👩🏽‍💻", "a\0b", "\u{FFFD}"] {
            assert_eq!(utf16_len(s.as_bytes()), s.encode_utf16().count(), "{s:?}");
        }
    }
}
