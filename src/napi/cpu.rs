//! `cpuSupportsAccelerated()`: whether this CPU can run the x86-64-v3
//! build, so that `lib/core/native.js` loads it instead of the portable one;
//! and `ivSourceCosts(count)`, what IVs cost from each source, for
//! `npm run bench` (not part of the package's API).
//!
//! Invariant: the feature list matches the flags `scripts/build-addon.js`
//! builds the accelerated addon with (`-Ctarget-cpu=x86-64-v3`,
//! `+aes,+pclmulqdq`); answering true for a CPU lacking one would load code
//! that faults with an illegal instruction.

use napi::sys;

use super::errors::{check, run};
use super::io::{boolean, new_array};
use super::state::args;
use super::{RawEnv, Value};

/// `cpuSupportsAccelerated(): boolean` — whether this CPU (and OS) has every
/// feature the accelerated build is compiled for: x86-64-v3 plus AES-NI and
/// PCLMULQDQ. Always false off x86-64.
pub(super) unsafe extern "C" fn cpu_supports_accelerated(env: RawEnv, _info: sys::napi_callback_info) -> Value {
    unsafe { run(env, || boolean(env, accelerated_cpu())) }
}

/// `ivSourceCosts(count: number): [pool, osEach, userSpace]`, nanoseconds
/// per IV (see [`crate::iv::source_costs`]).
pub(super) unsafe extern "C" fn iv_source_costs(env: RawEnv, info: sys::napi_callback_info) -> Value {
    unsafe {
        run(env, || {
            let ([count], _) = args::<1>(env, info)?;
            let mut n = 0u32;
            check(sys::napi_get_value_uint32(env, count, &mut n))?;
            let costs = crate::iv::source_costs(n.clamp(1, 10_000_000));
            let arr = new_array(env, costs.len())?;
            for (i, ns) in costs.iter().enumerate() {
                let mut v = std::ptr::null_mut();
                check(sys::napi_create_double(env, *ns, &mut v))?;
                check(sys::napi_set_element(env, arr, i as u32, v))?;
            }
            Ok(arr)
        })
    }
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
