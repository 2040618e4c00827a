'use strict';

/**
 * What the sync and async batches share: checking the input, the value-by-
 * value fallback, and putting the results together.
 *
 * A batch crosses into the addon as one joined string plus each value's
 * length (src/batch.rs, src/napi/batch.rs): `join` and `slice` run inside V8 and cost far less than
 * a native string conversion per value. The addon returns a piece's results
 * as segments `[joined, ends]` of whole values, sliced apart here.
 *
 * Invariants: a batch is all or nothing; an error names the failing value's
 * `index` in the whole batch (rebase) and never its content.
 */

const native = require('./native').load();
const { codes, FieldCryptError, adopt, describeType, invalidFormat } = require('./errors');
const { loadedMissingKey, contextOption, allowUnboundOption, readOptions } = require('./calls');

function checkValues(values, fn) {
  if (!Array.isArray(values)) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `${fn}() expects an array of strings, got ${describeType(values)}`,
    );
  }
}

/** The error for values[i], which is not a string. */
function notAString(v, i, fn, encrypting) {
  const err = encrypting
    ? new FieldCryptError(
        codes.INVALID_ARGUMENT,
        `${fn}() expects an array of strings; values[${i}] is ${describeType(v)}`,
      )
    : invalidFormat(v);
  err.index = i;
  err.message += ` (at index ${i})`;
  return err;
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
 * the rare piece the joined form cannot carry. `binding` is the batch's
 * `{ context, allowUnbound }` (see bindingOf).
 */
function oneByOne(encrypting, piece, version, binding) {
  const out = new Array(piece.length);
  const { context, allowUnbound } = binding;
  let i = 0;
  for (;;) {
    try {
      // A call site per function: one that sees both stays polymorphic and
      // calls through V8's slower generic API-call path.
      if (encrypting) for (; i < piece.length; i++) out[i] = native.encrypt(piece[i], version, context);
      else for (; i < piece.length; i++) out[i] = native.decrypt(piece[i], context, allowUnbound);
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
 * The array a batch returns, made once every piece is done, from `done`:
 * for each piece, its first index, then its results as segments (see
 * splitInto) or as strings, the other null.
 *
 * It must be made last. Made at the start, it lives through the young-
 * generation collections the batch's own allocations set off, is promoted
 * to the old generation, and from then on every string stored in it is kept
 * by the next young collection (V8 treats old-to-young references as live),
 * copied and promoted in turn even when the caller has already dropped the
 * results. Made last, it and its strings are young together.
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

/** No context: values as the original implementation writes them. */
const UNBOUND = Object.freeze({ context: undefined, allowUnbound: false });

/** A batch's `{ context, allowUnbound }` from its options (one context for every value). */
function bindingOf(maybeOptions, fn, encrypting) {
  // Decrypting batches once took no options: see calls.js readOptions.
  const options = encrypting ? maybeOptions : readOptions(maybeOptions);
  if (options === undefined) return UNBOUND;
  const context = contextOption(options, fn);
  return { context, allowUnbound: encrypting ? false : allowUnboundOption(options, fn) };
}

module.exports = { checkValues, notAString, splitInto, oneByOne, assemble, rebase, bindingOf };
