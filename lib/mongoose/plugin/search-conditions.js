'use strict';

/**
 * A condition on a searchable encrypted path (issue 20), rewritten to the
 * path's blind index: the sibling path `<leaf>_bidx` holds a keyed HMAC of
 * each value (search-paths.js), so equality with a value becomes equality
 * with its index values, one per live index-key version
 * (blindIndexAll), and a document indexed under any live version matches.
 *
 * Kinds (state.search): 'scalar' (one value; also a field of each element
 * of a document array), 'array' (an array of encrypted scalars: one index
 * value per element, in element order, a multikey array), 'container' (an
 * object or array encrypted as a whole: one index value of its canonical
 * encoding, so key order does not matter).
 *
 * Supported: a value, $eq, $ne, $in, $nin, $not of these, $all (scalar and
 * array kinds), $elemMatch of these on arrays of scalars; null, $exists,
 * $type and $size stay on the encrypted path itself (they send no
 * plaintext), as do stored ciphertexts. Equality to a whole array (array
 * kind) is equality to its whole index array, in order, as MongoDB compares
 * arrays. Everything else is refused: a blind index answers equality only.
 *
 * Invariants: a filter value's index values are computed by the write
 * side's own functions (indexValues below), so they equal what a write of
 * the same value stored; no plaintext is ever part of the returned
 * fragment; the fragment's keys are relative to the filter's base
 * (the original key, or its index sibling).
 */

const { isEncrypted } = require('../../core');
const { isPlainObject, unsupportedSearch } = require('./values');
const { INDEX_SUFFIX } = require('./search-paths');
const { indexValuesAll, plainOf } = require('./search-writes');

/** The search table entry of an encrypted leaf (path-index.js), when the leaf is searchable. */
function searchEntryOf(ctx, leaf) {
  return ctx.index.search.get(leaf.path);
}

/** `{ $op: … }` with only operator keys (at least one). */
function isOperatorObject(value) {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || !isPlainObject(value)) return false;
  const keys = Object.keys(value);
  return keys.length > 0 && keys.every((k) => k[0] === '$');
}

/**
 * The key of the index sibling for a filter key naming the leaf: the leaf's
 * own name gets the suffix, an array selector after it stays after it
 * (`medications.0` -> `medications_bidx.0`: index values are in element order).
 */
function indexKeyOf(leaf, key, element) {
  const parts = key.split('.');
  const selector = element ? parts.pop() : undefined;
  // The leaf's own name (an alias becomes it), or a Map's key as written.
  const name = leaf.path.slice(leaf.path.lastIndexOf('.') + 1);
  parts[parts.length - 1] = (name === '$*' ? parts[parts.length - 1] : name) + INDEX_SUFFIX;
  if (selector !== undefined) parts.push(selector);
  return parts.join('.');
}

/**
 * `{ key, element, condition, opts }` on the searchable `leaf` -> a filter
 * fragment. `opts`: see filters.js rewriteFilter().
 */
function searchCondition(ctx, entry, leaf, { key, element, condition, opts }) {
  const s = { ctx, entry, leaf, key, indexKey: indexKeyOf(leaf, key, element), opts };
  // An element selected by position (`medications.0`) is one scalar.
  if (element) s.kind = 'scalar';
  else s.kind = entry.kind;
  return rewrite(s, condition, opts.negated);
}

function rewrite(s, condition, negated) {
  if (condition instanceof RegExp) throw refused(s, '$regex');
  if (condition !== null && typeof condition === 'object' && isPlainObject(condition)) {
    const keys = Object.keys(condition);
    if (keys.some((k) => k[0] === '$')) {
      if (!keys.every((k) => k[0] === '$')) throw refused(s, 'operators mixed with fields');
      return and(keys.map((op) => operator(s, op, condition[op], negated)));
    }
  }
  // Implicit equality. Mongoose turns an array on a path that is not an
  // array into $in; on an array of scalars it is a whole array.
  if (Array.isArray(condition) && s.kind !== 'array') return equality(s, condition, false, negated);
  return equality(s, [condition], false, negated);
}

function operator(s, op, operand, negated) {
  switch (op) {
    case '$eq':
      return equality(s, [operand], false, negated);
    case '$ne':
      return equality(s, [operand], true, negated);
    case '$in':
    case '$nin':
      if (!Array.isArray(operand)) throw refused(s, `${op} without an array`);
      return equality(s, operand, op === '$nin', negated);
    case '$all':
      if (s.kind === 'container') throw refused(s, '$all', 'its value is compared as a whole');
      if (!Array.isArray(operand)) throw refused(s, '$all without an array');
      if (operand.length === 0) return { [s.key]: { $all: [] } };
      return and(operand.map((v) => equality(s, [v], false, negated)));
    case '$elemMatch':
      if (s.kind !== 'array') throw refused(s, '$elemMatch', 'it is not an array of encrypted values');
      return { [s.indexKey]: { $elemMatch: elementOperators(s, operand) } };
    case '$not':
      return not(s, operand, negated);
    case '$exists':
    case '$type':
    case '$size':
      return { [s.key]: { [op]: operand } };
    default:
      throw refused(s, op);
  }
}

/** `$not`: of an operator object, as `{ index: { $not: … } }` or `$nor`. */
function not(s, operand, negated) {
  if (operand instanceof RegExp) throw refused(s, '$regex');
  if (!isOperatorObject(operand)) throw refused(s, '$not without operators');
  const inner = rewrite(s, operand, !negated);
  const keys = Object.keys(inner);
  if (keys.length === 1 && keys[0][0] !== '$' && isOperatorObject(inner[keys[0]])) {
    return { [keys[0]]: { $not: inner[keys[0]] } };
  }
  return { $nor: [inner] };
}

/**
 * Equality with any of `values` (or, `negate`, with none of them). null,
 * undefined and stored ciphertexts are compared on the encrypted path
 * itself, '' on both (the foundation's helpers stored it unencrypted),
 * every other value by its index values.
 */
function equality(s, values, negate, negated) {
  const original = [];
  const indexed = [];
  const wholes = []; // whole-array equality: one index array per live version
  for (const value of values) {
    if (value instanceof RegExp) throw refused(s, '$regex');
    if (value === null || value === undefined || isEncrypted(value)) {
      original.push(value === undefined ? null : value);
    } else if (s.kind === 'array' && Array.isArray(value)) {
      if (value.length === 0) original.push([]);
      else wholes.push(...transpose(value.map((v) => indexValues(s, v))));
    } else {
      if (value === '') original.push('');
      indexed.push(...indexValues(s, value));
    }
  }
  // An upsert inserts the filter's equalities: an index value without the
  // value it indexes. Only a negated condition is never copied.
  if (
    s.opts.upsert &&
    !negate &&
    !negated &&
    (indexed.length > 0 || wholes.length > 0) &&
    !s.opts.assigned(s.leaf.path)
  )
    throw refusedUpsert(s);
  const clauses = [];
  if (indexed.length > 0) clauses.push({ [s.indexKey]: negate ? { $nin: indexed } : { $in: indexed } });
  if (original.length > 0)
    clauses.push({
      [s.key]:
        original.length === 1 ? { [negate ? '$ne' : '$eq']: original[0] } : { [negate ? '$nin' : '$in']: original },
    });
  const whole = wholes.map((array) => ({ [s.indexKey]: array }));
  if (negate) {
    if (whole.length > 0) clauses.push({ $nor: whole });
    return clauses.length === 0 ? { [s.key]: { $nin: [] } } : and(clauses);
  }
  clauses.push(...whole);
  if (clauses.length === 0) return { [s.key]: { $in: [] } };
  return clauses.length === 1 ? clauses[0] : { $or: clauses };
}

/**
 * `$elemMatch` on an array of encrypted scalars: operators on one element,
 * as operators on one index value. Two positive operators must both hold
 * (their index values intersect), negative ones add up.
 */
function elementOperators(s, condition) {
  if (!isOperatorObject(condition)) throw refused(s, '$elemMatch without operators');
  const out = {};
  for (const [op, operand] of Object.entries(condition)) {
    let values;
    let target;
    if (op === '$eq' || op === '$ne') {
      values = [operand];
      target = op === '$eq' ? '$in' : '$nin';
    } else if (op === '$in' || op === '$nin') {
      if (!Array.isArray(operand)) throw refused(s, `${op} without an array`);
      values = operand;
      target = op;
    } else if (op === '$not') {
      if (Object.hasOwn(out, '$not')) throw refused(s, 'two $not in one $elemMatch');
      out.$not = elementOperators(s, operand);
      continue;
    } else {
      throw refused(s, `${op} inside $elemMatch`);
    }
    const indexed = [];
    for (const v of values) {
      if (v === null || v === undefined || isEncrypted(v) || Array.isArray(v) || v instanceof RegExp)
        throw refused(s, `${describeValue(v)} inside $elemMatch`);
      indexed.push(...indexValues(s, v));
    }
    if (!Object.hasOwn(out, target)) out[target] = indexed;
    else if (target === '$in') out.$in = out.$in.filter((v) => indexed.includes(v));
    else out.$nin = [...out.$nin, ...indexed];
  }
  return out;
}

function describeValue(v) {
  if (v === null || v === undefined) return 'null';
  if (v instanceof RegExp) return 'a regular expression';
  if (Array.isArray(v)) return 'an array';
  return 'a stored ciphertext';
}

/**
 * The index values of one filter value, one per live index-key version
 * (current first). The value goes through plainOf() and indexValuesAll() of
 * the write side (search-writes.js): cast as an update value is cast (the
 * path's setters and SchemaType; for an array of scalars the element's),
 * then indexInput() with the path's normalisers, so a lookup computes
 * exactly the index input its write stored.
 */
function indexValues(s, value) {
  // (A ciphertext is compared as stored, never decrypted to be indexed.)
  if (isEncrypted(value)) throw refused(s, `${describeValue(value)} inside an array`);
  const plain = plainOf(s.ctx, s.leaf, value, true);
  if (plain === null || plain === undefined || isEncrypted(plain))
    throw refused(s, `${describeValue(plain)} inside an array`);
  return indexValuesAll(s.ctx, s.entry, plain);
}

/** `[[a1, a2], [b1, b2]]` (per element, per version) -> `[[a1, b1], [a2, b2]]` (per version). */
function transpose(rows) {
  return rows[0].map((_, version) => rows.map((row) => row[version]));
}

/** Fragments that must all hold: one object when their keys differ, else `$and`. */
function and(fragments) {
  if (fragments.length === 1) return fragments[0];
  const out = {};
  for (const fragment of fragments) {
    for (const key of Object.keys(fragment)) if (Object.hasOwn(out, key)) return { $and: fragments };
    Object.assign(out, fragment);
  }
  return out;
}

function refused(s, what, why) {
  return unsupportedSearch(s.ctx, s.leaf.path, what, why);
}

function refusedUpsert(s) {
  return unsupportedSearch(
    s.ctx,
    s.leaf.path,
    'an equality in an upsert filter',
    'an inserted document would get the index value without the encrypted value; ' +
      `assign the path in the update too ($set or $setOnInsert: { '${s.leaf.path}': … })`,
  );
}

module.exports = { searchEntryOf, searchCondition, isOperatorObject };
