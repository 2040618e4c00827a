'use strict';

/**
 * Filters. A filter that compares an encrypted path with anything but null
 * or a ciphertext would send the plaintext to the server and never match
 * (encryption is randomized); it is refused. An upsert would also copy such
 * an equality into the inserted document.
 *
 * Invariant: a refused filter throws UNSUPPORTED_QUERY before anything is
 * sent; conditions that send nothing of a plaintext ($exists, $type, $size,
 * null, stored ciphertexts) pass.
 */

const { isEncrypted } = require('../../core');
const { forEachAtPath } = require('../../paths');
const { normalizeKey, relate, relatedLeafPath } = require('./path-index');
const { unsupportedQuery, isPlainObject } = require('./values');

const SAFE_CONDITION_OPERATORS = new Set(['$exists', '$type', '$size']);

function isSafeValue(value) {
  return value === null || value === undefined || value === '' || isEncrypted(value);
}

/** A condition on an encrypted leaf that sends nothing of a plaintext. */
function isSafeLeafCondition(condition) {
  if (isSafeValue(condition)) return true;
  if (condition === null || typeof condition !== 'object' || Array.isArray(condition) || !isPlainObject(condition))
    return false;
  const keys = Object.keys(condition);
  if (keys.length === 0 || keys.some((k) => k[0] !== '$')) return false;
  return keys.every((op) => {
    const v = condition[op];
    if (SAFE_CONDITION_OPERATORS.has(op)) return true;
    if (op === '$eq' || op === '$ne') return isSafeValue(v);
    if (op === '$in' || op === '$nin' || op === '$all') return Array.isArray(v) && v.every(isSafeValue);
    if (op === '$not' || op === '$elemMatch') return isSafeLeafCondition(v);
    return false;
  });
}

/**
 * Refuses a filter that would send the plaintext of an encrypted path.
 * `base` is the path the filter's keys are relative to ($elemMatch, $pull).
 */
function checkFilter(ctx, filter, base = '') {
  if (filter === null || typeof filter !== 'object' || ctx.index.leafList.length === 0) return;
  for (const [key, condition] of Object.entries(filter)) {
    if (key === '$and' || key === '$or' || key === '$nor') {
      if (Array.isArray(condition)) for (const sub of condition) checkFilter(ctx, sub, base);
      continue;
    }
    if (key === '$expr') {
      checkExpression(ctx, condition);
      continue;
    }
    if (key[0] === '$') continue;
    checkCondition(ctx, base ? `${base}.${key}` : key, condition, false);
  }
}

function checkCondition(ctx, key, condition, isPullOnDocuments) {
  const { path } = normalizeKey(ctx.index, key);
  const relation = relate(ctx.index, path);
  if (!relation) return;
  if (relation.kind === 'inside') throw unsupportedQuery(ctx, relation.leaf.path);
  if (relation.kind === 'leaf') {
    if (!isSafeLeafCondition(condition)) throw unsupportedQuery(ctx, relation.leaf.path);
    return;
  }
  // A container: operators, $elemMatch on a document array, or a whole
  // subdocument to compare with.
  const container = relation.container;
  if (condition === null || typeof condition !== 'object') return;
  const entries = condition instanceof Map ? [...condition] : Object.entries(condition);
  const operators = entries.length > 0 && entries.every(([k]) => typeof k === 'string' && k[0] === '$');
  if (!operators) {
    if (isPullOnDocuments && container.kind === 'docarray') {
      // $pull: { ids: { idType: 'x' } } is a condition on each element.
      checkFilter(ctx, condition, container.path);
      return;
    }
    refuseEmbeddedPlaintext(ctx, container, condition);
    return;
  }
  for (const [op, operand] of entries) {
    if (op === '$elemMatch') checkFilter(ctx, operand, container.path);
    else if (op === '$not') checkCondition(ctx, key, operand, isPullOnDocuments);
    else if (SAFE_CONDITION_OPERATORS.has(op)) continue;
    else for (const v of Array.isArray(operand) ? operand : [operand]) refuseEmbeddedPlaintext(ctx, container, v);
  }
}

/** A whole subdocument (or Map) in a filter: any plaintext at an encrypted path in it is refused. */
function refuseEmbeddedPlaintext(ctx, container, value) {
  if (value === null || typeof value !== 'object') return;
  for (const leaf of ctx.index.under.get(container.path)) {
    forEachAtPath(value, leaf.path.slice(container.path.length + 1), (v) => {
      if (!isSafeValue(v)) throw unsupportedQuery(ctx, leaf.path);
    });
  }
}

/** `$expr` can compare an encrypted path with anything; refuse one that names one. */
function checkExpression(ctx, expression) {
  const visit = (node) => {
    if (typeof node === 'string') {
      if (node.startsWith('$') && !node.startsWith('$$')) {
        const relation = relate(ctx.index, normalizeKey(ctx.index, node.slice(1)).path);
        if (relation) throw unsupportedQuery(ctx, relatedLeafPath(ctx.index, relation));
      }
    } else if (Array.isArray(node)) {
      node.forEach(visit);
    } else if (node !== null && typeof node === 'object' && isPlainObject(node)) {
      Object.values(node).forEach(visit);
    }
  };
  visit(expression);
}

module.exports = { checkFilter, checkCondition };
