'use strict';

/**
 * The query hooks: updates and replacements, reads and deletes, and
 * aggregations. Each factory takes the plugin's `{ options, auto }` and
 * returns the named function fieldEncryption() registers; the operation
 * lists say which query operations get which hook.
 *
 * Invariants: every filter is checked, and every update rewritten or
 * refused, before Mongoose casts and sends it; lean results are decrypted
 * (auto mode) by a query transform.
 */

const { named, mongooseHook } = require('../../compat');
const { modelForObject, queryIndex } = require('../path-index');
const { contextFor, queryContext } = require('../context');
const { encryptUpdate, encryptWholeDocument } = require('../updates');
const { checkFilter } = require('../filters');
const { decryptLeanResult } = require('../reads');
const { LEAN_DECRYPTION } = require('../state');

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
    const filter = query.getFilter();
    const ctx = queryContext(plugin.options, query, filter);
    checkFilter(ctx, filter);
    const update = query.getUpdate();
    const queryOptions = query.getOptions();
    if (query.op === 'replaceOne' || query.op === 'findOneAndReplace') {
      const owner = modelForObject(query.model, filter);
      query.setUpdate(encryptWholeDocument(ctx, owner, update, { skipId: true }));
    } else {
      const mongooseOptions = query.mongooseOptions();
      query.setUpdate(
        encryptUpdate(ctx, update, {
          filter,
          upsert: queryOptions.upsert,
          setDefaultsOnInsert:
            queryOptions.setDefaultsOnInsert ??
            mongooseOptions.setDefaultsOnInsert ??
            query.model.base.options.setDefaultsOnInsert,
          arrayFilters: queryOptions.arrayFilters,
        }),
      );
    }
    decryptLeanResults(plugin, query, ctx);
  });
}

/** find, findOne, findOneAndDelete, countDocuments, deleteOne, deleteMany, distinct. */
function checkQueryFilter(plugin) {
  return mongooseHook('fieldcryptCheckFilter', (query) => {
    const filter = query.getFilter();
    const ctx = queryContext(plugin.options, query, filter);
    checkFilter(ctx, filter);
    decryptLeanResults(plugin, query, ctx);
  });
}

/**
 * Aggregations: a `$match` on the model's documents (before any stage that
 * reshapes them) is a filter like any other. Results are not decrypted:
 * their shape is the pipeline's (decryptDocument() for whole documents).
 */
function checkAggregateMatch({ options }) {
  return mongooseHook('fieldcryptCheckAggregateMatch', (aggregate) => {
    const model = aggregate.model();
    if (!model) return;
    for (const stage of aggregate.pipeline()) {
      const [name] = Object.keys(stage || {});
      if (!DOCUMENT_PRESERVING_STAGES.has(name)) break;
      if (name === '$match')
        checkFilter(contextFor(options, model, model.schema, undefined, queryIndex(model, stage.$match)), stage.$match);
    }
  });
}

/**
 * Lean results are decrypted by a query transform; a lean cursor's documents
 * by decryptLeanCursorDocument (below) before the same transform sees them.
 */
function decryptLeanResults({ auto }, query, ctx) {
  if (!auto || !RETURNS_DOCUMENTS.has(query.op) || !query.mongooseOptions().lean) return;
  const model = query.model;
  const decrypt = named('fieldcryptDecryptLean', (result) =>
    decryptLeanResult({ ...ctx, documentId: undefined }, model, result),
  );
  LEAN_DECRYPTION.set(query, decrypt);
  query.transform(decrypt);
}

/**
 * post('find'), registered first: decrypts a lean cursor's document (Mongoose
 * runs the find post hooks on each one, as `[doc]`). A cursor applies the
 * query's transforms inside a promise callback where a throw (a tampered
 * value, a throwing onDecrypt) is lost and the consumer's next() never
 * settles; an error thrown here fails that next() instead. For a lean find
 * that is not a cursor the transform has already decrypted the result before
 * the post hooks run, and decryptLeanResult() leaves it as it is.
 */
function decryptLeanCursorDocument() {
  return named('fieldcryptDecryptLeanCursor', function (result) {
    const decrypt = LEAN_DECRYPTION.get(this);
    if (decrypt !== undefined) decrypt(result);
  });
}

module.exports = {
  QUERY_WRITES,
  QUERY_READS,
  QUERY_ONLY,
  encryptQueryUpdate,
  checkQueryFilter,
  checkAggregateMatch,
  decryptLeanCursorDocument,
};
