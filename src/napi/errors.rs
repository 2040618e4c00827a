//! Why a callback failed, and how that reaches JS.
//!
//! Failures are thrown as JS errors whose `code` is one of the stable codes
//! of [`FieldCryptError::code`] (`src/error.rs`), or [`INVALID_ARGUMENT`] /
//! [`INTERNAL`] from here; `lib/core/errors.js` lists the codes JS knows.
//! Key errors also carry `keyVersion`, batch errors `index`. Messages never
//! contain a value or key material.
//!
//! Invariant: a callback body that fails returns `NULL` after throwing
//! exactly once ([`throw`]); a panic never unwinds into N-API ([`run`]).

use std::ffi::CStr;
use std::ptr;

use napi::sys;

use super::io::{js_string, set_named};
use super::{RawEnv, Value, OK};
use crate::error::{self, FieldCryptError};

/// The code of a `TypeError` for an argument of the wrong type
/// (`codes.INVALID_ARGUMENT` in `lib/core/errors.js`).
pub(super) const INVALID_ARGUMENT: &str = "ERR_FIELDCRYPT_INVALID_ARGUMENT";

/// The code of the error a panic (a bug) becomes.
pub(super) const INTERNAL: &CStr = c"ERR_FIELDCRYPT_INTERNAL";

/// Why a call failed.
pub(super) enum Fail {
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

pub(super) type Res<T> = Result<T, Fail>;

pub(super) fn check(status: sys::napi_status) -> Res<()> {
    if status == OK {
        Ok(())
    } else {
        Err(Fail::Napi)
    }
}

/// Builds the JS error object for a failure.
pub(super) unsafe fn error_value(env: RawEnv, fail: Fail) -> Res<Value> {
    let (err, index) = match fail {
        Fail::Crypt(e) => (e, None),
        Fail::At(i, e) => (e, Some(i)),
        Fail::Arg(msg) => {
            let code = unsafe { js_string(env, INVALID_ARGUMENT)? };
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
    if let FieldCryptError::KeyNotFound(v)
    | FieldCryptError::AuthenticationFailed(v)
    | FieldCryptError::IndexKeyNotFound(v) = &err
    {
        let v = unsafe { js_string(env, error::version_str(v))? };
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
pub(super) unsafe fn throw(env: RawEnv, fail: Fail) -> Value {
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
pub(super) unsafe fn run(env: RawEnv, body: impl FnOnce() -> Res<Value>) -> Value {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(v)) => v,
        Ok(Err(fail)) => unsafe { throw(env, fail) },
        Err(_) => unsafe {
            sys::napi_throw_error(
                env,
                INTERNAL.as_ptr(),
                c"fieldcrypt: internal error (a bug; please report it)".as_ptr(),
            );
            ptr::null_mut()
        },
    }
}
