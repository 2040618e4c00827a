'use strict';

/**
 * Async batches: encryptManyAsync and decryptManyAsync run the work on the
 * libuv thread pool, keeping the event loop responsive.
 *
 * Invariants: the values (and the write version) are taken at the call; each
 * value is checked in the turn that starts its piece; on a failure no
 * further piece starts and the promise rejects once the pieces already on the
 * pool are done, so no work of the batch outlives it. Each piece uses the
 * keys in force when it starts.
 */

const { adopt } = require('./errors');
const native = require('./native').load();
const { loadedMissingKey, versionOption } = require('./calls');
const { checkValues, notAString, splitInto, oneByOne, assemble, rebase, bindingOf } = require('./batch-results');

/**
 * Async batches are read in runs of at most ASYNC_RUN_UNITS units (and
 * ASYNC_RUN_VALUES values), each joined into a string below V8's large-object
 * size when its values are ASCII, and a piece handed to the thread pool is
 * ASYNC_RUNS runs: the work each piece hands over must outweigh the hand-off
 * (a promise, a queued work item, two thread wake-ups).
 */
const ASYNC_RUN_UNITS = 120 * 1024;
const ASYNC_RUN_VALUES = 4096;
const ASYNC_RUNS = 4;

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
 * Values per array of an async batch's snapshot of its input: 64 KiB of
 * pointers, below V8's large-object size.
 */
const SNAPSHOT_SHIFT = 13;
const SNAPSHOT_VALUES = 1 << SNAPSHOT_SHIFT;

/**
 * One piece on the pool; loads missing keys and retries like withKeys.
 * `runs` are consecutive runs of the piece's values, each joined on its own.
 * Resolves to the piece's results: segments (as the sync batches return) or,
 * when the piece had to go value by value, the strings.
 */
async function pieceAsync(native_, encrypting, runs, lens, version, binding) {
  for (;;) {
    let pending;
    try {
      // Joined here, not kept across the await: the addon copies them.
      const joined = runs.map((run) => run.join(''));
      pending = native_(joined, lens, version, binding.context, binding.allowUnbound);
    } catch (err) {
      if (!loadedMissingKey(err)) throw adopt(err);
      continue;
    }
    if (pending === undefined) {
      return { segments: null, strings: oneByOne(encrypting, runs.flat(), version, binding) };
    }
    try {
      return { segments: await pending, strings: null };
    } catch (err) {
      if (!loadedMissingKey(err)) throw adopt(err);
    }
  }
}

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
 * values each. Throws, as the sync pieces do, at a value that is not a
 * string. Returns the runs, each value's length and where the next piece
 * starts.
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
 * next ones. Each value is checked and measured in the turn that starts its
 * piece, not all before the first piece (the pool would idle meanwhile).
 */
async function manyAsync(native_, values, version, binding, fn, encrypting) {
  checkValues(values, fn);
  const n = values.length;
  const snap = snapshot(values);
  const done = []; // see assemble
  const settled = [];
  let failure = null;
  let inFlight = 0;
  let freed = null; // resolves the wait for a place on the pool
  for (let start = 0; start < n;) {
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
    const piece = pieceAsync(native_, encrypting, next.runs, next.lens, version, binding);
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
 * `encryptMany` on the libuv thread pool. Resolves to the stored values in
 * order; rejects on the first failure (with its `index`), once the pieces
 * already on the thread pool are done.
 */
async function encryptManyAsync(values, options) {
  const version = versionOption(options, 'encryptManyAsync');
  const binding = bindingOf(options, 'encryptManyAsync', true);
  return manyAsync(native.encryptJoinedAsync, values, version, binding, 'encryptManyAsync', true);
}

/** `decryptMany` on the libuv thread pool. */
async function decryptManyAsync(values, options) {
  const binding = bindingOf(options, 'decryptManyAsync', false);
  return manyAsync(native.decryptJoinedAsync, values, undefined, binding, 'decryptManyAsync', false);
}

module.exports = { encryptManyAsync, decryptManyAsync };
