//! External strings: one-byte strings V8 reads from our buffers in place,
//! and the finalizers that take the buffers back.
//!
//! Ownership and safety invariants:
//!
//! * a buffer handed to V8 is a `Box<Vec<u8>>` leaked as the finalizer's
//!   `hint`; from then on V8 reads it, and nothing here may touch or free
//!   it. The finalizer runs at most once, once the string is gone (when V8
//!   collects it, inside a full collection's pause, or when the environment
//!   is torn down), and only then reclaims the Box;
//! * when V8 does not take the buffer (an error, or it made its own copy),
//!   [`external_latin1_unaccounted`] reclaims the Box at once. Open
//!   question, left as it is for now: Node documents that when `copied` is
//!   set it has already called the finalizer (builds with V8's sandbox),
//!   which would reclaim the same Box a second time;
//! * a buffer that held plaintext (`secret`) is wiped before reuse: the
//!   finalizer gives it to the pool's wiping thread
//!   ([`pool::give_back_later`]), started before the first such string is
//!   created; other buffers go straight back to the [`pool`];
//! * every byte V8 holds is reported with `napi_adjust_external_memory`
//!   when the string is created (a batch's segments together) and taken
//!   back by its finalizer.

use std::ffi::{c_char, c_void};
use std::ptr;

use napi::sys;

use super::errors::{check, Res};
use super::{RawEnv, Value, OK};
use crate::pool;

/// Tells V8 how much memory external strings hold, so that it collects
/// them as promptly as strings on its own heap (it cannot see their buffers).
pub(super) unsafe fn account_external(env: RawEnv, change: i64) {
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
/// inside a full collection's pause, which wiping there would lengthen
/// (see [`pool::give_back_later`]).
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
pub(super) unsafe fn external_latin1(env: RawEnv, bytes: Vec<u8>, secret: bool) -> Res<Value> {
    let mut held = 0;
    let out = unsafe { external_latin1_unaccounted(env, bytes, secret, &mut held)? };
    unsafe { account_external(env, held) };
    Ok(out)
}

/// [`external_latin1`] without telling V8: adds the bytes V8 now holds to
/// `held`, for the caller to report once. Above V8's external-memory limit
/// every report runs a step of incremental marking on this thread, so a
/// batch reports its segments together.
pub(super) unsafe fn external_latin1_unaccounted(
    env: RawEnv,
    bytes: Vec<u8>,
    secret: bool,
    held: &mut i64,
) -> Res<Value> {
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

/// `node_api_create_external_string_latin1` exists from Node 18.18 and 20.4.
pub(super) fn has_external_strings(env: RawEnv) -> bool {
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
