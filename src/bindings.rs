#![cfg_attr(test, allow(dead_code))]
//! The N-API surface: the only module that knows napi.
//!
//! Every function here is a plain N-API callback over `napi::sys`, registered
//! on the module's exports by napi-rs's `module_exports` hook. We measured
//! napi-rs's generated wrappers at 3-4x the cost of a plain callback (about
//! 130 ns against 40 ns to receive one string), which is most of a 100-byte
//! encrypt, so the hot paths do the few N-API calls they need themselves:
//!
//! * stored values and versions (ASCII) are read with a length query that is
//!   O(1) (`napi_get_value_string_latin1` with no buffer) and one UTF-8 copy;
//!   stored values are written with `napi_create_string_latin1`, which V8
//!   copies into a one-byte string without decoding;
//! * plaintext is read as UTF-8 in one pass into a buffer sized 3x its UTF-16
//!   length (the most UTF-8 it can need), encrypted in place and zeroized;
//!   decrypted text is zeroized after V8 has copied it.
//!
//! Each module instance (main thread or worker) gets its own keyring, passed
//! to every callback as its `data` pointer and freed by an env cleanup hook.
//! Only the JS thread touches it; batch work on the thread pool holds `Arc`s
//! of the keys it needs.
//!
//! Errors are thrown as JS `Error`s whose `code` is [`FieldCryptError::code`];
//! key errors also carry `keyVersion`, batch errors `index`.

use std::cell::RefCell;
use std::ffi::{c_char, c_void};
use std::ptr;

use napi::bindgen_prelude::Object;
use napi::sys;
use napi::{Env, JsValue};
use napi_derive::napi;
use zeroize::Zeroizing;

use crate::cipher;
use crate::error::{FieldCryptError, Version};
use crate::format;
use crate::keyring::{Key, Keyring};
use crate::pool;

type Value = sys::napi_value;
type RawEnv = sys::napi_env;

const OK: sys::napi_status = sys::Status::napi_ok;

/// Per-module-instance state.
struct State {
    ring: RefCell<Keyring>,
    /// Reused buffers for one call's input and output, so that small calls
    /// allocate nothing; see [`Scratch`].
    input: RefCell<Vec<u8>>,
    output: RefCell<Vec<u8>>,
    /// Decrypted text that is not ASCII, as UTF-16 for V8 (see [`utf16_string`]).
    text16: RefCell<Vec<u16>>,
    /// Whether this Node has `node_api_create_external_string_latin1`
    /// (Node >= 18.18 / 20.4): large results are then handed to V8 without a copy.
    external_strings: bool,
}

/// V8's longest string on 64-bit platforms, in characters: 2^29 - 24.
const MAX_STRING_LEN: usize = (1 << 29) - 24;

/// Results at least this long are returned as external strings (when
/// available): V8 then reads our buffer instead of copying it. Below it, the
/// copy is cheaper than the finalizer bookkeeping.
const EXTERNAL_MIN: usize = 32 * 1024;

/// The same for decrypted text, which V8 would otherwise copy: below V8's
/// large-object size (128 KiB) the copy is a bump in the young generation;
/// above it, a fresh mapping of pages per string (1 MiB decrypts measured
/// 1.3-1.5x faster external, 64 KiB ones 10% slower).
const TEXT_EXTERNAL_MIN: usize = 128 * 1024;

/// The same for batch segments: a batch's results all live until the batch
/// returns, so a young-generation collection meanwhile would copy every
/// copied segment; an external segment's buffer comes from the pool.
const SEGMENT_EXTERNAL_MIN: usize = 8 * 1024;

/// Scratch buffers up to this capacity are kept for the next call; larger
/// ones are freed. Keeping them matters for large values: a fresh multi-MiB
/// buffer costs the kernel a page fault and a zeroed page per 4 KiB, which
/// measured at over half of a 1 MiB encrypt.
const KEEP_SCRATCH: usize = 8 << 20;

/// A borrowed scratch buffer. On drop, the bytes the call wrote are zeroized
/// (only those: zeroizing the whole capacity would cost a memset of the
/// largest value ever seen on every call), so between calls no scratch
/// buffer holds plaintext: zeros, or ciphertext (see [`Scratch::encrypted`]).
struct Scratch<'a, T: Copy + Default = u8>(std::cell::RefMut<'a, Vec<T>>);

impl<'a, T: Copy + Default> Scratch<'a, T> {
    fn take(cell: &'a RefCell<Vec<T>>) -> Self {
        let mut buf = cell.borrow_mut();
        buf.clear();
        Scratch(buf)
    }

    /// The buffer's plaintext has been encrypted in place (every byte
    /// written is ciphertext now): nothing to wipe on drop. Wiping 1 MiB of
    /// ciphertext was 16% of a 1 MiB encrypt.
    fn encrypted(mut self) {
        self.0.clear();
    }
}

impl<T: Copy + Default> Drop for Scratch<'_, T> {
    fn drop(&mut self) {
        pool::wipe_slice(&mut self.0);
        self.0.clear();
        if self.0.capacity() * std::mem::size_of::<T>() > KEEP_SCRATCH {
            *self.0 = Vec::new();
        }
    }
}

impl<T: Copy + Default> std::ops::Deref for Scratch<'_, T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T: Copy + Default> std::ops::DerefMut for Scratch<'_, T> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.0
    }
}

/// Why a call failed.
enum Fail {
    /// A fieldcrypt error, thrown with its code.
    Crypt(FieldCryptError),
    /// The same, for element `index` of a batch.
    At(usize, FieldCryptError),
    /// An argument of the wrong type. The message names the argument, never its value.
    Arg(String),
    /// An N-API call failed; it may have left an exception pending.
    Napi,
}

impl From<FieldCryptError> for Fail {
    fn from(e: FieldCryptError) -> Self {
        Fail::Crypt(e)
    }
}

type Res<T> = Result<T, Fail>;

fn check(status: sys::napi_status) -> Res<()> {
    if status == OK {
        Ok(())
    } else {
        Err(Fail::Napi)
    }
}

fn version_str(v: &Version) -> &str {
    crate::error::version_str(v)
}

unsafe fn js_string(env: RawEnv, s: &str) -> Res<Value> {
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_create_string_utf8(env, s.as_ptr().cast(), s.len() as isize, &mut out) })?;
    Ok(out)
}

unsafe fn set_named(env: RawEnv, obj: Value, name: &str, value: Value) -> Res<()> {
    let key = unsafe { js_string(env, name)? };
    check(unsafe { sys::napi_set_property(env, obj, key, value) })
}

/// Builds the JS error object for a failure.
unsafe fn error_value(env: RawEnv, fail: Fail) -> Res<Value> {
    let (err, index) = match fail {
        Fail::Crypt(e) => (e, None),
        Fail::At(i, e) => (e, Some(i)),
        Fail::Arg(msg) => {
            let code = unsafe { js_string(env, "ERR_FIELDCRYPT_INVALID_ARGUMENT")? };
            let msg = unsafe { js_string(env, &msg)? };
            let mut out = ptr::null_mut();
            check(unsafe { sys::napi_create_type_error(env, code, msg, &mut out) })?;
            return Ok(out);
        }
        Fail::Napi => return Err(Fail::Napi),
    };
    let message = match index {
        Some(i) => format!("{err} (at index {i})"),
        None => err.to_string(),
    };
    let code = unsafe { js_string(env, err.code())? };
    let msg = unsafe { js_string(env, &message)? };
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_create_error(env, code, msg, &mut out) })?;
    if let FieldCryptError::KeyNotFound(v) | FieldCryptError::AuthenticationFailed(v) = &err {
        let v = unsafe { js_string(env, version_str(v))? };
        unsafe { set_named(env, out, "keyVersion", v)? };
    }
    if let Some(i) = index {
        let mut n = ptr::null_mut();
        check(unsafe { sys::napi_create_uint32(env, i as u32, &mut n) })?;
        unsafe { set_named(env, out, "index", n)? };
    }
    Ok(out)
}

/// Throws `fail` (unless an N-API failure already left an exception pending)
/// and returns the `NULL` a callback returns after throwing.
unsafe fn throw(env: RawEnv, fail: Fail) -> Value {
    let mut pending = false;
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if !pending {
        match unsafe { error_value(env, fail) } {
            Ok(err) => unsafe {
                sys::napi_throw(env, err);
            },
            Err(_) => unsafe {
                sys::napi_throw_error(env, ptr::null(), c"fieldcrypt: internal N-API failure".as_ptr());
            },
        }
    }
    ptr::null_mut()
}

/// Runs a callback body, turning its failure into a thrown JS error. A
/// panic (a bug) becomes a JS error too instead of aborting the process.
unsafe fn run(env: RawEnv, body: impl FnOnce() -> Res<Value>) -> Value {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(fail)) => unsafe { throw(env, fail) },
        Err(_) => unsafe {
            sys::napi_throw_error(
                env,
                c"ERR_FIELDCRYPT_INTERNAL".as_ptr(),
                c"fieldcrypt: internal error (a bug; please report it)".as_ptr(),
            );
            ptr::null_mut()
        },
    }
}

/// The callback's arguments (missing ones are `undefined`) and its state.
unsafe fn args<'a, const N: usize>(env: RawEnv, info: sys::napi_callback_info) -> Res<([Value; N], &'a State)> {
    let mut argc = N;
    let mut argv = [ptr::null_mut(); N];
    let mut data = ptr::null_mut();
    check(unsafe { sys::napi_get_cb_info(env, info, &mut argc, argv.as_mut_ptr(), ptr::null_mut(), &mut data) })?;
    // SAFETY: every callback is created with a pointer to a live `State`,
    // freed only by the env cleanup hook after all JS has stopped running.
    Ok((argv, unsafe { &*(data as *const State) }))
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
unsafe fn read_ascii(env: RawEnv, v: Value, out: &mut Vec<u8>) -> Res<bool> {
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
unsafe fn read_utf8(env: RawEnv, v: Value, what: &str, buf: &mut Vec<u8>, scan_above: usize) -> Res<()> {
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

/// [`read_utf8`]'s `scan_above` for calls that read into the kept scratch
/// buffer (single values, sync batches) and for async batch pieces.
const SCAN_ABOVE_SINGLE: usize = KEEP_SCRATCH / 3;
const SCAN_ABOVE_BATCH: usize = 16 * 1024;

/// The bytes of a Uint8Array (Buffers are Uint8Arrays).
unsafe fn read_bytes<'a>(env: RawEnv, v: Value) -> Res<&'a [u8]> {
    let (data, len) = unsafe { uint8_view(env, v)? };
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: N-API returns the view's first element and its length; the JS
    // thread is inside this call, so the view cannot change meanwhile.
    Ok(unsafe { std::slice::from_raw_parts(data as *const u8, len) })
}

/// [`read_bytes`], writable: a Uint8Array to fill.
unsafe fn write_bytes<'a>(env: RawEnv, v: Value) -> Res<&'a mut [u8]> {
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
unsafe fn read_version(env: RawEnv, v: Value) -> Res<Version> {
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

unsafe fn latin1(env: RawEnv, ascii: &[u8]) -> Res<Value> {
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_create_string_latin1(env, ascii.as_ptr().cast(), ascii.len() as isize, &mut out) })?;
    Ok(out)
}

/// Tells V8 how much memory external strings hold, so that it collects
/// them as promptly as strings on its own heap (it cannot see their buffers).
unsafe fn account_external(env: RawEnv, change: i64) {
    let mut total = 0;
    unsafe { sys::napi_adjust_external_memory(env, change, &mut total) };
}

/// Finalizer of an external string holding a stored value: its buffer goes
/// back to the pool (or is freed).
unsafe extern "C" fn free_external(env: sys::node_api_basic_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` is the Box<Vec<u8>> leaked in `external_latin1`; V8
    // calls this once, after the string is gone.
    let bytes = *unsafe { Box::from_raw(hint as *mut Vec<u8>) };
    unsafe { account_external(env.cast(), -(bytes.len() as i64)) };
    pool::give_back(bytes, false);
}

/// Finalizer of an external string holding plaintext: its buffer goes to
/// the recycling thread, which wipes it and gives it back. V8 runs this
/// inside a full collection's pause; wiping there took 3-7 ms per
/// collection after decrypting batches (see [`pool::give_back_later`]).
unsafe extern "C" fn free_external_secret(env: sys::node_api_basic_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: as in `free_external`.
    let bytes = *unsafe { Box::from_raw(hint as *mut Vec<u8>) };
    unsafe { account_external(env.cast(), -(bytes.len() as i64)) };
    pool::give_back_later(bytes);
}

/// A one-byte string (ASCII) that V8 reads from `bytes` in place: no
/// allocation or copy on V8's side, and nothing for the garbage collector
/// to copy. When the string is collected, the buffer goes back to the
/// [`pool`], wiped first if `secret` (plaintext).
unsafe fn external_latin1(env: RawEnv, bytes: Vec<u8>, secret: bool) -> Res<Value> {
    let mut held = 0;
    let out = unsafe { external_latin1_unaccounted(env, bytes, secret, &mut held)? };
    unsafe { account_external(env, held) };
    Ok(out)
}

/// [`external_latin1`] without telling V8: adds the bytes V8 now holds to
/// `held`, for the caller to report once. Above V8's external-memory limit
/// every report runs a step of incremental marking on this thread, so a
/// batch reports its segments together.
unsafe fn external_latin1_unaccounted(env: RawEnv, bytes: Vec<u8>, secret: bool, held: &mut i64) -> Res<Value> {
    if secret {
        // The thread that wipes such buffers once V8 collects them, started
        // here rather than by the first finalizer, inside a collection (and
        // only in processes that decrypt into external strings).
        pool::start_recycler();
    }
    let boxed = Box::new(bytes);
    let (ptr_, len) = (boxed.as_ptr(), boxed.len());
    let hint = Box::into_raw(boxed);
    let mut out = ptr::null_mut();
    let mut copied = false;
    let status = unsafe {
        sys::node_api_create_external_string_latin1(
            env,
            ptr_ as *mut c_char,
            len as isize,
            Some(if secret { free_external_secret } else { free_external }),
            hint.cast(),
            &mut out,
            &mut copied,
        )
    };
    if status != OK || copied {
        // Not created, or V8 made its own copy: the buffer is still ours.
        pool::give_back(*unsafe { Box::from_raw(hint) }, secret);
    } else {
        *held += len as i64;
    }
    check(status)?;
    Ok(out)
}

/// Text that is not all ASCII as a JS string, transcoded to UTF-16 here for
/// V8 to copy (V8 still makes a one-byte string of Latin-1 text). V8's own
/// UTF-8 decoder (`napi_create_string_utf8`) took 2.4x as long: decrypting
/// 1 KiB of mixed 1- to 4-byte characters ran at 1.7-1.9x node:crypto
/// through it and 3.6-3.7x this way. The UTF-16 copy is plaintext, in a
/// scratch buffer wiped once V8 has copied it.
unsafe fn utf16_string(env: RawEnv, state: &State, text: &str) -> Res<Value> {
    let mut units = Scratch::take(&state.text16);
    // UTF-16 never needs more units than UTF-8 has bytes.
    units.reserve(text.len());
    units.extend(text.encode_utf16());
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_create_string_utf16(env, units.as_ptr(), units.len() as isize, &mut out) })?;
    Ok(out)
}

unsafe fn boolean(env: RawEnv, b: bool) -> Res<Value> {
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_get_boolean(env, b, &mut out) })?;
    Ok(out)
}

unsafe fn undefined(env: RawEnv) -> Res<Value> {
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_get_undefined(env, &mut out) })?;
    Ok(out)
}

unsafe fn array_len(env: RawEnv, v: Value) -> Res<u32> {
    let mut is_array = false;
    check(unsafe { sys::napi_is_array(env, v, &mut is_array) })?;
    if !is_array {
        return Err(Fail::Arg("values must be an array".into()));
    }
    let mut len = 0;
    check(unsafe { sys::napi_get_array_length(env, v, &mut len) })?;
    Ok(len)
}

unsafe fn element(env: RawEnv, arr: Value, i: u32) -> Res<Value> {
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_get_element(env, arr, i, &mut out) })?;
    Ok(out)
}

unsafe fn new_array(env: RawEnv, len: usize) -> Res<Value> {
    let mut out = ptr::null_mut();
    check(unsafe { sys::napi_create_array_with_length(env, len, &mut out) })?;
    Ok(out)
}

// ---------------------------------------------------------------------------
// The work itself, free of N-API: shared by single calls and batches.

/// Decrypts a stored value (the bytes read from the JS string; `ascii` as
/// returned by [`read_ascii`]) into `out`.
fn open(ring: &Keyring, stored: &[u8], ascii: bool, out: &mut Vec<u8>) -> Result<(), FieldCryptError> {
    if !ascii {
        return Err(FieldCryptError::InvalidFormat);
    }
    cipher::decrypt_into(ring, stored, out)
}

/// [`open`], checking that the plaintext is UTF-8 text.
fn open_text(ring: &Keyring, stored: &[u8], ascii: bool, out: &mut Vec<u8>) -> Result<(), FieldCryptError> {
    open(ring, stored, ascii, out)?;
    cipher::utf8(out).map(|_| ())
}

/// Encrypts `plaintext` (a scratch buffer, encrypted in place) under
/// `version`, appending the stored value to `out`.
fn seal(ring: &Keyring, version: &Version, plaintext: &mut [u8], out: &mut Vec<u8>) -> Result<(), FieldCryptError> {
    cipher::encrypt_into(ring.get(version)?, version, plaintext, out)
}

// ---------------------------------------------------------------------------
// Single-value callbacks.

/// Encrypts `plaintext` in place and returns the stored value as a JS
/// string: small results go through the output scratch buffer and are
/// copied by V8, large ones are handed over as external strings.
unsafe fn finish_seal(
    env: RawEnv,
    state: &State,
    out_cell: &RefCell<Vec<u8>>,
    ring: &Keyring,
    version: &Version,
    plaintext: &mut [u8],
) -> Res<Value> {
    let len = format::stored_len(plaintext.len());
    if len > MAX_STRING_LEN {
        return Err(FieldCryptError::TooLarge.into());
    }
    if state.external_strings && len >= EXTERNAL_MIN {
        let mut stored = pool::take(len);
        seal(ring, version, plaintext, &mut stored)?;
        return unsafe { external_latin1(env, stored, false) };
    }
    let mut stored = Scratch::take(out_cell);
    seal(ring, version, plaintext, &mut stored)?;
    unsafe { latin1(env, &stored) }
}

/// Returns decrypted text: ASCII text as a one-byte string (V8 copies it
/// without UTF-8 decoding), other UTF-8 through [`utf16_string`]; anything
/// else is [`FieldCryptError::NotUtf8`]. One pass for ASCII, the common case.
/// (`decrypt` hands large ASCII text to V8 without a copy.)
unsafe fn finish_text(env: RawEnv, state: &State, text: &[u8]) -> Res<Value> {
    if text.is_ascii() {
        unsafe { latin1(env, text) }
    } else {
        let text = cipher::utf8(text)?;
        unsafe { utf16_string(env, state, text) }
    }
}

/// The body of `encrypt` and `encryptBytes`: `(plaintext, version)`, the
/// plaintext copied into the input scratch buffer by `read`.
unsafe fn seal_call(
    env: RawEnv,
    info: sys::napi_callback_info,
    read: impl FnOnce(Value, &mut Vec<u8>) -> Res<()>,
) -> Value {
    unsafe {
        run(env, || {
            let ([pt, ver], state) = args::<2>(env, info)?;
            let version = read_version(env, ver)?;
            let ring = state.ring.borrow();
            ring.get(&version)?;
            let mut plaintext = Scratch::take(&state.input);
            read(pt, &mut plaintext)?;
            let stored = finish_seal(env, state, &state.output, &ring, &version, &mut plaintext)?;
            plaintext.encrypted();
            Ok(stored)
        })
    }
}

/// `encrypt(plaintext: string, version: string): string`
unsafe extern "C" fn encrypt(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe { seal_call(env, info, |pt, buf| read_utf8(env, pt, "plaintext", buf, SCAN_ABOVE_SINGLE)) }
}

/// `encryptBytes(plaintext: Uint8Array, version: string): string`
unsafe extern "C" fn encrypt_bytes(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        seal_call(env, info, |pt, buf| {
            buf.extend_from_slice(read_bytes(env, pt)?);
            Ok(())
        })
    }
}

/// `decrypt(stored: string): string`
///
/// Text of TEXT_EXTERNAL_MIN bytes and more is decrypted straight into a
/// pooled buffer, which V8 then reads in place as an external string when
/// the text is ASCII (wiped when the string is collected; on every other
/// path, when the buffer is given back): not into the scratch buffer and
/// then copied, which cost a 1 MiB copy and a 1 MiB wipe more per 1 MiB.
unsafe extern "C" fn decrypt(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([data], state) = args::<1>(env, info)?;
            let mut raw = Scratch::take(&state.input);
            let ascii = read_ascii(env, data, &mut raw)?;
            let text_len = raw.len().saturating_sub(format::stored_len(0)) / 2;
            if !(state.external_strings && text_len >= TEXT_EXTERNAL_MIN) {
                let mut text = Scratch::take(&state.output);
                open(&state.ring.borrow(), &raw, ascii, &mut text)?;
                return finish_text(env, state, &text);
            }
            // Wiped when given back, on every path but the external string's
            // (whose finalizer wipes it).
            let mut text = pool::Buffer::take(text_len, true);
            open(&state.ring.borrow(), &raw, ascii, &mut text.bytes)?;
            if text.bytes.is_ascii() {
                external_latin1(env, std::mem::take(&mut text.bytes), true)
            } else {
                finish_text(env, state, &text.bytes)
            }
        })
    }
}

/// `decryptBytes(stored: string, target: Uint8Array): undefined`: decrypts
/// into `target`, which must be as long as the plaintext. JS makes it from
/// the stored value's length with `Buffer.allocUnsafe`, which slices small
/// Buffers out of Node's pool: a Buffer made here (`napi_create_buffer_copy`,
/// a fresh backing store each) cost 3x the rest of a 100-byte decrypt.
unsafe extern "C" fn decrypt_bytes(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([data, target], state) = args::<2>(env, info)?;
            let target = write_bytes(env, target)?;
            let mut raw = Scratch::take(&state.input);
            let ascii = read_ascii(env, data, &mut raw)?;
            let mut plaintext = Scratch::take(&state.output);
            open(&state.ring.borrow(), &raw, ascii, &mut plaintext)?;
            if plaintext.len() != target.len() {
                return Err(Fail::Arg("the target must be exactly as long as the plaintext".into()));
            }
            target.copy_from_slice(&plaintext);
            undefined(env)
        })
    }
}

/// `reEncrypt(stored: string, version: string): string`; the plaintext
/// never leaves this function.
unsafe extern "C" fn re_encrypt(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([data, ver], state) = args::<2>(env, info)?;
            let version = read_version(env, ver)?;
            let ring = state.ring.borrow();
            ring.get(&version)?;
            let mut raw = Scratch::take(&state.input);
            let ascii = read_ascii(env, data, &mut raw)?;
            let mut plain = Scratch::take(&state.output);
            open(&ring, &raw, ascii, &mut plain)?;
            drop(raw);
            finish_seal(env, state, &state.input, &ring, &version, &mut plain)
        })
    }
}

/// `isWellFormed(value: string): boolean`
unsafe extern "C" fn is_well_formed(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([value], state) = args::<1>(env, info)?;
            let mut raw = Scratch::take(&state.input);
            let ok = read_ascii(env, value, &mut raw)? && format::is_well_formed(&*raw);
            boolean(env, ok)
        })
    }
}

/// `keyVersionOf(stored: string): string`
unsafe extern "C" fn key_version_of(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([data], state) = args::<1>(env, info)?;
            let mut raw = Scratch::take(&state.input);
            if !read_ascii(env, data, &mut raw)? {
                return Err(FieldCryptError::InvalidFormat.into());
            }
            let v = format::version_of(&*raw)?;
            latin1(env, &v)
        })
    }
}

// ---------------------------------------------------------------------------
// Keyring management.

/// `addKey(version: string, hexKey: string): void`
unsafe extern "C" fn add_key(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([ver, hex], state) = args::<2>(env, info)?;
            let version = read_version(env, ver)?;
            let key = read_key(env, &version, hex)?;
            state.ring.borrow_mut().insert(version, key);
            undefined(env)
        })
    }
}

unsafe fn read_key(env: RawEnv, version: &Version, hex: Value) -> Res<Key> {
    let mut raw = Zeroizing::new(Vec::new());
    if !unsafe { read_ascii(env, hex, &mut raw)? } {
        // Not a string, or not ASCII: not 64 hex characters either way.
        return Err(FieldCryptError::InvalidKey(*version).into());
    }
    Ok(Key::from_hex_bytes(version, &raw)?)
}

/// `replaceKeys(versions: string[], hexKeys: string[]): void` — all or nothing.
unsafe extern "C" fn replace_keys(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([versions, keys], state) = args::<2>(env, info)?;
            let n = array_len(env, versions)?;
            if array_len(env, keys)? != n {
                return Err(Fail::Arg("versions and keys must have the same length".into()));
            }
            let mut ring = Keyring::new();
            for i in 0..n {
                let version = read_version(env, element(env, versions, i)?)?;
                let key = read_key(env, &version, element(env, keys, i)?)?;
                ring.insert(version, key);
            }
            // The old keys are dropped (and zeroized) here.
            *state.ring.borrow_mut() = ring;
            undefined(env)
        })
    }
}

/// `hasKey(version: string): boolean`
unsafe extern "C" fn has_key(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([ver], state) = args::<1>(env, info)?;
            let version = read_version(env, ver)?;
            let has = state.ring.borrow().contains(&version);
            boolean(env, has)
        })
    }
}

/// `keyVersions(): string[]`
unsafe extern "C" fn key_versions(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([], state) = args::<0>(env, info)?;
            let versions = state.ring.borrow().versions();
            let arr = new_array(env, versions.len())?;
            for (i, v) in versions.iter().enumerate() {
                check(sys::napi_set_element(env, arr, i as u32, latin1(env, v)?))?;
            }
            Ok(arr)
        })
    }
}

/// `clearKeys(): void`
unsafe extern "C" fn clear_keys(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([], state) = args::<0>(env, info)?;
            state.ring.borrow_mut().clear();
            undefined(env)
        })
    }
}

// ---------------------------------------------------------------------------
// Batches.
//
// A batch crosses N-API as one string each way: JS joins the values
// (`values.join('')`, done inside V8) and passes each value's length in
// UTF-16 units; the results come back joined, with their end offsets, and
// JS slices them apart (V8 slices share the joined string). That is two
// N-API string conversions per batch instead of two per value.
//
// A batch is all-or-nothing: the first failing value throws (or rejects)
// with its `index`. When the joined form cannot be split back into the
// values (a surrogate pair split across two values, or non-ASCII stored
// values) the call returns `undefined` and JS falls back to one call per
// value, which reports the exact error.

/// A buffer reused for value after value of a batch, wiped whole (its
/// capacity: a short value leaves the end of an earlier, longer one there)
/// with a memset when dropped. It grows with [`pool::reserve_secret`].
#[derive(Default)]
struct Secret(Vec<u8>);

impl Drop for Secret {
    fn drop(&mut self) {
        pool::wipe_capacity(&mut self.0);
    }
}

/// Byte offsets of the values in UTF-8 `bytes`, from their UTF-16 lengths;
/// `None` if a boundary falls inside a character.
fn split_points(bytes: &[u8], unit_lens: &[u32]) -> Option<Vec<usize>> {
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
fn utf16_len(text: &[u8]) -> usize {
    text.iter().filter(|&&b| (b & 0xC0) != 0x80).count() + text.iter().filter(|&&b| b >= 0xF0).count()
}

/// Results are returned in segments of whole values, each at most this long
/// (unless one value alone is longer): V8 allocates strings above 128 KiB as
/// large objects, a fresh mapping of pages each, which measured as the
/// largest cost of a batch.
const SEGMENT_BYTES: usize = 96 * 1024;

/// One segment of a batch's results: whole values back to back (in a
/// pooled buffer, wiped when it holds plaintext), and where each ends, in
/// UTF-16 units from the segment's start.
struct Segment {
    buf: pool::Buffer,
    unit_ends: Vec<u32>,
    ascii: bool,
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
struct Results {
    segments: Vec<Segment>,
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
    fn reserve(&mut self, total: usize) {
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
fn process(
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

/// A Uint32Array argument.
unsafe fn read_u32s<'a>(env: RawEnv, v: Value) -> Res<&'a [u32]> {
    let (mut kind, mut len, mut data) = (0, 0, ptr::null_mut());
    let status = unsafe {
        sys::napi_get_typedarray_info(env, v, &mut kind, &mut len, &mut data, ptr::null_mut(), ptr::null_mut())
    };
    if status != OK || kind != sys::TypedarrayType::uint32_array {
        return Err(Fail::Arg("lengths must be a Uint32Array".into()));
    }
    if len == 0 {
        return Ok(&[]);
    }
    // SAFETY: N-API returns the view's first element (4-byte aligned) and length.
    Ok(unsafe { std::slice::from_raw_parts(data as *const u32, len) })
}

/// Reads a joined batch into `buf`: `joined` is the values joined into one
/// string, or an array of such strings (consecutive runs of the values,
/// each below V8's large-object size). Returns the values' byte ends, or
/// `None` if the batch cannot be split back into its values.
unsafe fn read_joined(
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
    Ok(split_points(buf, unit_lens))
}

/// The results as JS values: an array of segments `[joined, ends]`, `ends` a
/// Uint32Array of each value's end within `joined`, in UTF-16 units.
///
/// Where Node has external strings, ASCII segments of SEGMENT_EXTERNAL_MIN
/// and more are external: V8 reads the segment's buffer in place, with no
/// copy on the JS thread, and a collection has only a small header to move
/// (copied 96 KiB segments, which live as long as any of their values, were
/// about half of a 100,000-value batch). V8 keeps external strings in its
/// old generation, so they are freed by full collections only; the buffer
/// then goes back to the pool, wiped first if it held plaintext.
unsafe fn write_results(env: RawEnv, state: &State, results: &mut Results) -> Res<Value> {
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

/// `encryptJoined(joined, lens, version)` / `decryptJoined(joined, lens)`:
/// `[results, ends]`, or `undefined` when JS must go value by value.
unsafe fn sync_batch(env: RawEnv, info: sys::napi_callback_info, encrypt: bool) -> Value {
    unsafe {
        run(env, || {
            let ([joined, lens, ver], state) = args::<3>(env, info)?;
            let version = if encrypt { Some(read_version(env, ver)?) } else { None };
            let ring = state.ring.borrow();
            if let Some(v) = version {
                ring.get(&v)?;
            }
            let mut input = Scratch::take(&state.input);
            let Some(ends) = read_joined(env, joined, lens, encrypt, SCAN_ABOVE_SINGLE, &mut input)? else {
                return undefined(env);
            };
            let mut results = Results::default();
            process(&ring, version, &input, &ends, &mut results, None).map_err(|(i, e)| Fail::At(i, e))?;
            write_results(env, state, &mut results)
        })
    }
}

unsafe extern "C" fn encrypt_joined(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe { sync_batch(env, info, true) }
}

unsafe extern "C" fn decrypt_joined(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe { sync_batch(env, info, false) }
}

/// How many values a pool thread processes between offers of its core
/// (`sched_yield`, about every 40 us). With the pool's threads on every
/// core, the JS thread and V8's garbage-collection helpers otherwise wait
/// for a time slice when they wake. Interleaved A/B over 21 rounds of
/// 100,000 values: the max event-loop delay of an async batch went from
/// 3.7 ms median (7.6 worst) to 3.1 (4.9) encrypting and from 5.8 (9.8) to
/// 5.1 (8.1) decrypting, throughput within noise (a system call per 128
/// values).
const POOL_YIELD_EVERY: usize = 128;

/// An async batch: input read on the JS thread, crypto on the libuv thread
/// pool, results turned into strings back on the JS thread.
struct AsyncBatch {
    /// The addon's state, for turning the results into strings. It lives
    /// until the environment's cleanup hooks run, after the last completion.
    state: *const State,
    /// A snapshot of the keys (Arc clones): later keyring changes do not
    /// affect a batch already started.
    ring: Keyring,
    version: Option<Version>,
    input: pool::Buffer,
    ends: Vec<usize>,
    results: Results,
    result: Option<Result<(), (usize, FieldCryptError)>>,
    deferred: sys::napi_deferred,
    work: sys::napi_async_work,
}

unsafe extern "C" fn batch_execute(_env: RawEnv, data: *mut c_void) {
    // SAFETY: `data` is the Box<AsyncBatch> leaked in `async_batch`; only this
    // pool thread touches it until `batch_complete`.
    let batch = unsafe { &mut *(data as *mut AsyncBatch) };
    let b = &mut *batch;
    b.result = Some(process(&b.ring, b.version, &b.input.bytes, &b.ends, &mut b.results, Some(POOL_YIELD_EVERY)));
    // The input goes back to the pool here, not on the JS thread: encrypting,
    // it is plaintext, wiped with a memset first.
    drop(std::mem::take(&mut b.input));
}

unsafe extern "C" fn batch_complete(env: RawEnv, status: sys::napi_status, data: *mut c_void) {
    // SAFETY: reclaims the Box leaked in `async_batch`; the pool is done with it.
    let mut batch = unsafe { Box::from_raw(data as *mut AsyncBatch) };
    unsafe { sys::napi_delete_async_work(env, batch.work) };
    let settled = match (status, &batch.result) {
        // SAFETY: see `AsyncBatch::state`; the JS thread is the only one touching it.
        (OK, Some(Ok(()))) => unsafe { write_results(env, &*batch.state, &mut batch.results) }.map(|v| (true, v)),
        (OK, Some(Err((i, e)))) => unsafe { error_value(env, Fail::At(*i, e.clone())) }.map(|v| (false, v)),
        _ => Err(Fail::Napi),
    };
    unsafe {
        match settled {
            Ok((true, v)) => sys::napi_resolve_deferred(env, batch.deferred, v),
            Ok((false, v)) => sys::napi_reject_deferred(env, batch.deferred, v),
            Err(_) => {
                let mut pending = false;
                sys::napi_is_exception_pending(env, &mut pending);
                let mut err = ptr::null_mut();
                if pending {
                    sys::napi_get_and_clear_last_exception(env, &mut err);
                } else {
                    let msg = js_string(env, "fieldcrypt: batch failed in N-API").unwrap_or(ptr::null_mut());
                    sys::napi_create_error(env, ptr::null_mut(), msg, &mut err);
                }
                sys::napi_reject_deferred(env, batch.deferred, err)
            }
        };
    }
}

/// `encryptJoinedAsync(joined, lens, version)` / `decryptJoinedAsync(joined, lens)`:
/// a Promise of the results' segments (as [`write_results`]), or `undefined`
/// (synchronously) when JS must go value by value.
unsafe fn async_batch(env: RawEnv, info: sys::napi_callback_info, encrypt: bool) -> Value {
    unsafe {
        run(env, || {
            let ([joined, lens, ver], state) = args::<3>(env, info)?;
            let version = if encrypt { Some(read_version(env, ver)?) } else { None };
            // Fail fast, synchronously, on a missing write key.
            if let Some(v) = version {
                state.ring.borrow().get(&v)?;
            }
            let units: usize = read_u32s(env, lens)?.iter().map(|&u| u as usize).sum();
            let mut input = pool::Buffer::take(units + 1, encrypt);
            let Some(ends) = read_joined(env, joined, lens, encrypt, SCAN_ABOVE_BATCH, &mut input.bytes)? else {
                return undefined(env);
            };
            let mut results = Results::default();
            // Stored values are 2x+69 bytes; plaintexts at most half.
            let n = ends.len();
            results.reserve(if encrypt {
                input.bytes.len() * 2 + n * format::stored_len(0)
            } else {
                input.bytes.len() / 2
            });
            let mut deferred = ptr::null_mut();
            let mut promise = ptr::null_mut();
            check(sys::napi_create_promise(env, &mut deferred, &mut promise))?;
            let batch = Box::into_raw(Box::new(AsyncBatch {
                state: state as *const State,
                ring: state.ring.borrow().clone(),
                version,
                input,
                ends,
                results,
                result: None,
                deferred,
                work: ptr::null_mut(),
            }));
            let name = js_string(env, "fieldcrypt.batch")?;
            let status = sys::napi_create_async_work(
                env,
                ptr::null_mut(),
                name,
                Some(batch_execute),
                Some(batch_complete),
                batch.cast(),
                &mut (*batch).work,
            );
            if status != OK || sys::napi_queue_async_work(env, (*batch).work) != OK {
                let batch = Box::from_raw(batch);
                if !batch.work.is_null() {
                    sys::napi_delete_async_work(env, batch.work);
                }
                return Err(Fail::Napi);
            }
            Ok(promise)
        })
    }
}

unsafe extern "C" fn encrypt_joined_async(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe { async_batch(env, info, true) }
}

unsafe extern "C" fn decrypt_joined_async(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe { async_batch(env, info, false) }
}

/// `cpuSupportsAccelerated(): boolean` — whether this CPU (and OS) has every
/// feature the accelerated build is compiled for: x86-64-v3 plus AES-NI and
/// PCLMULQDQ. Always false off x86-64.
unsafe extern "C" fn cpu_supports_accelerated(env: RawEnv, _info: sys::napi_callback_info) -> Value {
    unsafe { run(env, || boolean(env, accelerated_cpu())) }
}

#[cfg(target_arch = "x86_64")]
fn accelerated_cpu() -> bool {
    use std::arch::is_x86_feature_detected as has;
    // x86-64-v3 (rustc's definition) minus lahfsahf, which every x86-64-v2
    // CPU has and std cannot query, plus the two crypto extensions.
    has!("cmpxchg16b")
        && has!("popcnt")
        && has!("sse3")
        && has!("ssse3")
        && has!("sse4.1")
        && has!("sse4.2")
        && has!("avx")
        && has!("avx2")
        && has!("bmi1")
        && has!("bmi2")
        && has!("f16c")
        && has!("fma")
        && has!("lzcnt")
        && has!("movbe")
        && has!("xsave")
        && has!("aes")
        && has!("pclmulqdq")
}

#[cfg(not(target_arch = "x86_64"))]
fn accelerated_cpu() -> bool {
    false
}

// ---------------------------------------------------------------------------
// Registration.

type Callback = unsafe extern "C" fn(RawEnv, sys::napi_callback_info) -> Value;

const EXPORTS: &[(&str, Callback)] = &[
    ("encrypt", encrypt),
    ("decrypt", decrypt),
    ("encryptBytes", encrypt_bytes),
    ("decryptBytes", decrypt_bytes),
    ("reEncrypt", re_encrypt),
    ("isWellFormed", is_well_formed),
    ("keyVersionOf", key_version_of),
    ("encryptJoined", encrypt_joined),
    ("decryptJoined", decrypt_joined),
    ("encryptJoinedAsync", encrypt_joined_async),
    ("decryptJoinedAsync", decrypt_joined_async),
    ("addKey", add_key),
    ("replaceKeys", replace_keys),
    ("hasKey", has_key),
    ("keyVersions", key_versions),
    ("clearKeys", clear_keys),
    ("cpuSupportsAccelerated", cpu_supports_accelerated),
];

unsafe extern "C" fn free_state(data: *mut c_void) {
    // SAFETY: the Box leaked in `init`; the env is shutting down, no JS runs.
    drop(unsafe { Box::from_raw(data as *mut State) });
}

/// `node_api_create_external_string_latin1` exists from Node 18.18 and 20.4.
fn has_external_strings(env: RawEnv) -> bool {
    let mut v: *const sys::napi_node_version = ptr::null();
    if unsafe { sys::napi_get_node_version(env, &mut v) } != OK || v.is_null() {
        return false;
    }
    // SAFETY: N-API returns a pointer to a static struct.
    let (major, minor) = unsafe { ((*v).major, (*v).minor) };
    match major {
        0..=17 => false,
        18 => minor >= 18,
        19 => false,
        20 => minor >= 4,
        _ => true,
    }
}

#[napi(module_exports)]
pub fn init(exports: Object, env: Env) -> napi::Result<()> {
    let raw_env = env.raw();
    let state = Box::into_raw(Box::new(State {
        ring: RefCell::new(Keyring::new()),
        input: RefCell::new(Vec::new()),
        output: RefCell::new(Vec::new()),
        text16: RefCell::new(Vec::new()),
        external_strings: has_external_strings(raw_env),
    }));
    let fail = |what: &str| napi::Error::from_reason(format!("fieldcrypt: could not {what}"));
    unsafe {
        if sys::napi_add_env_cleanup_hook(raw_env, Some(free_state), state.cast()) != OK {
            drop(Box::from_raw(state));
            return Err(fail("register cleanup"));
        }
        for (name, cb) in EXPORTS {
            let mut f = ptr::null_mut();
            if sys::napi_create_function(
                raw_env,
                name.as_ptr().cast(),
                name.len() as isize,
                Some(*cb),
                state.cast(),
                &mut f,
            ) != OK
                || set_named(raw_env, exports.raw(), name, f).is_err()
            {
                return Err(fail("export functions"));
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
