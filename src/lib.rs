//! fieldcrypt: field-level AES-256-GCM encryption for Mongoose, as a Node addon.
//!
//! * [`error`]    – the error enum and its stable codes
//! * [`format`]   – strict parsing and writing of `VV:IV:TAG:CT`
//! * [`keyring`]  – key versions and zeroized key material
//! * [`index_keys`] – the index keys of blind indexes, a key ring of their own
//! * [`blind_index`] – blind index values: HKDF per path, HMAC-SHA256 per value
//! * [`cipher`]   – AES-256-GCM with 16-byte IVs
//! * [`clmul`]    – GHASH with carry-less multiplication (PCLMULQDQ, VPCLMULQDQ)
//! * [`pool`]     – reused buffers for batch results
//! * `work`       – the seal and open steps every call shares
//! * `batch`      – splitting joined batches, their crypto, result segments
//! * `handoff`    – who owns a buffer handed to V8 as an external string
//! * `limits`     – result sizes that decide external strings (JS mirrors some)
//! * `usage`      – encryptions per key version (SP 800-38D's 2^32 limit)
//! * [`wrap`]     – key vault data keys: generation, wrapping under a local master key
//! * `napi`       – the N-API surface; the only module that knows napi
//!
//! Everything but `napi` is plain Rust, covered by `cargo test`.

pub mod blind_index;
pub mod cipher;
pub mod clmul;
pub mod error;
pub mod format;
pub mod index_keys;
pub mod iv;
pub mod keyring;
pub mod pool;
pub mod wrap;

mod batch;
mod handoff;
mod limits;
mod napi;
mod usage;
mod work;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod vectors;

#[cfg(any(test, feature = "fuzzing"))]
pub mod reference;
