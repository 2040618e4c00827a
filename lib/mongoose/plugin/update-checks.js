'use strict';

/**
 * The parts of a query update that cannot be rewritten, only checked:
 * operators that would compute on a ciphertext ($inc, $min, $rename…),
 * `$pull` conditions, update pipelines and `arrayFilters`.
 *
 * Invariant: anything that would send a plaintext of an encrypted path, or
 * make the server compute on a ciphertext, throws (UNSUPPORTED_OPERATOR or
 * UNSUPPORTED_QUERY) before anything is sent.
 */

const { codes } = require('../../core/errors');
const { normalizeKey, relate, relatedLeafPath } = require('./path-index');
const { unsupportedOperator } = require('./values');
const { checkFilter, checkCondition } = require('./filters');

/** Update operators whose values would have to be compared with or computed from a plaintext. */
const REFUSED_WHY = {
  $inc: 'an encrypted value cannot be incremented on the server',
  $mul: 'an encrypted value cannot be multiplied on the server',
  $min: 'the server cannot compare ciphertexts by their plaintext',
  $max: 'the server cannot compare ciphertexts by their plaintext',
  $bit: 'the server cannot do bitwise operations on a ciphertext',
  $currentDate: 'the server would store the date in clear',
  $rename: 'renaming would move a ciphertext out of, or a plaintext into, an encrypted path',
  $pullAll: 'ciphertexts are randomized, so elements cannot be matched by value',
};

/** Any other operator (`$inc`, `$rename`…): refused on an encrypted path or a container of one. */
function checkOtherOperator(ctx, operator, value, ids) {
  for (const [k, v] of Object.entries(value)) {
    for (const target of operator === '$rename' && typeof v === 'string' ? [k, v] : [k]) {
      const relation = relate(ctx.index, normalizeKey(ctx.index, target, ids).path);
      if (relation) {
        throw unsupportedOperator(
          ctx,
          operator,
          relatedLeafPath(ctx.index, relation),
          REFUSED_WHY[operator] || 'the operator cannot be applied to a ciphertext',
        );
      }
    }
  }
}

/** `$pull` by value on encrypted elements cannot match; on a document array, by a condition on its other fields, it can. */
function checkPull(ctx, key, condition, ids) {
  const { path } = normalizeKey(ctx.index, key, ids);
  const relation = relate(ctx.index, path);
  if (!relation) return;
  if (relation.kind !== 'container') {
    throw unsupportedOperator(
      ctx,
      '$pull',
      relation.leaf.path,
      'ciphertexts are randomized, so elements cannot be matched by value',
    );
  }
  try {
    checkCondition(ctx, relation.container.path, condition, true);
  } catch (err) {
    if (err.code !== codes.UNSUPPORTED_QUERY) throw err;
    throw unsupportedOperator(
      ctx,
      '$pull',
      err.path,
      'the condition tests an encrypted field, which cannot match a ciphertext',
    );
  }
}

/**
 * An update pipeline can compute anything from anything, so a stage that
 * writes an encrypted path (or may rewrite the whole document) is refused.
 */
function refusePipeline(ctx, pipeline) {
  if (ctx.index.leafList.length === 0) return;
  for (const stage of pipeline) {
    for (const [name, spec] of Object.entries(stage || {})) {
      if ((name === '$set' || name === '$addFields') && spec && typeof spec === 'object') {
        for (const key of Object.keys(spec)) {
          const relation = relate(ctx.index, normalizeKey(ctx.index, key).path);
          if (relation) {
            throw unsupportedOperator(
              ctx,
              `update pipeline ${name}`,
              relatedLeafPath(ctx.index, relation),
              'an aggregation pipeline would write the value in clear',
            );
          }
        }
      } else if (name !== '$unset') {
        throw unsupportedOperator(
          ctx,
          `update pipeline ${name}`,
          ctx.index.leafList[0].path,
          'this stage can rewrite encrypted paths with values computed in clear',
        );
      }
    }
  }
}

/** `arrayFilters` conditions on an encrypted element field would send the plaintext. */
function checkArrayFilters(ctx, arrayFilters, ids) {
  if (!Array.isArray(arrayFilters)) return;
  const check = (filter) => {
    if (!filter || typeof filter !== 'object') return;
    for (const [key, condition] of Object.entries(filter)) {
      if (key === '$and' || key === '$or' || key === '$nor') {
        if (Array.isArray(condition)) condition.forEach(check);
        continue;
      }
      const [id, ...rest] = key.split('.');
      const base = ids.get(id);
      if (base === undefined) continue;
      checkFilter(ctx, { [rest.length ? `${base}.${rest.join('.')}` : base]: condition });
    }
  };
  arrayFilters.forEach(check);
}

module.exports = { checkOtherOperator, checkPull, refusePipeline, checkArrayFilters };
