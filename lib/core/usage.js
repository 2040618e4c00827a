'use strict';

/**
 * Key usage: keyUsage() reports how many encryptions each key version has
 * done in this process, and onKeyUsage() warns when a version crosses a
 * threshold.
 *
 * Why: NIST SP 800-38D §8.3 allows at most 2^32 encryptions under one key
 * when the IVs are not 96 bits long (fieldcrypt's are 16 bytes, turned into
 * the pre-counter block by GHASH). Past that, rotate to a new key version.
 *
 * Invariants:
 * - The addon counts (src/usage.rs): every encryption once its key is found
 *   (single values, Buffers, reEncrypt, every value of a batch), never a
 *   decryption. Counts are per version, not per key, so they survive
 *   configureKeys()/reloadKeys(); they only grow; they are per process
 *   (shared by worker threads) and start at zero in every process.
 * - Nothing here runs on the encrypt path: a hook reads the counts on its own
 *   unref'd timer (it never keeps the process alive) or when check() is
 *   called, one native call for every version.
 * - A hook calls its handler at most once per key version: the first check
 *   that finds the count at or above the threshold. A handler that throws
 *   does not stop the check; its error is reported with process.emitWarning.
 */

const native = require('./native').load();
const { codes, FieldCryptError, adopt, describeType } = require('./errors');

/** The most encryptions under one key with 16-byte IVs (SP 800-38D §8.3). */
const LIMIT = 2 ** 32;
/** Half the limit: time to rotate, with as many encryptions again to spare. */
const DEFAULT_THRESHOLD = 2 ** 31;
const DEFAULT_INTERVAL_MS = 60_000;
/** setInterval's longest delay. */
const MAX_INTERVAL_MS = 2 ** 31 - 1;

const OPTIONS = ['handler', 'threshold', 'intervalMs'];

/** The addon's counts: { '01': n, … }, the versions with any, ascending. */
function counts() {
  try {
    return native.keyUsage();
  } catch (err) {
    throw adopt(err);
  }
}

/** Encryptions per key version in this process: { '01': { encryptions: n }, … }. */
function keyUsage() {
  const raw = counts();
  const usage = {};
  for (const version of Object.keys(raw)) usage[version] = { encryptions: raw[version] };
  return usage;
}

function invalid(message) {
  return new FieldCryptError(codes.INVALID_ARGUMENT, `onKeyUsage() ${message}`);
}

/** An integer option in [min, max], or its default when undefined. */
function integerOption(options, name, min, max, fallback, range) {
  const value = options[name];
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min || value > max) {
    const got = typeof value === 'number' ? String(value) : describeType(value);
    throw invalid(`option ${name} must be an integer from ${range}, got ${got}`);
  }
  return value;
}

/**
 * Calls `handler({ version, encryptions, threshold, limit })` once for each
 * key version whose count reaches `threshold` (default 2^31), checking every
 * `intervalMs` (default 60 s) and on `check()`. Returns { check, remove }.
 */
function onKeyUsage(options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw invalid(`expects an options object { handler, threshold?, intervalMs? }, got ${describeType(options)}`);
  }
  for (const name of Object.keys(options)) {
    if (!OPTIONS.includes(name)) throw invalid(`has no option "${name}" (options: ${OPTIONS.join(', ')})`);
  }
  const { handler } = options;
  if (typeof handler !== 'function') throw invalid(`option handler must be a function, got ${describeType(handler)}`);
  const threshold = integerOption(options, 'threshold', 1, LIMIT, DEFAULT_THRESHOLD, '1 to 2 ** 32');
  const intervalMs = integerOption(options, 'intervalMs', 1, MAX_INTERVAL_MS, DEFAULT_INTERVAL_MS, '1 to 2 ** 31 - 1');

  const reported = new Set();
  let timer = null;

  function check() {
    if (timer === null) return;
    const raw = counts();
    for (const version of Object.keys(raw)) {
      const encryptions = raw[version];
      if (encryptions < threshold || reported.has(version)) continue;
      reported.add(version);
      try {
        handler({ version, encryptions, threshold, limit: LIMIT });
      } catch (err) {
        process.emitWarning(err instanceof Error ? err : `onKeyUsage() handler threw ${describeType(err)}`);
      }
    }
  }

  function remove() {
    if (timer !== null) clearInterval(timer);
    timer = null;
  }

  timer = setInterval(check, intervalMs);
  timer.unref();
  return { check, remove };
}

module.exports = { keyUsage, onKeyUsage, LIMIT, DEFAULT_THRESHOLD };
