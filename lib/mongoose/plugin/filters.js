'use strict';

/**
 * Filters. A filter that compares an encrypted path with anything but null
 * or a ciphertext would send the plaintext to the server and never match
 * (encryption is randomized). On a searchable path (issue 20) such a
 * comparison is rewritten to the path's blind index (search-conditions.js);
 * on any other encrypted path it is refused. An upsert would also copy such
 * an equality into the inserted document.
 *
 * Invariants: a filter is rewritten or refused before anything is sent, and
 * the caller's filter objects are never changed (a new filter is returned);
 * conditions that send nothing of a plaintext ($exists, $type, $size, null,
 * stored ciphertexts) pass as they are; nothing but an index value ever
 * stands for a plaintext in the rewritten filter.
 */

const { isEncrypted } = require('../../core');
const { forEachAtPath } = require('../../paths');
const { normalizeKey, relate, relatedLeafPath } = require('./path-index');
const { unsupportedQuery, unsupportedSearch, isPlainObject } = require('./values');
const { searchEntryOf, searchCondition, isOperatorObject } = require('./search-conditions');

const SAFE_CONDITION_OPERATORS = new Set(['$exists', '$type', '$size']);
const LOGICAL = new Set(['$and', '$or', '$nor']);

/** `allowEmpty`: '' counts as safe (what the foundation's helpers left for empty values). */
function isSafeValue(value, allowEmpty = true) {
  return value === null || value === undefined || (allowEmpty && value === '') || isEncrypted(value);
}

/** A condition on an encrypted leaf that sends nothing of a plaintext. */
function isSafeLeafCondition(condition, allowEmpty = true) {
  if (isSafeValue(condition, allowEmpty)) return true;
  if (!isOperatorObject(condition)) return false;
  return Object.keys(condition).every((op) => {
    const v = condition[op];
    if (SAFE_CONDITION_OPERATORS.has(op)) return true;
    if (op === '$eq' || op === '$ne') return isSafeValue(v, allowEmpty);
    if (op === '$in' || op === '$nin' || op === '$all')
      return Array.isArray(v) && v.every((x) => isSafeValue(x, allowEmpty));
    if (op === '$not' || op === '$elemMatch') return isSafeLeafCondition(v, allowEmpty);
    return false;
  });
}

/**
 * The filter to send instead of `filter`: conditions on searchable paths
 * rewritten to their blind indexes, everything else as it was; throws
 * UNSUPPORTED_QUERY for what would send a plaintext.
 *
 * `options`: `base` (the path keys are relative to, inside $elemMatch);
 * `upsert` and `assigned(leafPath)` (an upsert copies filter equalities
 * into the inserted document, so an equality on a searchable path is
 * refused there unless the update assigns the path itself); `search: false`
 * refuses instead of rewriting (filters the plugin cannot rewrite:
 * `arrayFilters`, `$pull` conditions); `trust(condition)` marks a condition
 * the plugin built as trusted for Mongoose's sanitizeFilter (compat.js
 * trustFor), which would otherwise wrap it in `$eq`.
 */
function rewriteFilter(ctx, filter, options = {}) {
  const opts = {
    base: '',
    search: true,
    upsert: false,
    assigned: () => false,
    negated: false,
    ...options,
  };
  const out = rewriteObject(ctx, filter, opts);
  if (options.trust && out !== filter) trustConditions(out, options.trust);
  return out;
}

function hasOperators(value) {
  return !Array.isArray(value) && isPlainObject(value) && Object.keys(value).some((k) => k[0] === '$');
}

/**
 * Marks every field condition of a rewritten filter trusted: Mongoose
 * sanitized the application's conditions before the plugin read them (see
 * hooks/queries.js), so what is left are the plugin's own and the
 * application's trusted or `$eq` ones, none to wrap again.
 */
function trustConditions(filter, trust) {
  if (filter === null || typeof filter !== 'object') return;
  for (const [key, value] of Object.entries(filter)) {
    if (LOGICAL.has(key) && Array.isArray(value)) value.forEach((sub) => trustConditions(sub, trust));
    else if (key[0] !== '$' && value !== null && typeof value === 'object' && hasOperators(value)) trust(value);
  }
}

function rewriteObject(ctx, filter, opts) {
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter) || ctx.index.leafList.length === 0)
    return filter;
  const out = {};
  const more = []; // clauses whose keys are taken already: joined with $and
  const put = (key, value) => {
    if (Object.hasOwn(out, key)) more.push({ [key]: value });
    else out[key] = value;
  };
  for (const [key, condition] of Object.entries(filter)) {
    if (LOGICAL.has(key)) {
      const sub = key === '$nor' ? { ...opts, negated: !opts.negated } : opts;
      put(key, Array.isArray(condition) ? condition.map((c) => rewriteObject(ctx, c, sub)) : condition);
    } else if (key === '$expr') {
      checkExpression(ctx, condition);
      put(key, condition);
    } else if (key[0] === '$') {
      put(key, condition);
    } else {
      const fragment = rewriteField(ctx, key, condition, opts);
      for (const [k, v] of Object.entries(fragment)) put(k, v);
    }
  }
  if (more.length > 0) {
    if (Object.hasOwn(out, '$and') && !Array.isArray(out.$and)) more.unshift({ $and: out.$and });
    out.$and = Array.isArray(out.$and) ? [...out.$and, ...more] : more;
  }
  return out;
}

/** One `key: condition` of a filter, as a filter fragment (keys relative to `opts.base`). */
function rewriteField(ctx, key, condition, opts) {
  const full = opts.base ? `${opts.base}.${key}` : key;
  const { path, element } = normalizeKey(ctx.index, full);
  const relation = relate(ctx.index, path);
  if (!relation) return { [key]: condition };
  if (relation.kind === 'inside') {
    const entry = searchEntryOf(ctx, relation.leaf);
    if (entry)
      throw unsupportedSearch(
        ctx,
        relation.leaf.path,
        `'${key}', a path inside the value,`,
        'its value is compared as a whole',
      );
    throw unsupportedQuery(ctx, relation.leaf.path);
  }
  if (relation.kind === 'leaf') {
    const leaf = relation.leaf;
    const entry = opts.search ? searchEntryOf(ctx, leaf) : undefined;
    if (isSafeLeafCondition(condition, !entry)) return { [key]: condition };
    if (!entry) throw unsupportedQuery(ctx, leaf.path);
    return searchCondition(ctx, entry, leaf, { key, element, condition, opts });
  }
  return { [key]: rewriteContainer(ctx, relation.container, key, condition, opts, false) };
}

/**
 * A condition on a container above encrypted leaves: operators,
 * `$elemMatch` on a document array (its filter is rewritten like any
 * other), or a whole subdocument to compare with (refused when it holds a
 * plaintext at an encrypted path). Returns the condition to send.
 */
function rewriteContainer(ctx, container, key, condition, opts, isPullOnDocuments) {
  if (condition === null || typeof condition !== 'object') return condition;
  const entries = condition instanceof Map ? [...condition] : Object.entries(condition);
  const operators = entries.length > 0 && entries.every(([k]) => typeof k === 'string' && k[0] === '$');
  if (!operators) {
    if (isPullOnDocuments && container.kind === 'docarray') {
      // $pull: { ids: { idType: 'x' } } is a condition on each element.
      return rewriteObject(ctx, condition, { ...opts, base: container.path });
    }
    refuseEmbeddedPlaintext(ctx, container, condition);
    return condition;
  }
  const out = {};
  for (const [op, operand] of entries) {
    if (op === '$elemMatch') {
      out[op] = rewriteObject(ctx, operand, { ...opts, base: container.path });
    } else if (op === '$not') {
      out[op] = rewriteContainer(ctx, container, key, operand, { ...opts, negated: !opts.negated }, isPullOnDocuments);
    } else if (op === '$all' && Array.isArray(operand) && container.kind === 'docarray') {
      // { ids: { $all: [{ $elemMatch: … }, …] } }: each $elemMatch is a filter on the elements.
      out[op] = operand.map((item) => {
        if (isOperatorObject(item) && Object.keys(item).length === 1 && item.$elemMatch)
          return { $elemMatch: rewriteObject(ctx, item.$elemMatch, { ...opts, base: container.path }) };
        refuseEmbeddedPlaintext(ctx, container, item);
        return item;
      });
    } else {
      if (!SAFE_CONDITION_OPERATORS.has(op))
        for (const v of Array.isArray(operand) ? operand : [operand]) refuseEmbeddedPlaintext(ctx, container, v);
      out[op] = operand;
    }
  }
  return out;
}

/** A whole subdocument (or Map) in a filter: any plaintext at an encrypted path in it is refused. */
function refuseEmbeddedPlaintext(ctx, container, value) {
  if (value === null || typeof value !== 'object') return;
  for (const leaf of ctx.index.under.get(container.path)) {
    forEachAtPath(value, leaf.path.slice(container.path.length + 1), (v) => {
      if (isSafeValue(v)) return;
      if (searchEntryOf(ctx, leaf)) {
        throw unsupportedSearch(
          ctx,
          leaf.path,
          `a whole '${container.path}' value`,
          `only its own conditions are rewritten: filter on '${leaf.path}' (or with $elemMatch) instead`,
        );
      }
      throw unsupportedQuery(ctx, leaf.path);
    });
  }
}

/** `$expr` can compare an encrypted path with anything; refuse one that names one. */
function checkExpression(ctx, expression) {
  const visit = (node) => {
    if (typeof node === 'string') {
      if (node.startsWith('$') && !node.startsWith('$$')) {
        const relation = relate(ctx.index, normalizeKey(ctx.index, node.slice(1)).path);
        if (!relation) return;
        const path = relatedLeafPath(ctx.index, relation);
        const leaf = ctx.index.leaves.get(path);
        if (leaf && searchEntryOf(ctx, leaf)) throw unsupportedSearch(ctx, path, '$expr');
        throw unsupportedQuery(ctx, path);
      }
    } else if (Array.isArray(node)) {
      node.forEach(visit);
    } else if (node !== null && typeof node === 'object' && isPlainObject(node)) {
      Object.values(node).forEach(visit);
    }
  };
  visit(expression);
}

/**
 * Refuses a filter that would send the plaintext of an encrypted path,
 * without rewriting (searchable paths are refused too): for filters the
 * plugin checks but does not send itself (`arrayFilters`). `base` is the
 * path the filter's keys are relative to.
 */
function checkFilter(ctx, filter, base = '') {
  rewriteFilter(ctx, filter, { base, search: false });
}

/** checkFilter() for one condition; `isPullOnDocuments`: a `$pull` condition on a document array. */
function checkCondition(ctx, key, condition, isPullOnDocuments) {
  const opts = { base: '', search: false, upsert: false, assigned: () => false, negated: false };
  const { path } = normalizeKey(ctx.index, key);
  const relation = relate(ctx.index, path);
  if (relation && relation.kind === 'container')
    rewriteContainer(ctx, relation.container, key, condition, opts, isPullOnDocuments);
  else rewriteField(ctx, key, condition, opts);
}

module.exports = { rewriteFilter, checkFilter, checkCondition };
