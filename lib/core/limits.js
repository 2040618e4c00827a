'use strict';

/**
 * Sizes that JavaScript and the Rust addon must agree on. Each constant names
 * the Rust item it mirrors; __test__/shared-facts.test.js parses the Rust
 * source and fails when a value here differs from it.
 */

/** `VV:IV:TAG:` before the ciphertext's hex (src/format.rs HEADER_LEN): 2 + 1 + 32 + 1 + 32 + 1 characters. */
const STORED_HEADER = 69;

/**
 * Single-call results at least this long come back as external strings
 * (src/limits.rs EXTERNAL_MIN for stored values, TEXT_EXTERNAL_MIN for
 * decrypted text); shorter ones are copies on V8's heap. The sync batches
 * choose their form with this in mind (lib/core/batch.js).
 */
const SINGLE_EXTERNAL_STORED = 32 * 1024;
const SINGLE_EXTERNAL_TEXT = 128 * 1024;

/**
 * Result bytes for `units` UTF-16 units of input in `count` values (ASCII:
 * units = bytes): a stored value is twice its plaintext plus the header, and
 * a plaintext half its ciphertext's hex.
 */
function resultBytes(encrypting, units, count) {
  return encrypting ? 2 * units + STORED_HEADER * count : (units - STORED_HEADER * count) / 2;
}

module.exports = { STORED_HEADER, SINGLE_EXTERNAL_STORED, SINGLE_EXTERNAL_TEXT, resultBytes };
