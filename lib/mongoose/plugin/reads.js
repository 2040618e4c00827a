'use strict';

/**
 * Reads of plain documents: lean query results (through a Query#transform,
 * see hooks/queries.js) and `decryptDocument(Model, raw)` for aggregation
 * and driver results. Hydrated documents are decrypted by the init hook
 * (hooks/reads.js).
 *
 * Invariants: each object is decrypted once (DECRYPTED_LEAN), since
 * Mongoose may apply a query transform twice; each document is decrypted
 * with the paths of its own model (a discriminator's when its key says so).
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
 * The values of the whole result are decrypted together (read-batch.js).
 */
function decryptLeanResult(ctx, model, result) {
  if (result === null || typeof result !== 'object' || DECRYPTED_LEAN.has(result)) return result;
  const batch = new ReadBatch();
  const done = [];
  collectLean(ctx, model, result, batch, new Map(), done);
  batch.flush();
  for (const doc of done) DECRYPTED_LEAN.add(doc);
  return result;
}

/** Queues the values of `result` (see decryptLeanResult); `owners`: model -> its index, for this result. */
function collectLean(ctx, model, result, batch, owners, done) {
  if (result === null || typeof result !== 'object' || DECRYPTED_LEAN.has(result)) return;
  if (Array.isArray(result)) {
    for (const doc of result) collectLean(ctx, model, doc, batch, owners, done);
    return;
  }
  if (isDocument(result)) return;
  if (Object.hasOwn(result, 'value') && Object.hasOwn(result, 'ok') && !Object.hasOwn(result, '_id')) {
    collectLean(ctx, model, result.value, batch, owners, done);
    return;
  }
  // Each document with the paths of its own model (a discriminator's, when its key says so).
  const owner = modelForObject(model, result);
  let index = owners.get(owner);
  if (index === undefined) {
    index = indexOf(owner.schema);
    prepareSchema(index, () => ctx.bson);
    owners.set(owner, index);
  }
  decryptPlain({ ...ctx, documentId: result._id, modelName: owner.modelName, index }, index, result, undefined, batch);
  done.push(result);
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

module.exports = { decryptLeanResult, decryptDocument };
