//! Sync batches (`encryptJoined`, `decryptJoined`), and the reading of a
//! joined batch and the writing of its results, which async batches share.
//! The algorithm itself is napi-free, in `src/batch.rs`.
//!
//! Invariants: encrypting, the joined input is plaintext and is read into
//! the state's input scratch buffer (sync) or a pooled buffer marked secret
//! (async), both wiped; result segments are turned into JS strings only on
//! the JS thread, and a segment's buffer handed to V8 as an external string
//! belongs to V8 until its finalizer runs (see [`super::external`]).

use std::ptr;

use napi::sys;

use super::errors::{check, run, Fail, Res};
use super::external::{account_external, external_latin1_unaccounted};
use super::io::{
    array_len, element, latin1, new_array, read_ascii, read_context, read_flag, read_u32s, read_utf8, read_version,
    undefined, utf16_string, SCAN_ABOVE_SINGLE,
};
use super::state::{args, Scratch, State};
use super::{RawEnv, Value};
use crate::batch::{process, split_points, Results};
use crate::error::FieldCryptError;
use crate::limits::SEGMENT_EXTERNAL_MIN;
use crate::work::Context;

/// Reads a joined batch into `buf`: `joined` is the values joined into one
/// string, or an array of such strings (consecutive runs of the values,
/// each below V8's large-object size). Returns the values' byte ends, or
/// `None` if the batch cannot be split back into its values.
pub(super) unsafe fn read_joined(
    env: RawEnv,
    joined: Value,
    lens: Value,
    encrypt: bool,
    scan_above: usize,
    buf: &mut Vec<u8>,
) -> Res<Option<Vec<usize>>> {
    let unit_lens = unsafe { read_u32s(env, lens)? };
    let mut is_array = false;
    check(unsafe { sys::napi_is_array(env, joined, &mut is_array) })?;
    let runs = if is_array { unsafe { array_len(env, joined)? } } else { 1 };
    for i in 0..runs {
        let run = if is_array { unsafe { element(env, joined, i)? } } else { joined };
        if encrypt {
            unsafe { read_utf8(env, run, "values", buf, scan_above)? };
        } else if !unsafe { read_ascii(env, run, buf)? } {
            return Ok(None);
        }
    }
    Ok(split_points(buf, &unit_lens))
}

/// The results as JS values: an array of segments `[joined, ends]`, `ends` a
/// Uint32Array of each value's end within `joined`, in UTF-16 units.
///
/// Where Node has external strings, ASCII segments of SEGMENT_EXTERNAL_MIN
/// and more are external: V8 reads the segment's buffer in place, with no
/// copy on the JS thread, and a collection has only a small header to move
/// (a copied segment lives as long as any of its values, and every
/// young-generation collection meanwhile copies it again). V8 keeps external strings in its
/// old generation, so they are freed by full collections only; the buffer
/// then goes back to the pool, wiped first if it held plaintext.
pub(super) unsafe fn write_results(env: RawEnv, state: &State, results: &mut Results) -> Res<Value> {
    let mut held = 0;
    let segments = unsafe { write_segments(env, state, results, &mut held) };
    unsafe { account_external(env, held) };
    segments
}

unsafe fn write_segments(env: RawEnv, state: &State, results: &mut Results, held: &mut i64) -> Res<Value> {
    let external = state.external_strings;
    let segments = unsafe { new_array(env, results.segments.len())? };
    for (k, seg) in results.segments.iter_mut().enumerate() {
        let buf = &mut seg.buf;
        let joined = if !seg.ascii {
            // Whole values, each checked to be UTF-8 when it was decrypted.
            let text = std::str::from_utf8(&buf.bytes).map_err(|_| FieldCryptError::NotUtf8)?;
            unsafe { utf16_string(env, state, text)? }
        } else if external && buf.bytes.len() >= SEGMENT_EXTERNAL_MIN {
            unsafe { external_latin1_unaccounted(env, std::mem::take(&mut buf.bytes), buf.secret, held)? }
        } else {
            unsafe { latin1(env, &buf.bytes)? }
        };
        let n = seg.unit_ends.len();
        let mut data = ptr::null_mut();
        let mut buffer = ptr::null_mut();
        check(unsafe { sys::napi_create_arraybuffer(env, n * 4, &mut data, &mut buffer) })?;
        if n > 0 {
            // SAFETY: a fresh ArrayBuffer of n * 4 bytes, suitably aligned.
            unsafe { std::slice::from_raw_parts_mut(data as *mut u32, n) }.copy_from_slice(&seg.unit_ends);
        }
        let mut ends = ptr::null_mut();
        check(unsafe { sys::napi_create_typedarray(env, sys::TypedarrayType::uint32_array, n, buffer, 0, &mut ends) })?;
        let pair = unsafe { new_array(env, 2)? };
        check(unsafe { sys::napi_set_element(env, pair, 0, joined) })?;
        check(unsafe { sys::napi_set_element(env, pair, 1, ends) })?;
        check(unsafe { sys::napi_set_element(env, segments, k as u32, pair) })?;
    }
    Ok(segments)
}

/// `encryptJoined(joined, lens, version, context?)` /
/// `decryptJoined(joined, lens, undefined, context?, allowUnbound?)`:
/// `[results, ends]`, or `undefined` when JS must go value by value. One
/// context for every value of the batch.
unsafe fn sync_batch(env: RawEnv, info: sys::napi_callback_info, encrypt: bool) -> Value {
    unsafe {
        run(env, || {
            let ([joined, lens, ver, aad, allow], state) = args::<5>(env, info)?;
            let version = if encrypt { Some(read_version(env, ver)?) } else { None };
            let ring = state.ring.borrow();
            if let Some(v) = version {
                ring.get(&v)?;
            }
            let mut aad_buf = state.aad.borrow_mut();
            read_context(env, aad, &mut aad_buf)?;
            let context = Context { aad: &aad_buf, allow_unbound: !encrypt && read_flag(env, allow)? };
            let mut input = Scratch::take(&state.input);
            let Some(ends) = read_joined(env, joined, lens, encrypt, SCAN_ABOVE_SINGLE, &mut input)? else {
                return undefined(env);
            };
            let mut results = Results::default();
            process(&ring, version, context, &input, &ends, &mut results, None).map_err(|(i, e)| Fail::At(i, e))?;
            write_results(env, state, &mut results)
        })
    }
}

pub(super) unsafe extern "C" fn encrypt_joined(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe { sync_batch(env, info, true) }
}

pub(super) unsafe extern "C" fn decrypt_joined(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe { sync_batch(env, info, false) }
}
