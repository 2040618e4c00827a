'use strict';

/**
 * Sync batches: encryptMany and decryptMany. The values are split into
 * pieces; each piece goes to the addon joined (one call for many values) or,
 * for long values, value by value through the single calls (oneByOnePiece).
 */

const native = require('./native').load();
const { withKeys, versionOption } = require('./calls');
const { resultBytes, SINGLE_EXTERNAL_STORED, SINGLE_EXTERNAL_TEXT } = require('./limits');
const { checkValues, notAString, oneByOne, assemble, rebase, bindingOf } = require('./batch-results');

/**
 * Long batches go in pieces of at most PIECE_UNITS UTF-16 units (and
 * PIECE_VALUES values): each joined piece then stays below V8's 128 KiB
 * large-object size even as a two-byte string, so allocating it is a bump
 * in the young generation instead of a fresh mapping of pages per call.
 * The addon returns each piece's results in segments of whole values, also
 * below that size.
 */
const PIECE_UNITS = 60 * 1024;
const PIECE_VALUES = 4096;

/**
 * Which form a sync batch's pieces take. A joined piece saves a JS-to-native
 * call per value and pays for a join and for copies into and out of its
 * segments, which grow with the values' length; but its results are external
 * strings, while a loop's are copies on V8's heap (below the external
 * thresholds of lib/core/limits.js), which young-generation collections copy
 * again while the batch holds them all.
 *
 * So a piece whose values average ONE_BY_ONE_FROM UTF-16 units or more goes
 * value by value, unless the whole batch's results come to
 * JOINED_RESULTS_FROM bytes or more and single calls would return them on
 * the heap. The thresholds come from side-by-side measurements (see
 * bench/HISTORY.md, "sync batches").
 */
const ONE_BY_ONE_FROM = 400;
/** About half of V8's default young generation (a 16 MiB semi-space on 64-bit). */
const JOINED_RESULTS_FROM = 8 * 1024 * 1024;

/**
 * Checks every value is a string and splits `values` into pieces: returns
 * the values' lengths, the [start, end) bounds of each piece and each
 * piece's total length in UTF-16 units.
 */
function pieces(values, fn, encrypting) {
  const lens = new Uint32Array(values.length);
  const bounds = [];
  const totals = [];
  let start = 0;
  let units = 0;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== 'string') throw notAString(v, i, fn, encrypting);
    const len = v.length;
    lens[i] = len;
    if (i > start && (units + len > PIECE_UNITS || i - start >= PIECE_VALUES)) {
      bounds.push(start, i);
      totals.push(units);
      start = i;
      units = 0;
    }
    units += len;
  }
  if (start < values.length) {
    bounds.push(start, values.length);
    totals.push(units);
  }
  return { lens, bounds, totals };
}

/** The joined form of values[start, end): [joined, lengths, piece]. */
function join(values, lens, start, end) {
  const piece = start === 0 && end === values.length ? values : values.slice(start, end);
  return [piece.join(''), lens.subarray(start, end), piece];
}

function oneByOnePiece(encrypting, units, count, batchResults) {
  if (units < ONE_BY_ONE_FROM * count) return false;
  const each = resultBytes(encrypting, units, count) / count;
  const singleExternal = each >= (encrypting ? SINGLE_EXTERNAL_STORED : SINGLE_EXTERNAL_TEXT);
  return singleExternal || batchResults < JOINED_RESULTS_FROM;
}

function manySync(native_, values, version, binding, fn, encrypting) {
  checkValues(values, fn);
  const { lens: allLens, bounds, totals } = pieces(values, fn, encrypting);
  let units = 0;
  for (const t of totals) units += t;
  const batchResults = resultBytes(encrypting, units, values.length);
  const done = []; // see assemble
  for (let b = 0; b < bounds.length; b += 2) {
    const start = bounds[b];
    const end = bounds[b + 1];
    try {
      if (oneByOnePiece(encrypting, totals[b >> 1], end - start, batchResults)) {
        done.push(start, null, oneByOne(encrypting, values.slice(start, end), version, binding));
        continue;
      }
      const [joined, lens, piece] = join(values, allLens, start, end);
      const result = withKeys(native_, joined, lens, version, binding.context, binding.allowUnbound);
      if (result === undefined) done.push(start, null, oneByOne(encrypting, piece, version, binding));
      else done.push(start, result, null);
    } catch (err) {
      throw rebase(err, start);
    }
  }
  return assemble(values.length, done);
}

/**
 * Encrypts every string of `values`: short values in a few native calls, long
 * ones a call each unless the batch is large (see oneByOnePiece). All or
 * nothing; errors carry `index`. `options.context` binds every value to the
 * same context.
 */
function encryptMany(values, options) {
  const version = versionOption(options, 'encryptMany');
  return manySync(native.encryptJoined, values, version, bindingOf(options, 'encryptMany', true), 'encryptMany', true);
}

/** Decrypts every stored value of `values`, as encryptMany. All or nothing; errors carry `index`. */
function decryptMany(values, options) {
  const binding = bindingOf(options, 'decryptMany', false);
  return manySync(native.decryptJoined, values, undefined, binding, 'decryptMany', false);
}

module.exports = { encryptMany, decryptMany };
