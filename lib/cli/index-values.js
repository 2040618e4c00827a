'use strict';

/**
 * Blind-index values in the CLI (issue 20, docs/search.md): where a
 * searchable path's index value lives in a raw document, what it should be,
 * and where a stored one stands. Shared by `reindex` (lib/cli/reindex.js) and
 * `status` (index coverage).
 *
 * The layout is the fieldEncryption plugin's: the index value of the
 * encrypted path `<parent>.<leaf>` is the sibling `<parent>.<leaf>_bidx` in
 * the same parent object (in each element of an array of subdocuments):
 *   a stored value (scalar, or a container encrypted as a whole) -> "VV:hex"
 *   an array whose elements are stored values -> ["VV:hex", ...] in element
 *     order (a null element keeps its place as null)
 *
 * The index input is the decrypted value through indexInput() with the path's
 * normalisers (lib/core/index-input.js): strings as normalised text, other
 * values (typed values, containers) as their canonical encoding.
 *
 * What must stay true: decrypted values and index values never reach an
 * error message or the output (only states and counts do); a value that is
 * not encrypted yet is never indexed (run `encrypt` first).
 */

const codec = require('../core/codec');
const { blindIndex, blindIndexMany, indexKeyVersions } = require('../core/blind-index');
const { indexInput } = require('../core/index-input');
const { classify } = require('./values');
const { loadDriver } = require('./driver');
const { projectionFor } = require('./scan');

/** The suffix of a sibling index path (the shared contract's INDEX_SUFFIX). */
const INDEX_SUFFIX = '_bidx';

/** Index values as stored: the index-key version, a colon, 64 lowercase hex digits. */
const INDEX_VALUE = /^(\d\d):[0-9a-f]{64}$/;

/** Errors that stop a run instead of being counted per value: a key is missing. */
const FATAL_CODES = new Set(['ERR_FIELDCRYPT_KEY_NOT_FOUND', 'ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND']);

/**
 * Calls `visit(slot)` for every place of `path` in `doc` that holds a value
 * or an index value: slot = { where, siblingWhere, value, sibling } with the
 * concrete dotted paths (array indexes included). Arrays met before the last
 * segment are walked (arrays of subdocuments); an array at the last segment
 * is the value itself (an array of scalars).
 */
function forEachSlot(doc, path, visit) {
  walk(doc, path.split('.'), 0, '', visit);
}

function walk(node, parts, i, where, visit) {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (let k = 0; k < node.length; k++) walk(node[k], parts, i, `${where}.${k}`, visit);
    return;
  }
  const key = parts[i];
  const at = where ? `${where}.${key}` : key;
  if (i < parts.length - 1) {
    walk(node[key], parts, i + 1, at, visit);
    return;
  }
  const siblingKey = key + INDEX_SUFFIX;
  const value = node[key];
  const sibling = node[siblingKey];
  if (isAbsent(value) && isAbsent(sibling)) return;
  visit({ where: at, siblingWhere: where ? `${where}.${siblingKey}` : siblingKey, value, sibling });
}

/** What to read of each document: the fields' top-level paths, and the siblings of top-level fields. */
function indexProjection(paths) {
  const projection = projectionFor(paths);
  for (const p of paths) if (!p.includes('.')) projection[p + INDEX_SUFFIX] = 1;
  return projection;
}

function isAbsent(v) {
  return v === undefined || v === null;
}

/**
 * The computation for one target (collection): `expected(spec, value, place)`
 * returns { kind, index? } for a slot's value, where kind is 'indexed' (then
 * `index` is the index value, or array of them, under the current version)
 * or the class of a value that is not indexed ('plaintext', 'empty',
 * 'malformed', 'unsupported'). `contextOf` gives a bound field's context.
 */
function indexer(collection, contextOf) {
  // current is null while no index key is set: then undefined, so that the
  // first blindIndex() call names the variable to set (INDEX_KEY_NOT_FOUND).
  const versions = indexKeyVersions();
  const current = versions.current ?? undefined;
  const live = versions.live;
  const bson = loadDriver().BSON;

  function inputOf(stored, spec, id) {
    const context = contextOf(spec.path, id);
    const options = { buffer: true, ...(context === undefined ? {} : { context, allowUnbound: true }) };
    return indexInput(codec.decodeValue(stored, bson, options), spec.normalize);
  }

  function indexOf(input, spec, version = current) {
    return blindIndex(input, { collection, path: spec.path, version });
  }

  /** The class of a stored value that cannot be indexed, or undefined when it can. */
  function notIndexable(value) {
    const kind = classify(value);
    return kind === 'encrypted' ? undefined : kind;
  }

  function expected(spec, value, id) {
    const shape = Array.isArray(value) ? 'array' : 'one';
    if (spec.kind === 'array' && shape !== 'array') return { kind: 'unsupported' };
    if ((spec.kind === 'scalar' || spec.kind === 'container') && shape === 'array') return { kind: 'unsupported' };
    if (shape === 'one') {
      const kind = notIndexable(value);
      if (kind) return { kind };
      const input = inputOf(value, spec, id);
      return { kind: 'indexed', index: indexOf(input, spec), inputs: [input] };
    }
    // An array of stored values: all of them indexable, or the slot is not indexed.
    const present = value.filter((v) => !isAbsent(v));
    if (value.length === 0) return { kind: 'indexed', index: [], inputs: [] };
    for (const kind of ['plaintext', 'malformed', 'unsupported']) {
      if (present.some((v) => notIndexable(v) === kind)) return { kind };
    }
    if (present.some((v) => notIndexable(v) === 'empty')) return { kind: 'empty' };
    const inputs = value.map((v) => (isAbsent(v) ? null : inputOf(v, spec, id)));
    const computed = blindIndexMany(
      inputs.filter((x) => x !== null),
      { collection, path: spec.path, version: current },
    );
    let k = 0;
    return { kind: 'indexed', index: inputs.map((x) => (x === null ? null : computed[k++])), inputs };
  }

  /**
   * Where a slot's stored index stands against the expected one: 'current',
   * 'missing', 'old' (right, under an older index-key version: `version`), or
   * 'stale' (wrong, or not an index value). Old values under a version whose
   * key is no longer configured cannot be checked and count as old.
   */
  function standing(spec, sibling, exp) {
    if (isAbsent(sibling)) return { state: 'missing' };
    if (sameIndex(sibling, exp.index)) return { state: 'current' };
    const isArray = Array.isArray(exp.index);
    if (isArray !== Array.isArray(sibling)) return { state: 'stale' };
    const stored = isArray ? sibling : [sibling];
    const inputs = exp.inputs;
    if (stored.length !== inputs.length) return { state: 'stale' };
    let version;
    for (let k = 0; k < stored.length; k++) {
      if (inputs[k] === null) {
        if (stored[k] !== null) return { state: 'stale' };
        continue;
      }
      const m = typeof stored[k] === 'string' ? INDEX_VALUE.exec(stored[k]) : null;
      if (!m) return { state: 'stale' };
      const v = m[1];
      if (live.includes(v) && stored[k] !== indexOf(inputs[k], spec, v)) return { state: 'stale' };
      if (v !== current) version ??= v;
    }
    return version ? { state: 'old', version } : { state: 'stale' };
  }

  return { current, live, expected, standing };
}

function sameIndex(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, k) => x === b[k]);
  }
  return a === b;
}

/**
 * What one slot is, for the counts of `status` and `reindex`:
 *   { state: 'current'|'old'|'missing'|'stale'|'orphan'|'plaintext'|'empty'|'malformed'|'unsupported',
 *     version?, index? }
 * 'orphan': an index value with no value beside it (left by a removed value).
 */
function assess(ix, spec, slot, id) {
  if (isAbsent(slot.value)) return { state: 'orphan' };
  const exp = ix.expected(spec, slot.value, id);
  if (exp.kind !== 'indexed') return { state: exp.kind };
  // An empty array needs no index values: none or [] are both right.
  if (Array.isArray(exp.index) && exp.index.length === 0 && (isAbsent(slot.sibling) || sameIndex(slot.sibling, [])))
    return { state: 'empty' };
  return { ...ix.standing(spec, slot.sibling, exp), index: exp.index };
}

/**
 * A per-value error as the CLI reports it: the code and, for fieldcrypt's
 * own errors, the message (they never contain values); for anything else
 * (a custom normalize function that threw) only the error's name, since its
 * message may quote the value.
 */
function valueError(err) {
  const own = err && typeof err.code === 'string' && err.code.startsWith('ERR_FIELDCRYPT_');
  return {
    code: own ? err.code : 'ERR_FIELDCRYPT_CLI_INDEX',
    message: own
      ? err.message
      : `computing the index value failed (${err && err.name ? err.name : typeof err}; message withheld, it may quote the value)`,
  };
}

function isFatal(err) {
  return Boolean(err && FATAL_CODES.has(err.code));
}

/** A field's empty counts for index coverage (status) and reindex. */
function newIndexStats() {
  return {
    current: 0,
    old: {},
    missing: 0,
    stale: 0,
    orphan: 0,
    plaintext: 0,
    empty: 0,
    malformed: 0,
    unsupported: 0,
    changed: 0,
    errors: 0,
  };
}

/** Whether a field's index coverage is complete: every encrypted value indexed under the current version. */
function coverageOk(s) {
  return s.missing === 0 && s.stale === 0 && s.orphan === 0 && s.errors === 0 && Object.keys(s.old).length === 0;
}

module.exports = {
  INDEX_SUFFIX,
  INDEX_VALUE,
  forEachSlot,
  indexProjection,
  indexer,
  assess,
  valueError,
  isFatal,
  newIndexStats,
  coverageOk,
};
