'use strict';

/**
 * Blind indexes (issue 20) in query updates: assignSearchable(),
 * appendSearchable() and the `$unset`, `$pop`, `$pull` helpers add the
 * index's own key to the update (`SearchExtras`) at the same positional path
 * as the searchable value's key (updates.js calls them key by key).
 *
 * Invariants: an index key is computed from the plaintext encrypted for the
 * same update; a shape whose index could not follow its value ($pull by
 * value or $[name] on an encrypted array of scalars, a write to an index
 * path not beside its leaf) throws before anything is sent.
 */

const { normalizeKey } = require('./path-index');
const { INDEX_SUFFIX } = require('./search-paths');
const { encryptLeaf, unsupportedOperator, isPlainObject } = require('./values');
const { indexValue, indexValues, indexValuesAll, plainOf, leafNameOf } = require('./search-writes');

/**
 * Keys the rewrite adds to a query update for index paths, per operator;
 * merged into the update when it is complete.
 */
class SearchExtras {
  /** `written`: the keys the update assigns, unsets or appends to (index path writes are checked against them). */
  constructor(written = new Set()) {
    this.byOperator = new Map();
    this.written = written;
  }

  add(operator, key, value) {
    let keys = this.byOperator.get(operator);
    if (!keys) this.byOperator.set(operator, (keys = {}));
    keys[key] = value;
  }

  /** Adds the index keys; one the update named itself (allowed beside its leaf) is replaced, wherever it was. */
  mergeInto(update) {
    for (const [operator, keys] of this.byOperator) {
      for (const key of Object.keys(keys)) {
        delete update[key];
        for (const op of ['$set', '$setOnInsert', '$unset', '$push', '$addToSet', '$pop']) {
          if (op !== operator && update[op] && Object.hasOwn(update[op], key)) delete update[op][key];
        }
      }
      update[operator] = { ...(update[operator] || {}), ...keys };
    }
    return update;
  }
}

/** The keys an update assigns, unsets or appends to (top-level keys included). */
function writtenKeysOf(update) {
  const out = new Set();
  for (const [key, value] of Object.entries(update)) {
    if (key[0] !== '$') out.add(key);
    else if (
      ['$set', '$setOnInsert', '$unset', '$push', '$addToSet', '$pop'].includes(key) &&
      value !== null &&
      typeof value === 'object'
    ) {
      for (const k of Object.keys(value)) out.add(k);
    }
  }
  return out;
}

/** The update key of a leaf's index: the key's segment that names the leaf gets the suffix (positions kept). */
function siblingKey(ctx, key, leaf) {
  const { segments, last } = normalizeKey(ctx.index, key);
  const out = [...segments];
  out[last] = `${leafNameOf(leaf.search)}${INDEX_SUFFIX}`;
  return out.join('.');
}

function refuseArrayFilterOnScalars(ctx, operator, key, leaf) {
  const { segments, last } = normalizeKey(ctx.index, key);
  if (segments.slice(last + 1).some((s) => /^\$\[[A-Za-z0-9_]+\]$/.test(s))) {
    throw unsupportedOperator(
      ctx,
      `${operator} with $[identifier]`,
      leaf.path,
      'the elements of a searchable encrypted array and of its index cannot be matched by the same arrayFilters ' +
        'condition; set the element by its position or $[], or read the document, change it and save()',
    );
  }
}

/**
 * `$set`/`$setOnInsert` (and top-level keys) of a searchable leaf: returns
 * the encrypted value and adds the index's key (a `$unset` of it when the
 * value is null).
 */
function assignSearchable(ctx, operator, key, leaf, value, element, extras) {
  const entry = leaf.search;
  const sibling = siblingKey(ctx, key, leaf);
  if (entry.kind === 'array' && element) {
    refuseArrayFilterOnScalars(ctx, operator, key, leaf);
    const plain = plainOf(ctx, leaf, value, true);
    extras.add(operator, sibling, indexValue(ctx, entry, plain));
    return encryptLeaf(ctx, leaf, plain, false);
  }
  if (value === null || value === undefined) {
    if (operator === '$set') extras.add('$unset', sibling, '');
    return value;
  }
  if (entry.kind === 'array') {
    const list = Array.isArray(value) ? value : [value];
    const plains = list.map((v) => plainOf(ctx, leaf, v, true));
    extras.add(operator, sibling, indexValues(ctx, entry, plains));
    const stored = plains.map((p) => encryptLeaf(ctx, leaf, p, false));
    return Array.isArray(value) ? stored : stored[0];
  }
  const plain = plainOf(ctx, leaf, value, true);
  if (plain === null || plain === undefined) {
    if (operator === '$set') extras.add('$unset', sibling, '');
    return plain;
  }
  extras.add(operator, sibling, indexValue(ctx, entry, plain));
  return encryptLeaf(ctx, leaf, plain, false);
}

/**
 * `$push`/`$addToSet` of elements of a searchable encrypted array: returns
 * the encrypted operand and `$push`es their index values to the index array
 * with the same modifiers ($position, $slice). `$addToSet` cannot skip
 * duplicates of randomized ciphertexts, so it adds every element, and so
 * does the index.
 */
function appendSearchable(ctx, operator, key, leaf, value, extras) {
  const entry = leaf.search;
  const sibling = siblingKey(ctx, key, leaf);
  refuseArrayFilterOnScalars(ctx, operator, key, leaf);
  const each = value !== null && typeof value === 'object' && isPlainObject(value) && Object.hasOwn(value, '$each');
  const list = each ? (Array.isArray(value.$each) ? value.$each : [value.$each]) : [value];
  const plains = list.map((v) => plainOf(ctx, leaf, v, true));
  const indexes = indexValues(ctx, entry, plains);
  const stored = plains.map((p) => encryptLeaf(ctx, leaf, p, false));
  const modifiers = each ? { ...value } : {};
  delete modifiers.$each;
  extras.add('$push', sibling, { ...modifiers, $each: indexes });
  return each ? { ...value, $each: stored } : stored[0];
}

/** `$unset` of a searchable leaf (or one element of its array) unsets its index too. */
function unsetSearchable(ctx, key, leaf, extras) {
  extras.add('$unset', siblingKey(ctx, key, leaf), '');
}

/** `$pop` of a searchable encrypted array pops its index array at the same end. */
function popSearchable(ctx, key, leaf, value, extras) {
  extras.add('$pop', siblingKey(ctx, key, leaf), value);
}

/** `$pull` by value on a searchable encrypted array: refused (see the module comment). */
function refusePullByValue(ctx, leaf) {
  return unsupportedOperator(
    ctx,
    '$pull',
    leaf.path,
    'elements of an encrypted array cannot be matched by value, and pulling from its index alone would leave ' +
      'the two arrays out of step; read the document, remove the element (doc.array.pull(value)) and save()',
  );
}

/**
 * `$pull: { <document array>: { <field>: value } }`: conditions on searchable
 * fields of the elements become conditions on their index paths (every live
 * index-key version: `$in`); `$eq` and `$in` are rewritten. Returns a new
 * condition; anything else on an encrypted field is left to checkPull, which
 * refuses it.
 */
function rewritePullCondition(ctx, container, condition) {
  if (condition === null || typeof condition !== 'object' || !isPlainObject(condition)) return condition;
  let out = null;
  for (const [key, operand] of Object.entries(condition)) {
    if (key[0] === '$') continue;
    const rewritten = rewriteEquality(ctx, `${container.path}.${key}`, key, operand);
    if (!rewritten) continue;
    out = out || { ...condition };
    delete out[key];
    out[rewritten[0]] = rewritten[1];
  }
  return out || condition;
}

/**
 * An equality on the searchable leaf at `path` (written as `key`) as the
 * equivalent condition on its index: [index key, { $in: index values of
 * every live index-key version }]; null when `path` is not a searchable
 * scalar or container, or the operand is not an equality.
 */
function rewriteEquality(ctx, path, key, operand) {
  const leaf = ctx.index.leaves.get(normalizeKey(ctx.index, path).path);
  if (!leaf || !leaf.search || leaf.search.kind === 'array') return null;
  const values = conditionValues(operand);
  if (values === undefined) return null;
  const indexes = [];
  for (const v of values) {
    const plain = plainOf(ctx, leaf, v, true);
    if (plain !== null && plain !== undefined) indexes.push(...indexValuesAll(ctx, leaf.search, plain));
  }
  const parts = key.split('.');
  parts[parts.length - 1] = `${parts[parts.length - 1]}${INDEX_SUFFIX}`;
  return [parts.join('.'), { $in: indexes }];
}

/**
 * `arrayFilters` conditions on searchable fields of document array elements
 * (`{ 'el.idNumber': 'P1' }`, `$eq`, `$in`, inside `$and`/`$or`/`$nor`)
 * become conditions on their index values. Returns new arrayFilters (the
 * caller's are not changed); anything else is left to checkArrayFilters,
 * which refuses it on an encrypted field.
 */
function rewriteArrayFilters(ctx, update, arrayFilters) {
  if (!Array.isArray(arrayFilters) || ctx.index.search.size === 0) return arrayFilters;
  const ids = new Map(); // $[name] -> array path, from the update's keys
  for (const [key, value] of Object.entries(update || {})) {
    if (key[0] !== '$') normalizeKey(ctx.index, key, ids);
    else if (value !== null && typeof value === 'object')
      for (const k of Object.keys(value)) normalizeKey(ctx.index, k, ids);
  }
  const rewrite = (filter) => {
    if (filter === null || typeof filter !== 'object' || !isPlainObject(filter)) return filter;
    const out = {};
    for (const [key, condition] of Object.entries(filter)) {
      if ((key === '$and' || key === '$or' || key === '$nor') && Array.isArray(condition)) {
        out[key] = condition.map(rewrite);
        continue;
      }
      const [id, ...rest] = key.split('.');
      const base = ids.get(id);
      const rewritten =
        base !== undefined && rest.length ? rewriteEquality(ctx, `${base}.${rest.join('.')}`, key, condition) : null;
      if (rewritten) out[rewritten[0]] = rewritten[1];
      else out[key] = condition;
    }
    return out;
  };
  return arrayFilters.map(rewrite);
}

/** The values an equality (`v`, `{ $eq: v }`, `{ $in: [...] }`) names; undefined for anything else. */
function conditionValues(operand) {
  if (operand === null || operand === undefined) return undefined;
  if (typeof operand !== 'object' || !isPlainObject(operand)) return [operand];
  const keys = Object.keys(operand);
  if (keys.length === 1 && keys[0] === '$eq' && operand.$eq !== null) return [operand.$eq];
  if (keys.length === 1 && keys[0] === '$in' && Array.isArray(operand.$in)) return operand.$in;
  if (keys.some((k) => k[0] === '$')) return undefined;
  return [operand];
}

/**
 * A write to an index path itself would store an index out of step with its
 * value: refused, unless the same update writes the leaf at the same place
 * (`extras.written`: what bulkSave() sends for a saved document), where the
 * index computed from the leaf's value replaces it.
 */
function refuseIndexPathWrite(ctx, operator, key, extras) {
  if (ctx.index.indexPaths.size === 0) return;
  const { path, segments, last } = normalizeKey(ctx.index, key);
  if (!ctx.index.indexPaths.has(path)) return;
  if (extras && segments[last].endsWith(INDEX_SUFFIX)) {
    const leafKey = [...segments];
    leafKey[last] = segments[last].slice(0, -INDEX_SUFFIX.length);
    if (extras.written.has(leafKey.join('.'))) return;
  }
  throw unsupportedOperator(
    ctx,
    operator,
    path,
    'index paths are written by fieldEncryption with the value they index; write the searchable path instead',
  );
}

module.exports = {
  SearchExtras,
  writtenKeysOf,
  assignSearchable,
  appendSearchable,
  unsetSearchable,
  popSearchable,
  refusePullByValue,
  rewritePullCondition,
  rewriteArrayFilters,
  refuseIndexPathWrite,
};
