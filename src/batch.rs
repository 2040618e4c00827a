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
use crate::usage;
use crate::work::{open_text, seal, Context};

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
    context: Context,
    bytes: &[u8],
    ends: &[usize],
    results: &mut Results,
    yield_every: Option<usize>,
) -> Result<(), (usize, FieldCryptError)> {
    // Key usage (src/usage.rs): the whole piece at once, before its first IV.
    if let Some(v) = version.filter(|v| ring.contains(v)) {
        usage::add(&v, ends.len() as u64);
    }
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
                seal(ring, &v, context, &mut scratch.0, &mut seg.buf.bytes).map_err(|e| (i, e))?;
                seg.end_value(len).map_err(|e| (i, e))?;
            }
            None => {
                open_text(ring, value, true, context, &mut scratch.0).map_err(|e| (i, e))?;
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
    fn split_points_ascii() {
        assert_eq!(split_points(b"abcde", &[2, 0, 3]), Some(vec![2, 2, 5]));
        assert_eq!(split_points(b"abcde", &[5]), Some(vec![5]));
        // lengths that do not add up
        assert_eq!(split_points(b"abc", &[2]), None);
        assert_eq!(split_points(b"abc", &[4]), None);
        assert_eq!(split_points(b"abc", &[]), None);
    }

    #[test]
    fn split_points_empty_values() {
        assert_eq!(split_points(b"", &[]), Some(vec![]));
        assert_eq!(split_points(b"", &[0, 0, 0]), Some(vec![0, 0, 0]));
        assert_eq!(split_points(b"ab", &[0, 2, 0]), Some(vec![0, 2, 2]));
        assert_eq!(split_points("é".as_bytes(), &[0, 1, 0]), Some(vec![0, 2, 2]));
    }

    #[test]
    fn split_points_multi_byte() {
        // "é" is 2 bytes / 1 unit, "🛂" 4 bytes / 2 units, "€" 3 bytes / 1 unit
        let s = "é🛂€x";
        assert_eq!(split_points(s.as_bytes(), &[1, 2, 2]), Some(vec![2, 6, 10]));
        assert_eq!(split_points(s.as_bytes(), &[5]), Some(vec![10]));
        let s = "ab€日本";
        assert_eq!(split_points(s.as_bytes(), &[2, 1, 2]), Some(vec![2, 5, 11]));
        // too few or too many units for the bytes
        assert_eq!(split_points(s.as_bytes(), &[2, 1, 1]), None);
        assert_eq!(split_points(s.as_bytes(), &[2, 1, 3]), None);
    }

    #[test]
    fn split_points_surrogate_pair_across_values() {
        // a boundary inside the surrogate pair cannot be split
        assert_eq!(split_points("🛂".as_bytes(), &[1, 1]), None);
        assert_eq!(split_points("a🛂b".as_bytes(), &[2, 2]), None);
        assert_eq!(split_points("a🛂b".as_bytes(), &[1, 2, 1]), Some(vec![1, 5, 6]));
        assert_eq!(split_points("a🛂b".as_bytes(), &[3, 1]), Some(vec![5, 6]));
    }

    #[test]
    fn split_points_rejects_stray_bytes() {
        // not UTF-8: a continuation byte where a character starts
        assert_eq!(split_points(&[b'a', 0x80], &[2]), None);
        assert_eq!(split_points(&[0xF8, 0x80, 0x80, 0x80], &[2]), None);
    }

    #[test]
    fn utf16_lengths() {
        for s in ["", "abc", "Ünïcödé 日本語", "🛂🪪👩🏽‍💻", "a\0b", "\u{FFFD}"] {
            assert_eq!(utf16_len(s.as_bytes()), s.encode_utf16().count(), "{s:?}");
        }
    }

    /// Values of `len` characters: ASCII, or with multi-byte characters.
    fn values(count: usize, len: usize, text: bool) -> Vec<String> {
        (0..count)
            .map(|i| {
                let c = if text && i % 3 == 1 { '🛂' } else { char::from(b'a' + (i % 26) as u8) };
                std::iter::repeat_n(c, len).collect()
            })
            .collect()
    }

    fn ring() -> Keyring {
        Keyring::from_hex_pairs([("01", "0123456789abcdef".repeat(4).as_str())]).unwrap()
    }

    /// The values joined, and their byte ends (as `split_points` finds them).
    fn joined(values: &[String]) -> (Vec<u8>, Vec<usize>) {
        let bytes = values.concat().into_bytes();
        let lens: Vec<u32> = values.iter().map(|v| v.encode_utf16().count() as u32).collect();
        let ends = split_points(&bytes, &lens).expect("whole values");
        (bytes, ends)
    }

    /// Each segment's values, sliced at its UTF-16 ends.
    fn unjoin(results: &Results) -> Vec<String> {
        let mut out = Vec::new();
        for seg in &results.segments {
            let units: Vec<u16> = std::str::from_utf8(&seg.buf.bytes).unwrap().encode_utf16().collect();
            let mut start = 0;
            for &end in &seg.unit_ends {
                out.push(String::from_utf16(&units[start..end as usize]).unwrap());
                start = end as usize;
            }
            assert_eq!(start, units.len(), "the ends cover the segment");
        }
        out
    }

    fn check_segments(results: &Results) {
        for seg in &results.segments {
            assert!(!seg.unit_ends.is_empty(), "no empty segment");
            assert!(seg.buf.bytes.len() <= SEGMENT_BYTES || seg.unit_ends.len() == 1, "a segment of one value alone");
            assert_eq!(seg.ascii, seg.buf.bytes.is_ascii());
        }
    }

    fn round_trip(values: &[String], reserve: bool, yield_every: Option<usize>) -> usize {
        let ring = ring();
        let (bytes, ends) = joined(values);
        let mut sealed = Results::default();
        if reserve {
            sealed.reserve(bytes.len() * 2 + ends.len() * format::stored_len(0));
        }
        process(&ring, Some(*b"01"), Context::NONE, &bytes, &ends, &mut sealed, yield_every).unwrap();
        check_segments(&sealed);
        let stored = unjoin(&sealed);
        assert_eq!(stored.len(), values.len());
        for (s, v) in stored.iter().zip(values) {
            assert_eq!(s.len(), format::stored_len(v.len()));
            assert!(format::is_well_formed(s.as_bytes()));
        }

        let (bytes, ends) = joined(&stored);
        let mut opened = Results::default();
        process(&ring, None, Context::NONE, &bytes, &ends, &mut opened, yield_every).unwrap();
        check_segments(&opened);
        assert!(opened.segments.iter().all(|seg| seg.buf.secret), "plaintext segments are wiped");
        assert_eq!(unjoin(&opened), values);
        sealed.segments.len()
    }

    #[test]
    fn segments_hold_whole_values_within_the_limit() {
        let _pool = pool::TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // small values: several segments, none past the limit
        assert!(round_trip(&values(2000, 100, false), false, None) > 1);
        assert!(round_trip(&values(2000, 40, true), true, Some(POOL_YIELD_EVERY)) > 1);
        // a value longer than a segment gets one of its own
        let mut big = values(3, 10, true);
        big.insert(1, "x".repeat(SEGMENT_BYTES));
        assert_eq!(round_trip(&big, false, None), 3);
        // empty values, and no values
        assert_eq!(round_trip(&values(5, 0, false), false, None), 1);
        assert_eq!(round_trip(&[], false, None), 0);
    }

    #[test]
    fn a_failing_value_fails_the_batch_with_its_index() {
        let _pool = pool::TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let ring = ring();
        let mut stored = Vec::new();
        seal(&ring, b"01", Context::NONE, &mut b"hello".to_vec(), &mut stored).unwrap();
        let (bytes, ends) = joined(&[String::from_utf8(stored).unwrap(), "01:not a stored value".into()]);
        let mut results = Results::default();
        let (i, _) = process(&ring, None, Context::NONE, &bytes, &ends, &mut results, None).unwrap_err();
        assert_eq!(i, 1);
        // a missing write key fails at the first value
        let mut results = Results::default();
        let (i, e) = process(&ring, Some(*b"02"), Context::NONE, b"ab", &[1, 2], &mut results, None).unwrap_err();
        assert_eq!((i, e.code()), (0, "ERR_FIELDCRYPT_KEY_NOT_FOUND"));
    }

    #[test]
    fn encrypting_counts_every_value_once_per_version() {
        let _pool = pool::TEST_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        // Versions no other test encrypts under (see src/usage.rs tests).
        let ring = Keyring::from_hex_pairs([("94", "0123456789abcdef".repeat(4).as_str())]).unwrap();
        let (v, missing) = (*b"94", *b"95");
        let (before, missing_before) = (usage::count(&v), usage::count(&missing));
        let (bytes, ends) = joined(&values(300, 7, true));
        let mut sealed = Results::default();
        process(&ring, Some(v), Context::NONE, &bytes, &ends, &mut sealed, None).unwrap();
        assert_eq!(usage::count(&v) - before, 300);
        // decrypting counts nothing
        let (bytes, ends) = joined(&unjoin(&sealed));
        process(&ring, None, Context::NONE, &bytes, &ends, &mut Results::default(), None).unwrap();
        assert_eq!(usage::count(&v) - before, 300);
        // nor does a batch whose key is missing (no IV is drawn)
        process(&ring, Some(missing), Context::NONE, b"ab", &[1, 2], &mut Results::default(), None).unwrap_err();
        assert_eq!(usage::count(&missing), missing_before);
        // nor an empty one
        process(&ring, Some(v), Context::NONE, b"", &[], &mut Results::default(), None).unwrap();
        assert_eq!(usage::count(&v) - before, 300);
    }
}
