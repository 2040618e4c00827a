//! Single-value calls: `encrypt`, `encryptBytes`, `decrypt`,
//! `decryptBytes`, `reEncrypt`, `isWellFormed`, `keyVersionOf`.
//!
//! Invariants: plaintext read from JS or decrypted goes only into the
//! state's scratch buffers ([`Scratch`], wiped on drop unless encrypted in
//! place) or into a pooled buffer marked secret (wiped when given back, or
//! by the external string's finalizer). A key is looked up before any
//! plaintext is read, so a missing key fails before touching the value.

use std::cell::RefCell;

use napi::sys;

use super::errors::{run, Fail, Res};
use super::external::external_latin1;
use super::io::{
    boolean, latin1, read_ascii, read_bytes, read_context, read_flag, read_utf8, read_version, undefined, utf16_string,
    write_bytes, SCAN_ABOVE_SINGLE,
};
use super::state::{args, Scratch, State};
use super::{RawEnv, Value};
use crate::cipher;
use crate::error::{FieldCryptError, Version};
use crate::format;
use crate::keyring::Keyring;
use crate::limits::{EXTERNAL_MIN, MAX_STRING_LEN, TEXT_EXTERNAL_MIN};
use crate::pool;
use crate::usage;
use crate::work::{open, seal, Context};

/// Encrypts `plaintext` in place and returns the stored value as a JS
/// string: small results go through the output scratch buffer and are
/// copied by V8, large ones are handed over as external strings.
unsafe fn finish_seal(
    env: RawEnv,
    state: &State,
    out_cell: &RefCell<Vec<u8>>,
    ring: &Keyring,
    version: &Version,
    context: Context,
    plaintext: &mut [u8],
) -> Res<Value> {
    let len = format::stored_len(plaintext.len());
    if len > MAX_STRING_LEN {
        return Err(FieldCryptError::TooLarge.into());
    }
    usage::add(version, 1); // the caller found the key (src/usage.rs)
    if state.external_strings && len >= EXTERNAL_MIN {
        let mut stored = pool::take(len);
        seal(ring, version, context, plaintext, &mut stored)?;
        return unsafe { external_latin1(env, stored, false) };
    }
    let mut stored = Scratch::take(out_cell);
    seal(ring, version, context, plaintext, &mut stored)?;
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

/// The context arguments of a decrypting call: `(context?, allowUnbound?)`,
/// the context read into `buf`.
unsafe fn open_context<'a>(env: RawEnv, aad: Value, allow: Value, buf: &'a mut Vec<u8>) -> Res<Context<'a>> {
    unsafe {
        read_context(env, aad, buf)?;
        Ok(Context { aad: buf, allow_unbound: read_flag(env, allow)? })
    }
}

/// The body of `encrypt` and `encryptBytes`: `(plaintext, version,
/// context?)`, the plaintext copied into the input scratch buffer by `read`.
unsafe fn seal_call(
    env: RawEnv,
    info: sys::napi_callback_info,
    read: impl FnOnce(Value, &mut Vec<u8>) -> Res<()>,
) -> Value {
    unsafe {
        run(env, || {
            let ([pt, ver, aad], state) = args::<3>(env, info)?;
            let version = read_version(env, ver)?;
            let ring = state.ring.borrow();
            ring.get(&version)?;
            let mut aad_buf = state.aad.borrow_mut();
            read_context(env, aad, &mut aad_buf)?;
            let context = Context { aad: &aad_buf, allow_unbound: false };
            let mut plaintext = Scratch::take(&state.input);
            read(pt, &mut plaintext)?;
            let stored = finish_seal(env, state, &state.output, &ring, &version, context, &mut plaintext)?;
            plaintext.encrypted();
            Ok(stored)
        })
    }
}

/// `encrypt(plaintext: string, version: string, context?: string): string`
pub(super) unsafe extern "C" fn encrypt(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe { seal_call(env, info, |pt, buf| read_utf8(env, pt, "plaintext", buf, SCAN_ABOVE_SINGLE)) }
}

/// `encryptBytes(plaintext: Uint8Array, version: string, context?: string): string`
pub(super) unsafe extern "C" fn encrypt_bytes(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        seal_call(env, info, |pt, buf| {
            buf.extend_from_slice(read_bytes(env, pt)?);
            Ok(())
        })
    }
}

/// `decrypt(stored: string, context?: string, allowUnbound?: boolean): string`
///
/// Text of TEXT_EXTERNAL_MIN bytes and more is decrypted straight into a
/// pooled buffer, which V8 then reads in place as an external string when
/// the text is ASCII (wiped when the string is collected; on every other
/// path, when the buffer is given back): not into the scratch buffer and
/// then copied, which would cost a copy and a wipe of the whole text more.
pub(super) unsafe extern "C" fn decrypt(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([data, aad, allow], state) = args::<3>(env, info)?;
            let mut aad_buf = state.aad.borrow_mut();
            let context = open_context(env, aad, allow, &mut aad_buf)?;
            let mut raw = Scratch::take(&state.input);
            let ascii = read_ascii(env, data, &mut raw)?;
            let text_len = raw.len().saturating_sub(format::stored_len(0)) / 2;
            if !(state.external_strings && text_len >= TEXT_EXTERNAL_MIN) {
                let mut text = Scratch::take(&state.output);
                open(&state.ring.borrow(), &raw, ascii, context, &mut text)?;
                return finish_text(env, state, &text);
            }
            // Wiped when given back, on every path but the external string's
            // (whose finalizer wipes it).
            let mut text = pool::Buffer::take(text_len, true);
            open(&state.ring.borrow(), &raw, ascii, context, &mut text.bytes)?;
            if text.bytes.is_ascii() {
                external_latin1(env, std::mem::take(&mut text.bytes), true)
            } else {
                finish_text(env, state, &text.bytes)
            }
        })
    }
}

/// `decryptBytes(stored: string, target: Uint8Array, context?: string,
/// allowUnbound?: boolean): undefined`: decrypts
/// into `target`, which must be as long as the plaintext. JS makes it from
/// the stored value's length with `Buffer.allocUnsafe`, which slices small
/// Buffers out of Node's pool: a Buffer made here (`napi_create_buffer_copy`,
/// a fresh backing store each) would cost more than the rest of a small
/// decrypt.
pub(super) unsafe extern "C" fn decrypt_bytes(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([data, target, aad, allow], state) = args::<4>(env, info)?;
            let mut aad_buf = state.aad.borrow_mut();
            let context = open_context(env, aad, allow, &mut aad_buf)?;
            let mut raw = Scratch::take(&state.input);
            let ascii = read_ascii(env, data, &mut raw)?;
            // The target is read last: reading the other arguments can run
            // JavaScript (a string's conversion cannot, but keep the rule).
            let target = write_bytes(env, target)?;
            let mut plaintext = Scratch::take(&state.output);
            open(&state.ring.borrow(), &raw, ascii, context, &mut plaintext)?;
            if plaintext.len() != target.len() {
                return Err(Fail::Arg("the target must be exactly as long as the plaintext".into()));
            }
            target.copy_from_slice(&plaintext);
            undefined(env)
        })
    }
}

/// `reEncrypt(stored: string, version: string, context?: string,
/// fromContext?: string, allowUnbound?: boolean): string`: opens the value
/// under `fromContext` and seals it under `context` (to bind an unbound
/// value, or move a value, inside the addon); the plaintext never leaves
/// this function.
pub(super) unsafe extern "C" fn re_encrypt(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([data, ver, aad, from, allow], state) = args::<5>(env, info)?;
            let version = read_version(env, ver)?;
            let ring = state.ring.borrow();
            ring.get(&version)?;
            let mut to_buf = state.aad.borrow_mut();
            read_context(env, aad, &mut to_buf)?;
            let mut from_buf = state.aad_from.borrow_mut();
            let from = open_context(env, from, allow, &mut from_buf)?;
            let mut raw = Scratch::take(&state.input);
            let ascii = read_ascii(env, data, &mut raw)?;
            let mut plain = Scratch::take(&state.output);
            open(&ring, &raw, ascii, from, &mut plain)?;
            drop(raw);
            let to = Context { aad: &to_buf, allow_unbound: false };
            finish_seal(env, state, &state.input, &ring, &version, to, &mut plain)
        })
    }
}

/// `isWellFormed(value: string): boolean`
pub(super) unsafe extern "C" fn is_well_formed(env: RawEnv, info: sys::napi_callback_info) -> Value {
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
pub(super) unsafe extern "C" fn key_version_of(env: RawEnv, info: sys::napi_callback_info) -> Value {
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
