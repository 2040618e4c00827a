'use strict';

/**
 * The core API: encrypt, decrypt, isEncrypted, reEncrypt, getKeyVersion, the
 * Buffer variants and the batch variants.
 *
 * Each call goes straight to the native addon. If the addon reports a
 * missing key version (`err.keyVersion`), the key is loaded from process.env
 * (environment mode) and the call is retried; this keeps key loading lazy
 * without a check on the fast path.
 */

const { types } = require('node:util');
const native = require('./native').load();
const { codes, FieldCryptError, adopt, describeType, invalidFormat } = require('./errors');
const keys = require('./keys');

/** After `err`, loads the key it reports missing; true if the call should be retried. */
function loadedMissingKey(err) {
  return err != null && err.code === codes.KEY_NOT_FOUND && keys.loadMissing(err.keyVersion);
}

/**
 * Calls `fn(a, b, c)`; each time it fails for a key that process.env can supply,
 * loads that key and calls again (at most once per key version).
 */
function withKeys(fn, a, b, c) {
  for (;;) {
    try {
      return fn(a, b, c);
    } catch (err) {
      if (!loadedMissingKey(err)) throw adopt(err);
    }
  }
}

function versionOption(options, fn) {
  if (options === undefined) return keys.currentVersion();
  const { keyVersion } = keys.checkOptions(options, fn);
  return keyVersion === undefined ? keys.currentVersion() : keys.checkVersion(keyVersion, 'options.keyVersion');
}

function checkString(value, fn) {
  if (typeof value !== 'string') {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `${fn}() expects a string, got ${describeType(value)}`);
  }
}

/**
 * Encrypts UTF-8 text into `VV:IV:TAG:CT` under the current key version, or
 * `options.keyVersion`.
 */
function encrypt(plaintext, options) {
  checkString(plaintext, 'encrypt');
  return withKeys(native.encrypt, plaintext, versionOption(options, 'encrypt'));
}

/** Decrypts a stored value back to its text. */
function decrypt(encryptedData) {
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  return withKeys(native.decrypt, encryptedData);
}

/** Encrypts binary data (Buffer or any Uint8Array) into the same stored format. */
function encryptBuffer(data, options) {
  if (!types.isUint8Array(data)) {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `encryptBuffer() expects a Buffer or Uint8Array, got ${describeType(data)}`);
  }
  return withKeys(native.encryptBytes, data, versionOption(options, 'encryptBuffer'));
}

/** `VV:IV:TAG:` before the ciphertext's hex: 2 + 1 + 32 + 1 + 32 + 1 characters. */
const STORED_HEADER = 69;

/** Decrypts a stored value to a Buffer (for values written by encryptBuffer). */
function decryptBuffer(encryptedData) {
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  // The plaintext is as long as the ciphertext, half its hex. The addon
  // decrypts into a Buffer made here: small ones come out of Node's pool,
  // much cheaper than one made in the addon (see decrypt_bytes in
  // src/napi/single.rs). A string of any other shape fails in the addon.
  const bytes = Math.max(0, Math.floor(resultBytes(false, encryptedData.length, 1)));
  const out = Buffer.allocUnsafe(bytes);
  withKeys(native.decryptBytes, encryptedData, out);
  return out;
}

/** True only for a well-formed stored value (a string in `VV:IV:TAG:CT` form). */
function isEncrypted(value) {
  return typeof value === 'string' && native.isWellFormed(value);
}

/**
 * Re-encrypts a stored value under `newKeyVersion` (for key rotation). The
 * plaintext stays inside the native addon.
 */
function reEncrypt(encryptedData, newKeyVersion) {
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  return withKeys(native.reEncrypt, encryptedData, keys.checkVersion(newKeyVersion, 'reEncrypt()'));
}

/** The two-digit key version a stored value was written with. */
function getKeyVersion(encryptedData) {
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  try {
    return native.keyVersionOf(encryptedData);
  } catch (err) {
    throw adopt(err);
  }
}

/**
 * Batches cross into the addon as one joined string plus each value's length
 * (see src/batch.rs): `join` and `slice` run inside V8 and cost far less
 * than a native string conversion per value.
 *
 * Long batches go in pieces of at most PIECE_UNITS UTF-16 units (and
 * PIECE_VALUES values): each joined piece then stays below V8's 128 KiB
 * large-object size even as a two-byte string, so allocating it is a bump
 * in the young generation instead of a fresh mapping of pages per call.
 * The addon returns each piece's results in segments of whole values, also
 * below that size (see write_results in src/napi/batch.rs).
 */
const PIECE_UNITS = 60 * 1024;
const PIECE_VALUES = 4096;
/**
 * Async batches are read in runs of at most ASYNC_RUN_UNITS units (and
 * ASYNC_RUN_VALUES values), each joined into a string below the
 * large-object size when its values are ASCII, and a piece handed to the
 * thread pool is ASYNC_RUNS runs: the work each piece hands over must
 * outweigh the hand-off (a promise, a queued work item, two thread
 * wake-ups). Halving the pieces measured 1.5x slower; four runs per piece
 * instead of one made 100,000-value decrypts 10-15% faster.
 */
const ASYNC_RUN_UNITS = 120 * 1024;
const ASYNC_RUN_VALUES = 4096;
const ASYNC_RUNS = 4;

function checkValues(values, fn) {
  if (!Array.isArray(values)) {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `${fn}() expects an array of strings, got ${describeType(values)}`);
  }
}

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

/** The error for values[i], which is not a string. */
function notAString(v, i, fn, encrypting) {
  const err = encrypting
    ? new FieldCryptError(codes.INVALID_ARGUMENT, `${fn}() expects an array of strings; values[${i}] is ${describeType(v)}`)
    : invalidFormat(v);
  err.index = i;
  err.message += ` (at index ${i})`;
  return err;
}

/** The joined form of values[start, end): [joined, lengths, piece]. */
function join(values, lens, start, end) {
  const piece = start === 0 && end === values.length ? values : values.slice(start, end);
  return [piece.join(''), lens.subarray(start, end), piece];
}

/** Puts joined results (segments of [joined, ends]) into out[start...]. */
function splitInto(out, start, segments) {
  let k = start;
  for (const [joined, ends] of segments) {
    let from = 0;
    for (let i = 0; i < ends.length; i++) {
      out[k++] = joined.slice(from, ends[i]);
      from = ends[i];
    }
  }
}

/**
 * The results of one native single-value call per value of `piece` (its
 * values are already checked to be strings), for pieces of long values and
 * the rare piece the joined form cannot carry.
 */
function oneByOne(encrypting, piece, version) {
  const out = new Array(piece.length);
  let i = 0;
  for (;;) {
    try {
      // A call site per function: one that sees both stays polymorphic and
      // calls through V8's generic API-call path, measured 3-8% slower.
      if (encrypting) for (; i < piece.length; i++) out[i] = native.encrypt(piece[i], version);
      else for (; i < piece.length; i++) out[i] = native.decrypt(piece[i]);
      return out;
    } catch (err) {
      // As withKeys: value i again once its missing key is loaded.
      if (loadedMissingKey(err)) continue;
      const adopted = adopt(err);
      adopted.index = i;
      adopted.message += ` (at index ${i})`;
      throw adopted;
    }
  }
}

/**
 * The array a batch returns, made once every piece is done from `done`:
 * for each piece, its first index, then its results as segments (see
 * splitInto) or as strings, the other null.
 *
 * Made at the start, the array lived through the young-generation
 * collections that the batch's own allocations set off, was promoted to the
 * old generation by them, and from then on every string stored in it was
 * kept by the next young collection (V8 treats old-to-young references as
 * live there), copied and promoted in turn even when the caller had already
 * dropped the results. Made last, it and its strings are young together.
 */
function assemble(n, done) {
  const out = new Array(n);
  for (let d = 0; d < done.length; d += 3) {
    const start = done[d];
    const strings = done[d + 2];
    if (strings === null) splitInto(out, start, done[d + 1]);
    else for (let i = 0; i < strings.length; i++) out[start + i] = strings[i];
  }
  return out;
}

/** Rebases a piece's error index onto the whole batch. */
function rebase(err, start) {
  if (typeof err.index === 'number' && start > 0) {
    err.message = err.message.replace(/\(at index \d+\)$/, `(at index ${start + err.index})`);
    err.index += start;
  }
  return err;
}

/**
 * Which form a sync batch's pieces take. A batch saves a JS-to-native call
 * per value (tens of nanoseconds) and pays for a join and for copies into and
 * out of its segments, which grow with the values' length; but its results
 * are external strings, while a loop's are copies on V8's heap (below
 * EXTERNAL_MIN / TEXT_EXTERNAL_MIN, see src/limits.rs), which the young-
 * generation collections copy again while the batch holds them all.
 *
 * So a piece whose values average ONE_BY_ONE_FROM UTF-16 units or more goes
 * value by value through the single-value calls, unless the whole batch's
 * results come to JOINED_RESULTS_FROM bytes or more and single calls would
 * return them on the heap. Measured in one process, alternating (joined ÷
 * value-by-value speed): 1.02-1.13 encrypting up to 512 B; from there to
 * 8 MiB of results 0.56-0.90 decrypting and 0.79-1.17 encrypting (1,000
 * values of 1-8 KiB, 100-500 of 16-64 KiB); from 8 MiB of results 1.25-1.88
 * decrypting and 1.17-3.24 encrypting (1-64 KiB, up to 16,000 values);
 * encrypting 16-64 KiB values, whose single-call results are external too,
 * 0.62-0.85 at any count.
 */
const ONE_BY_ONE_FROM = 400;
/** About half of V8's default young generation (a 16 MiB semi-space on 64-bit). */
const JOINED_RESULTS_FROM = 8 * 1024 * 1024;
/** src/limits.rs EXTERNAL_MIN and TEXT_EXTERNAL_MIN: single-call results this long are external strings. */
const SINGLE_EXTERNAL_STORED = 32 * 1024;
const SINGLE_EXTERNAL_TEXT = 128 * 1024;

/** Result bytes for `units` UTF-16 units of input in `count` values (ASCII: units = bytes). */
function resultBytes(encrypting, units, count) {
  return encrypting ? 2 * units + STORED_HEADER * count : (units - STORED_HEADER * count) / 2;
}

function oneByOnePiece(encrypting, units, count, batchResults) {
  if (units < ONE_BY_ONE_FROM * count) return false;
  const each = resultBytes(encrypting, units, count) / count;
  const singleExternal = each >= (encrypting ? SINGLE_EXTERNAL_STORED : SINGLE_EXTERNAL_TEXT);
  return singleExternal || batchResults < JOINED_RESULTS_FROM;
}

function manySync(native_, values, version, fn, encrypting) {
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
        done.push(start, null, oneByOne(encrypting, values.slice(start, end), version));
        continue;
      }
      const [joined, lens, piece] = join(values, allLens, start, end);
      const result = withKeys(native_, joined, lens, version);
      if (result === undefined) done.push(start, null, oneByOne(encrypting, piece, version));
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
 * nothing; errors carry `index`.
 */
function encryptMany(values, options) {
  return manySync(native.encryptJoined, values, versionOption(options, 'encryptMany'), 'encryptMany', true);
}

/** Decrypts every stored value of `values`, as encryptMany. All or nothing; errors carry `index`. */
function decryptMany(values) {
  return manySync(native.decryptJoined, values, undefined, 'decryptMany', false);
}

/**
 * Pieces an async batch has on the thread pool at most: four per pool
 * thread, so that a thread that finishes one has the next already queued
 * instead of waiting for the JS thread, which also turns finished pieces
 * into strings. The bound keeps the native memory a batch holds, and the
 * wait of other work queued on the pool (fs, dns.lookup, zlib) behind it,
 * to about sixteen pieces (16 x 4 runs of 120 KiB of input).
 */
const IN_FLIGHT = 4 * Math.max(1, Number(process.env.UV_THREADPOOL_SIZE) || 4);

/**
 * One piece on the pool; loads missing keys and retries like withKeys.
 * `runs` are consecutive runs of the piece's values, each joined on its own.
 * Resolves to the piece's results: segments (as the sync batches return) or,
 * when the piece had to go value by value, the strings.
 */
async function pieceAsync(native_, encrypting, runs, lens, version) {
  for (;;) {
    let pending;
    try {
      // Joined here, not kept across the await: the addon copies them.
      pending = native_(runs.map((run) => run.join('')), lens, version);
    } catch (err) {
      if (!loadedMissingKey(err)) throw adopt(err);
      continue;
    }
    if (pending === undefined) return { segments: null, strings: oneByOne(encrypting, runs.flat(), version) };
    try {
      return { segments: await pending, strings: null };
    } catch (err) {
      if (!loadedMissingKey(err)) throw adopt(err);
    }
  }
}

/**
 * Values per array of an async batch's snapshot of its input: 64 KiB of
 * pointers, below V8's large-object size.
 */
const SNAPSHOT_SHIFT = 13;
const SNAPSHOT_VALUES = 1 << SNAPSHOT_SHIFT;

/**
 * The values of an async batch, taken at the call (the caller may change the
 * array while pieces are pending) without reading them: a copy of the array,
 * in arrays of SNAPSHOT_VALUES. One copy of a long array would be a large
 * object, fresh pages each call.
 */
function snapshot(values) {
  const parts = [];
  for (let i = 0; i < values.length; i += SNAPSHOT_VALUES) parts.push(values.slice(i, i + SNAPSHOT_VALUES));
  return parts;
}

/**
 * The piece of an async batch that starts at value `start` of its snapshot:
 * up to ASYNC_RUNS runs of at most ASYNC_RUN_UNITS units and ASYNC_RUN_VALUES
 * values each. Throws, as pieces() does, at a value that is not a string.
 * Returns the runs, each value's length and where the next piece starts.
 */
function nextPiece(snap, start, n, fn, encrypting) {
  const lens = new Uint32Array(Math.min(n - start, ASYNC_RUNS * ASYNC_RUN_VALUES));
  const runs = [];
  let i = start;
  while (runs.length < ASYNC_RUNS && i < n) {
    const run = [];
    let units = 0;
    for (; i < n && run.length < ASYNC_RUN_VALUES; i++) {
      const v = snap[i >>> SNAPSHOT_SHIFT][i & (SNAPSHOT_VALUES - 1)];
      if (typeof v !== 'string') throw notAString(v, i, fn, encrypting);
      const len = v.length;
      if (run.length > 0 && units + len > ASYNC_RUN_UNITS) break;
      run.push(v);
      lens[i - start] = len;
      units += len;
    }
    runs.push(run);
  }
  return { runs, lens: lens.subarray(0, i - start), end: i };
}

/**
 * Runs the pieces on the libuv thread pool, starting one per turn of the
 * event loop with up to IN_FLIGHT on the pool, and turns each piece's
 * results into strings as soon as it is done, while the pool works on the
 * next ones. Measured against the previous way, four pieces at a time and
 * the strings made once all were done (five alternating runs of 21 rounds
 * of 100,000 values of 100 B; medians of the runs, then their range):
 * encrypting 1.49x the sync batch (1.33-1.81) against 1.21x (1.19-1.56),
 * decrypting 1.47x (1.15-1.49) against 1.30x (1.23-1.43); the typical
 * round's longest event-loop delay 3.2-3.7 ms against 3.8-4.2 encrypting,
 * 3.9-4.4 against 4.5-4.8 decrypting.
 *
 * Each value is checked and measured in the turn that starts its piece (its
 * checks, its joins and the copy into the addon: well under a millisecond),
 * not all of them before the first piece: on 100,000 values of 100 B that
 * took 2-2.5 ms, in which the pool had nothing to do.
 *
 * On a failure no further piece starts; the promise rejects once the pieces
 * already on the pool are done, so no work of the batch outlives it. A value
 * that is not a string is such a failure, found when its piece is made.
 */
async function manyAsync(native_, values, version, fn, encrypting) {
  checkValues(values, fn);
  const n = values.length;
  const snap = snapshot(values);
  const done = []; // see assemble
  const settled = [];
  let failure = null;
  let inFlight = 0;
  let freed = null; // resolves the wait for a place on the pool
  for (let start = 0; start < n; ) {
    if (start > 0) await new Promise(setImmediate);
    while (failure === null && inFlight >= IN_FLIGHT) await new Promise((resolve) => (freed = resolve));
    if (failure !== null) break;
    let next;
    try {
      next = nextPiece(snap, start, n, fn, encrypting);
    } catch (err) {
      failure = err;
      break;
    }
    const from = start;
    start = next.end;
    inFlight++;
    const count = next.end - from;
    const piece = pieceAsync(native_, encrypting, next.runs, next.lens, version);
    settled.push(
      piece
        .then(
          ({ segments, strings }) => {
            if (failure !== null) return;
            // The piece's strings are made now, while the pool works on the
            // next pieces; the array the batch returns, at the end.
            if (strings === null) splitInto((strings = new Array(count)), 0, segments);
            done.push(from, null, strings);
          },
          (err) => {
            if (failure === null) failure = rebase(err, from);
          },
        )
        .finally(() => {
          inFlight--;
          if (freed !== null) {
            const wake = freed;
            freed = null;
            wake();
          }
        }),
    );
  }
  await Promise.all(settled);
  if (failure !== null) throw failure;
  return assemble(n, done);
}

/**
 * `encryptMany` on the libuv thread pool, keeping the event loop responsive.
 * Resolves to the stored values in order; rejects on the first failure (with
 * its `index`), once the pieces already on the thread pool are done. The
 * values are taken when called; the write version too.
 * Each piece uses the keys in force when it starts (configureKeys or
 * reloadKeys during a batch affect the pieces not yet started).
 */
async function encryptManyAsync(values, options) {
  const version = versionOption(options, 'encryptManyAsync');
  return manyAsync(native.encryptJoinedAsync, values, version, 'encryptManyAsync', true);
}

/** `decryptMany` on the libuv thread pool. */
async function decryptManyAsync(values) {
  return manyAsync(native.decryptJoinedAsync, values, undefined, 'decryptManyAsync', false);
}

module.exports = {
  encrypt,
  decrypt,
  encryptBuffer,
  decryptBuffer,
  isEncrypted,
  reEncrypt,
  getKeyVersion,
  encryptMany,
  decryptMany,
  encryptManyAsync,
  decryptManyAsync,
};
