//! Reading and writing JS values through raw N-API: strings, arrays and
//! typed arrays.
//!
//! Invariants: bytes read from JS are appended to a buffer the caller owns
//! (and wipes: it may be plaintext), grown with [`pool::reserve_secret`] so
//! that growing never leaves a plaintext copy behind; a slice borrowed from
//! a typed array ([`read_bytes`], [`write_bytes`]) is only used inside the
//! callback that read it, and only until the callback next does something
//! that can run JavaScript (`napi_get_element` can run an accessor, which can
//! detach the view's buffer); [`read_u32s`] copies for that reason.

use std::ffi::{c_char, c_void};
use std::ptr;

use napi::sys;

use super::errors::{check, Fail, Res};
use super::state::{Scratch, State, KEEP_SCRATCH};
use super::{RawEnv, Value, OK};
use crate::error::{FieldCryptError, Version};
use crate::format;
use crate::pool;

pub(super) unsafe fn js_string(env: RawEnv, s: &str) -> Res<Value> {
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut out) })?;
    Ok(out)
}

pub(super) unsafe fn set_named(env: RawEnv, obj: Value, name: &str, value: Value) -> Res<()> {
    let key = unsafe { js_string(env, name)? };
    check(unsafe { sys::napi_set_property(env, obj, key, value) })
}

/// The UTF-16 length of a JS string, in O(1); `None` if it is not a string.
unsafe fn string_len(env: RawEnv, v: Value) -> Option<usize> {
    let mut len = 0;
    let status = unsafe { sys::napi_get_value_string_latin1(env, v, ptr::null_mut(), 0, &mut len) };
    (status == OK).then_some(len)
}

/// Reads a string that must be ASCII (a stored value, a version, or text
/// read as ASCII first by [`read_utf8`]), appending it to `out`. Returns
/// false if `v` is not a string or holds a non-ASCII character: neither can
/// be well-formed.
pub(super) unsafe fn read_ascii(env: RawEnv, v: Value, out: &mut Vec<u8>) -> Res<bool> {
    let Some(len) = (unsafe { string_len(env, v) }) else { return Ok(false) };
    let start = out.len();
    pool::reserve_secret(out, start + len + 1);
    let mut written = 0;
    check(unsafe {
        sys::napi_get_value_string_utf8(env, v, out.as_mut_ptr().add(start).cast::<c_char>(), len + 1, &mut written)
    })?;
    // SAFETY: N-API wrote `written` bytes (<= len) after `start`, in the reserved space.
    unsafe { out.set_len(start + written) };
    // Every character is at least one UTF-8 byte, so a string with a
    // non-ASCII character either does not fit (written < len) or puts a byte
    // >= 0x80 in `out`, which no field of the format accepts.
    Ok(written == len)
}

/// Reads a JS string as UTF-8 (lone surrogates become U+FFFD, as with
/// `Buffer.from(s, 'utf8')`), appending it to `buf`, in one pass: `buf` is
/// sized for the most UTF-8 the string can need, 3 bytes per UTF-16 unit (a
/// surrogate pair, 2 units, is 4). Pages of that space that are never
/// written are never touched.
///
/// `scan_above`: for strings longer than this (in UTF-16 units), reserve
/// only one byte per unit and read the string as if it were ASCII; when it
/// is not, ask V8 for the exact UTF-8 length (a scan of the string) and read
/// it again into that. Calls that read into the kept scratch buffer do this
/// only for what would not be kept; async batch pieces, whose buffers go
/// back to the pool (and would be reallocated to 3x), from 16K units.
pub(super) unsafe fn read_utf8(env: RawEnv, v: Value, what: &str, buf: &mut Vec<u8>, scan_above: usize) -> Res<()> {
    let Some(len) = (unsafe { string_len(env, v) }) else {
        return Err(Fail::Arg(format!("{what} must be a string")));
    };
    let mut cap = len * 3 + 1;
    if len > scan_above {
        // Most text is ASCII, whose UTF-8 is one byte per unit: try that
        // first. N-API writes whole characters only, so `len` bytes all
        // below 0x80 mean the whole string was ASCII. Otherwise measure the
        // string (a pass over it) and read it again.
        let start = buf.len();
        if unsafe { read_ascii(env, v, buf)? } && buf[start..].is_ascii() {
            return Ok(());
        }
        // Not ASCII: the partial read is wiped and dropped, and read again.
        pool::wipe_slice(&mut buf[start..]);
        buf.truncate(start);
        let mut exact = 0;
        check(unsafe { sys::napi_get_value_string_utf8(env, v, ptr::null_mut(), 0, &mut exact) })?;
        cap = exact + 1;
    }
    let start = buf.len();
    pool::reserve_secret(buf, start + cap);
    let mut written = 0;
    check(unsafe {
        sys::napi_get_value_string_utf8(env, v, buf.as_mut_ptr().add(start).cast::<c_char>(), cap, &mut written)
    })?;
    // SAFETY: N-API wrote `written` bytes after `start`, in the reserved space.
    unsafe { buf.set_len(start + written) };
    Ok(())
}

/// An optional context argument (AES-GCM additional data, see
/// [`crate::work::Context`]): `undefined` or `null` for none, else a string,
/// read as UTF-8 into `buf` (cleared first). Returns whether one was given.
pub(super) unsafe fn read_context(env: RawEnv, v: Value, buf: &mut Vec<u8>) -> Res<bool> {
    buf.clear();
    let mut kind = sys::ValueType::napi_undefined;
    check(unsafe { sys::napi_typeof(env, v, &mut kind) })?;
    if kind == sys::ValueType::napi_undefined || kind == sys::ValueType::napi_null {
        return Ok(false);
    }
    unsafe { read_utf8(env, v, "context", buf, SCAN_ABOVE_SINGLE)? };
    Ok(true)
}

/// An optional boolean argument: `undefined` is false.
pub(super) unsafe fn read_flag(env: RawEnv, v: Value) -> Res<bool> {
    let mut kind = sys::ValueType::napi_undefined;
    check(unsafe { sys::napi_typeof(env, v, &mut kind) })?;
    if kind == sys::ValueType::napi_undefined {
        return Ok(false);
    }
    let mut b = false;
    if unsafe { sys::napi_get_value_bool(env, v, &mut b) } != OK {
        return Err(Fail::Arg("expected a boolean".into()));
    }
    Ok(b)
}

/// [`read_utf8`]'s `scan_above` for calls that read into the kept scratch
/// buffer (single values, sync batches) and for async batch pieces.
pub(super) const SCAN_ABOVE_SINGLE: usize = KEEP_SCRATCH / 3;
pub(super) const SCAN_ABOVE_BATCH: usize = 16 * 1024;

/// The bytes of a Uint8Array (Buffers are Uint8Arrays).
pub(super) unsafe fn read_bytes<'a>(env: RawEnv, v: Value) -> Res<&'a [u8]> {
    let (data, len) = unsafe { uint8_view(env, v)? };
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: N-API returns the view's first element and its length; the JS
    // thread is inside this call, so the view cannot change meanwhile.
    Ok(unsafe { std::slice::from_raw_parts(data as *const u8, len) })
}

/// [`read_bytes`], writable: a Uint8Array to fill.
pub(super) unsafe fn write_bytes<'a>(env: RawEnv, v: Value) -> Res<&'a mut [u8]> {
    let (data, len) = unsafe { uint8_view(env, v)? };
    if len == 0 {
        return Ok(&mut []);
    }
    // SAFETY: as in `read_bytes`; nothing else in this call refers to the
    // view's memory (the other arguments are strings).
    Ok(unsafe { std::slice::from_raw_parts_mut(data as *mut u8, len) })
}

/// A Uint8Array's data and length.
unsafe fn uint8_view(env: RawEnv, v: Value) -> Res<(*mut c_void, usize)> {
    let mut is_typed = false;
    check(unsafe { sys::napi_is_typedarray(env, v, &mut is_typed) })?;
    if !is_typed {
        return Err(Fail::Arg("the value must be a Buffer or Uint8Array".into()));
    }
    let (mut kind, mut len, mut data) = (0, 0, ptr::null_mut());
    check(unsafe {
        sys::napi_get_typedarray_info(env, v, &mut kind, &mut len, &mut data, ptr::null_mut(), ptr::null_mut())
    })?;
    if kind != sys::TypedarrayType::uint8_array {
        return Err(Fail::Arg("the value must be a Buffer or Uint8Array".into()));
    }
    Ok((data, len))
}

/// A two-digit key version argument.
pub(super) unsafe fn read_version(env: RawEnv, v: Value) -> Res<Version> {
    // Exactly two UTF-16 units, both of which must then be ASCII digits.
    if unsafe { string_len(env, v) } != Some(2) {
        return Err(FieldCryptError::InvalidKeyVersion.into());
    }
    let mut buf = [0u8; 4];
    let mut written = 0;
    check(unsafe {
        sys::napi_get_value_string_utf8(env, v, buf.as_mut_ptr().cast::<c_char>(), buf.len(), &mut written)
    })?;
    Ok(format::parse_version_bytes(&buf[..written])?)
}

pub(super) unsafe fn latin1(env: RawEnv, ascii: &[u8]) -> Res<Value> {
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_create_string_latin1(env, ascii.as_ptr().cast(), ascii.len() as isize, &mut out) })?;
    Ok(out)
}

/// Text that is not all ASCII as a JS string, transcoded to UTF-16 here for
/// V8 to copy (V8 still makes a one-byte string of Latin-1 text): V8's own
/// UTF-8 decoder (`napi_create_string_utf8`) is several times slower than
/// this transcoding. The UTF-16 copy is plaintext, in a scratch buffer
/// wiped once V8 has copied it.
pub(super) unsafe fn utf16_string(env: RawEnv, state: &State, text: &str) -> Res<Value> {
    let mut units = Scratch::take(&state.text16);
    // UTF-16 never needs more units than UTF-8 has bytes.
    units.reserve(text.len());
    units.extend(text.encode_utf16());
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_create_string_utf16(env, units.as_ptr(), units.len() as isize, &mut out) })?;
    Ok(out)
}

pub(super) unsafe fn boolean(env: RawEnv, b: bool) -> Res<Value> {
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_get_boolean(env, b, &mut out) })?;
    Ok(out)
}

pub(super) unsafe fn undefined(env: RawEnv) -> Res<Value> {
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_get_undefined(env, &mut out) })?;
    Ok(out)
}

pub(super) unsafe fn array_len(env: RawEnv, v: Value) -> Res<u32> {
    let mut is_array = false;
    check(unsafe { sys::napi_is_array(env, v, &mut is_array) })?;
    if !is_array {
        return Err(Fail::Arg("values must be an array".into()));
    }
    let mut len = 0;
    check(unsafe { sys::napi_get_array_length(env, v, &mut len) })?;
    Ok(len)
}

pub(super) unsafe fn element(env: RawEnv, arr: Value, i: u32) -> Res<Value> {
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_get_element(env, arr, i, &mut out) })?;
    Ok(out)
}

pub(super) unsafe fn new_array(env: RawEnv, len: usize) -> Res<Value> {
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_create_array_with_length(env, len, &mut out) })?;
    Ok(out)
}

/// A Uint32Array argument.
/// A copy of a Uint32Array's elements. A copy, not a view: reading other
/// arguments afterwards (`napi_get_element` on an array) can run JavaScript
/// (an accessor), which can detach or shrink the view's buffer.
pub(super) unsafe fn read_u32s(env: RawEnv, v: Value) -> Res<Vec<u32>> {
    let (mut kind, mut len, mut data) = (0, 0, ptr::null_mut());
    let status = unsafe {
        sys::napi_get_typedarray_info(env, v, &mut kind, &mut len, &mut data, ptr::null_mut(), ptr::null_mut())
    };
    if status != OK || kind != sys::TypedarrayType::uint32_array {
        return Err(Fail::Arg("lengths must be a Uint32Array".into()));
    }
    if len == 0 {
        return Ok(Vec::new());
    }
    // SAFETY: N-API returns the view's first element (4-byte aligned) and
    // length, valid until JavaScript runs again: copied at once.
    Ok(unsafe { std::slice::from_raw_parts(data as *const u32, len) }.to_vec())
}
