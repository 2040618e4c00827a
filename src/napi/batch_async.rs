//! Async batches (`encryptJoinedAsync`, `decryptJoinedAsync`): input read
//! on the JS thread, crypto on the libuv thread pool, results turned into
//! strings back on the JS thread, and the Promise settled there.
//!
//! Ownership and safety invariants:
//!
//! * the [`AsyncBatch`] is a Box leaked when the work is queued; between
//!   `napi_queue_async_work` and `batch_complete` only the pool thread
//!   running `batch_execute` touches it, and `batch_complete` (on the JS
//!   thread) reclaims it exactly once. If queueing fails, it is reclaimed at
//!   once and no callback runs;
//! * the pool thread sees no napi value and no [`State`]: only a snapshot of
//!   the keys (`Arc` clones), the input (a pooled buffer, wiped when given
//!   back if it is plaintext) and the results it fills;
//! * `state` is only dereferenced in `batch_complete`, on the JS thread; it
//!   lives until the env cleanup hooks run, after the last completion.

use std::ffi::c_void;
use std::ptr;

use napi::sys;

use super::batch::{read_joined, write_results};
use super::errors::{check, error_value, run, Fail};
use super::io::{js_string, read_context, read_flag, read_u32s, read_version, undefined, SCAN_ABOVE_BATCH};
use super::state::{args, State};
use super::{RawEnv, Value, OK};
use crate::batch::{process, Results, POOL_YIELD_EVERY};
use crate::error::{FieldCryptError, Version};
use crate::format;
use crate::keyring::Keyring;
use crate::pool;
use crate::work::Context;

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
    /// The batch's context (AES-GCM additional data), owned: the pool
    /// thread reads it.
    aad: Vec<u8>,
    allow_unbound: bool,
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
    let context = Context { aad: &b.aad, allow_unbound: b.allow_unbound };
    b.result =
        Some(process(&b.ring, b.version, context, &b.input.bytes, &b.ends, &mut b.results, Some(POOL_YIELD_EVERY)));
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

/// `encryptJoinedAsync(joined, lens, version, context?)` /
/// `decryptJoinedAsync(joined, lens, undefined, context?, allowUnbound?)`:
/// a Promise of the results' segments (as [`write_results`]), or `undefined`
/// (synchronously) when JS must go value by value.
unsafe fn async_batch(env: RawEnv, info: sys::napi_callback_info, encrypt: bool) -> Value {
    unsafe {
        run(env, || {
            let ([joined, lens, ver, aad_arg, allow], state) = args::<5>(env, info)?;
            let version = if encrypt { Some(read_version(env, ver)?) } else { None };
            // Fail fast, synchronously, on a missing write key.
            if let Some(v) = version {
                state.ring.borrow().get(&v)?;
            }
            let mut aad = Vec::new();
            read_context(env, aad_arg, &mut aad)?;
            let allow_unbound = !encrypt && read_flag(env, allow)?;
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
                aad,
                allow_unbound,
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

pub(super) unsafe extern "C" fn encrypt_joined_async(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe { async_batch(env, info, true) }
}

pub(super) unsafe extern "C" fn decrypt_joined_async(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe { async_batch(env, info, false) }
}
