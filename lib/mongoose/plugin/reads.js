'use strict';

/**
 * Reads of plain documents: lean query results (through a Query#transform,
 * see hooks/queries.js) and `decryptDocument(Model, raw)` for aggregation
 * and driver results. Hydrated documents are decrypted by the init hook
 * (hooks/reads.js).
 *
 * Invariants: each result is decrypted once (DECRYPTED_LEAN: a single
 * document, or the array of a find), since Mongoose applies a findOneAnd*
 * query's transforms twice; a document decryptDocument() marked is not
 * decrypted again; each document is decrypted with the paths of its own
 * model (a discriminator's when its key says so).
 */

const { codes, FieldCryptError, describeType } = require('../../core/errors');
const { isDocument } = require('../compat');
const { normalizeOptions, pluginOptionsOf } = require('./options');
const { indexOf, modelForObject } = require('./path-index');
const { prepareSchema } = require('./schema-types');
const { contextFor } = require('./context');
const { decryptPlain } = require('./values');
const { ReadBatch } = require('./read-batch');
const { stripIndexValues } = require('./search-paths');
const { DECRYPTED_LEAN } = require('./state');

/**
 * Decrypts a lean result in place: one document, an array of them, or a
 * driver ModifyResult. Idempotent: Mongoose applies query transforms to a
 * findOneAnd* result twice (to the driver's result, then to the query's).
 * The values of an array of documents are decrypted together
 * (read-batch.js); a single document (findOne, findOneAnd*, each document
 * of a lean cursor) value by value, which for a handful of values costs
 * less than a batch.
 */
function decryptLeanResult(ctx, model, result, owners = new Map(), markSingle = true) {
  if (result === null || typeof result !== 'object' || DECRYPTED_LEAN.has(result)) return result;
  if (!Array.isArray(result)) {
    decryptLeanDocument(ctx, model, result, undefined, owners, markSingle);
    return result;
  }
  const batch = new ReadBatch();
  for (let i = 0; i < result.length; i++) decryptLeanDocument(ctx, model, result[i], batch, owners, true);
  batch.flush();
  // The array is marked, not each document: Mongoose applies a find's
  // transforms once, and a WeakSet entry per document cost a fifth of the
  // decryption (more in time than in instructions: the set grows with every
  // result until a full collection empties it).
  DECRYPTED_LEAN.add(result);
  return result;
}

/**
 * One document of a lean result (or a ModifyResult holding one), with the
 * paths of its own model (a discriminator's, when its key says so). With
 * `batch`, its String values are queued there for the caller to flush;
 * without, it is decrypted now, and marked unless `mark` is false. A
 * document marked already (by decryptDocument() in the application's own
 * transform) is skipped. `owners`: model -> its prepared index.
 */
function decryptLeanDocument(ctx, model, doc, batch, owners, mark) {
  if (doc === null || typeof doc !== 'object' || DECRYPTED_LEAN.has(doc) || isDocument(doc)) return;
  if (Array.isArray(doc)) {
    // Not a result Mongoose returns; decrypted as before, as a nested result.
    decryptLeanResult(ctx, model, doc, owners);
    return;
  }
  if (Object.hasOwn(doc, 'value') && Object.hasOwn(doc, 'ok') && !Object.hasOwn(doc, '_id')) {
    decryptLeanResult(ctx, model, doc.value, owners);
    return;
  }
  const owner = modelForObject(model, doc);
  let index = owners.get(owner);
  if (index === undefined) {
    index = indexOf(owner.schema);
    prepareSchema(index, () => ctx.bson);
    owners.set(owner, index);
  }
  decryptPlain(documentReadContext(ctx, doc._id, owner.modelName, index), index, doc, undefined, batch);
  if (batch === undefined && mark) DECRYPTED_LEAN.add(doc);
}

/**
 * The query transform that decrypts a query's lean results (hooks/queries.js):
 * what does not change between its results (the context, the models'
 * indexes) is made once per query, since a lean cursor calls it once per
 * document. A find's single documents come only from a cursor, whose
 * transform runs once per document, so they are not marked (a WeakSet entry
 * per document cost a large part of the decryption); findOne and
 * findOneAnd* results are.
 */
function leanResultReader(ctx, model, op) {
  const base = { ...ctx, documentId: undefined };
  const owners = new Map();
  const markSingle = op !== 'find';
  return (result) => decryptLeanResult(base, model, result, owners, markSingle);
}

/** The query's context for one of its documents (a literal: a spread per document costs more). */
function documentReadContext(ctx, documentId, modelName, index) {
  return {
    options: ctx.options,
    modelName,
    collection: ctx.collection,
    bson: ctx.bson,
    documentId,
    index,
    scope: ctx.scope,
    target: ctx.target,
  };
}

/**
 * Decrypts a raw document of `Model` (from an aggregation, `Model.collection`
 * or the driver) in place and returns it (once: a second call on the same
 * object returns it unchanged). Uses the options the model's
 * schema was given (allowUnencrypted, onDecrypt); a discriminator key picks
 * the discriminator's paths. Blind-index values are removed, as from a lean
 * result (the document is what a read shows; a projection that asked for
 * them is the pipeline's, which this call cannot see: read them before).
 */
function decryptDocument(Model, raw) {
  if (typeof Model !== 'function' || !Model.schema) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `decryptDocument() expects a Mongoose model, got ${describeType(Model)}`,
    );
  }
  if (raw === null || raw === undefined) return raw;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `decryptDocument() expects a document, got ${describeType(raw)}`);
  }
  if (DECRYPTED_LEAN.has(raw)) return raw;
  const owner = modelForObject(Model, raw);
  const options = pluginOptionsOf(owner.schema) || normalizeOptions({});
  const ctx = contextFor(options, owner, owner.schema, raw._id);
  const batch = new ReadBatch();
  decryptPlain(ctx, ctx.index, raw, undefined, batch);
  batch.flush();
  stripIndexValues(ctx.index, raw);
  DECRYPTED_LEAN.add(raw);
  return raw;
}

module.exports = { decryptLeanResult, leanResultReader, decryptDocument };
