'use strict';

/**
 * The query hooks: updates and replacements, reads and deletes, and
 * aggregations. Each factory takes the plugin's `{ options, auto }` and
 * returns the named function fieldEncryption() registers; the operation
 * lists say which query operations get which hook.
 *
 * Invariants: every filter is rewritten (searchable paths, filters.js) or
 * refused, and every update rewritten or refused, before Mongoose casts and
 * sends it; lean results are decrypted (auto mode) by a query transform.
 */

const {
  named,
  mongooseHook,
  distinctFieldOf,
  sanitizesFilter,
  sanitizeQueryFilter,
  trustFor,
} = require('../../compat');
const { modelForObject, queryIndex, normalizeKey, relate, relatedLeafPath } = require('../path-index');
const { contextFor, queryContext } = require('../context');
const { encryptUpdate, encryptWholeDocument } = require('../updates');
const { rewriteFilter } = require('../filters');
const { leanResultReader } = require('../reads');
const { LEAN_DECRYPTION } = require('../state');
const { rewriteArrayFilters } = require('../search-updates');
const { unsupportedDistinct } = require('../values');

const QUERY_WRITES = ['updateOne', 'updateMany', 'findOneAndUpdate', 'replaceOne', 'findOneAndReplace'];
const QUERY_READS = ['find', 'findOne', 'findOneAndDelete', 'countDocuments', 'deleteOne', 'deleteMany', 'distinct'];
const RETURNS_DOCUMENTS = new Set(['find', 'findOne', 'findOneAndDelete', 'findOneAndUpdate', 'findOneAndReplace']);
const QUERY_ONLY = { document: false, query: true };

/** Aggregation stages before which a `$match` still filters the model's own documents. */
const DOCUMENT_PRESERVING_STAGES = new Set(['$match', '$sort', '$limit', '$skip', '$sample']);

/**
 * updateOne, updateMany, findOneAndUpdate (findByIdAndUpdate), replaceOne,
 * findOneAndReplace, doc.updateOne(), upserts.
 */
function encryptQueryUpdate(plugin) {
  return mongooseHook('fieldcryptEncryptUpdate', (query) => {
    const filter = queryFilter(query);
    const ctx = queryContext(plugin.options, query, filter);
    const update = query.getUpdate();
    const queryOptions = query.getOptions();
    const replacement = query.op === 'replaceOne' || query.op === 'findOneAndReplace';
    // A replacement upsert takes nothing from its filter but _id.
    query.setQuery(
      rewriteFilter(ctx, filter, {
        upsert: Boolean(queryOptions.upsert) && !replacement,
        assigned: assignedBy(ctx, update),
        trust: trustFor(query.model),
      }),
    );
    if (replacement) {
      const owner = modelForObject(query.model, filter);
      query.setUpdate(encryptWholeDocument(ctx, owner, update, { skipId: true }));
    } else {
      const mongooseOptions = query.mongooseOptions();
      // Conditions on searchable fields of elements compare their blind indexes (search-updates.js).
      const arrayFilters = rewriteArrayFilters(ctx, update, queryOptions.arrayFilters);
      if (arrayFilters !== queryOptions.arrayFilters) query.setOptions({ arrayFilters });
      query.setUpdate(
        encryptUpdate(ctx, update, {
          filter,
          upsert: queryOptions.upsert,
          setDefaultsOnInsert:
            queryOptions.setDefaultsOnInsert ??
            mongooseOptions.setDefaultsOnInsert ??
            query.model.base.options.setDefaultsOnInsert,
          arrayFilters,
        }),
      );
    }
    decryptLeanResults(plugin, query, ctx);
  });
}

/**
 * find, findOne (findById, exists), findOneAndDelete, countDocuments,
 * deleteOne, deleteMany, distinct. distinct() of an encrypted path would
 * return one ciphertext per document (encryption is randomized): refused.
 */
function checkQueryFilter(plugin) {
  return mongooseHook('fieldcryptCheckFilter', (query) => {
    const filter = queryFilter(query);
    const ctx = queryContext(plugin.options, query, filter);
    if (query.op === 'distinct') refuseDistinctOfEncrypted(ctx, distinctFieldOf(query));
    query.setQuery(rewriteFilter(ctx, filter, { trust: trustFor(query.model) }));
    decryptLeanResults(plugin, query, ctx);
  });
}

/**
 * The query's filter, sanitized first when Mongoose will sanitize it
 * (sanitizeFilter): the plugin must read the filter as Mongoose will send
 * it, not rewrite an untrusted operator into a trusted one.
 */
function queryFilter(query) {
  const filter = query.getFilter();
  if (sanitizesFilter(query)) sanitizeQueryFilter(query, filter);
  return filter;
}

function refuseDistinctOfEncrypted(ctx, field) {
  if (typeof field !== 'string' || field === '') return;
  const relation = relate(ctx.index, normalizeKey(ctx.index, field).path);
  if (relation) throw unsupportedDistinct(ctx, relatedLeafPath(ctx.index, relation));
}

/**
 * bulkWrite op filters (updateOne, updateMany, replaceOne, deleteOne,
 * deleteMany): rewritten for searchable paths. Registered before the
 * write hook (hooks/writes.js), which then checks the rewritten filters.
 */
function rewriteBulkWriteFilters({ options }) {
  return mongooseHook('fieldcryptRewriteBulkWriteFilters', (model, [ops]) => {
    if (!Array.isArray(ops)) return;
    for (const op of ops) {
      if (!op || typeof op !== 'object') continue;
      const name = BULK_FILTERED.find((n) => op[n] && typeof op[n] === 'object');
      if (name === undefined) continue;
      const spec = op[name];
      const ctx = contextFor(options, model, model.schema, undefined, queryIndex(model, spec.filter));
      spec.filter = rewriteFilter(ctx, spec.filter, {
        upsert: Boolean(spec.upsert) && (name === 'updateOne' || name === 'updateMany'),
        assigned: assignedBy(ctx, spec.update),
      });
    }
  });
}

const BULK_FILTERED = ['updateOne', 'updateMany', 'replaceOne', 'deleteOne', 'deleteMany'];

/**
 * Whether an update assigns an encrypted leaf (a top-level key, `$set` or
 * `$setOnInsert` of the leaf or of a container above it): then an upsert
 * inserts the leaf's value, and the write side its index value.
 */
function assignedBy(ctx, update) {
  const paths = new Set();
  if (update && typeof update === 'object' && !Array.isArray(update)) {
    for (const [key, value] of Object.entries(update)) {
      if (key[0] !== '$') paths.add(normalizeKey(ctx.index, key).path);
      else if ((key === '$set' || key === '$setOnInsert') && value && typeof value === 'object')
        for (const k of Object.keys(value)) paths.add(normalizeKey(ctx.index, k).path);
    }
  }
  return (leafPath) => {
    for (const p of paths) if (p === leafPath || leafPath.startsWith(`${p}.`)) return true;
    return false;
  };
}

/**
 * Aggregations: a `$match` on the model's documents (before any stage that
 * reshapes them) is a filter like any other, rewritten or refused. Results are not decrypted:
 * their shape is the pipeline's (decryptDocument() for whole documents).
 */
function checkAggregateMatch({ options }) {
  return mongooseHook('fieldcryptCheckAggregateMatch', (aggregate) => {
    const model = aggregate.model();
    if (!model) return;
    const pipeline = aggregate.pipeline();
    for (let i = 0; i < pipeline.length; i++) {
      const stage = pipeline[i];
      const [name] = Object.keys(stage || {});
      if (!DOCUMENT_PRESERVING_STAGES.has(name)) break;
      if (name !== '$match') continue;
      const ctx = contextFor(options, model, model.schema, undefined, queryIndex(model, stage.$match));
      // A new stage object: the application's stays as it was.
      pipeline[i] = { ...stage, $match: rewriteFilter(ctx, stage.$match) };
    }
  });
}

/**
 * Lean results are decrypted by a query transform; a lean cursor's documents
 * by decryptLeanCursorDocument (below) before the same transform sees them.
 */
function decryptLeanResults({ auto }, query, ctx) {
  if (!auto || !RETURNS_DOCUMENTS.has(query.op) || !query.mongooseOptions().lean) return;
  // Once per query: its pre hooks run again when it is executed and then
  // iterated with cursor(), and Mongoose keeps every transform added.
  if (LEAN_DECRYPTION.has(query)) return;
  const read = leanResultReader(ctx, query.model, query.op);
  LEAN_DECRYPTION.set(query, read);
  // A find's single documents come only from a cursor: decryptLeanCursorDocument has read them.
  const cursorDocuments = query.op === 'find';
  query.transform(
    named('fieldcryptDecryptLean', (result) => (cursorDocuments && !Array.isArray(result) ? result : read(result))),
  );
}

/**
 * post('find'), registered first: decrypts a lean cursor's document (Mongoose
 * runs the find post hooks on each one, as `[doc]`). A cursor applies the
 * query's transforms inside a promise callback where a throw (a tampered
 * value, a throwing onDecrypt) is lost and the consumer's next() never
 * settles; an error thrown here fails that next() instead. A lean find that
 * is not a cursor has its result decrypted (and marked) by the transform
 * before the post hooks run, so the reader leaves it as it is.
 */
function decryptLeanCursorDocument() {
  return named('fieldcryptDecryptLeanCursor', function (result) {
    const read = LEAN_DECRYPTION.get(this);
    if (read !== undefined) read(result);
  });
}

module.exports = {
  QUERY_WRITES,
  QUERY_READS,
  QUERY_ONLY,
  encryptQueryUpdate,
  checkQueryFilter,
  rewriteBulkWriteFilters,
  checkAggregateMatch,
  decryptLeanCursorDocument,
};
