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
const { DECRYPTED_LEAN } = require('./state');

/**
 * Decrypts a lean result in place: one document, an array of them, or a
 * driver ModifyResult. Idempotent: Mongoose applies query transforms to a
 * findOneAnd* result twice (to the driver's result, then to the query's).
 */
function decryptLeanResult(ctx, model, result) {
  if (result === null || typeof result !== 'object' || DECRYPTED_LEAN.has(result)) return result;
  if (Array.isArray(result)) {
    for (const doc of result) decryptLeanResult(ctx, model, doc);
    return result;
  }
  if (isDocument(result)) return result;
  if (Object.hasOwn(result, 'value') && Object.hasOwn(result, 'ok') && !Object.hasOwn(result, '_id')) {
    decryptLeanResult(ctx, model, result.value);
    return result;
  }
  // Each document with the paths of its own model (a discriminator's, when its key says so).
  const owner = modelForObject(model, result);
  const index = indexOf(owner.schema);
  prepareSchema(index, () => ctx.bson);
  decryptPlain({ ...ctx, documentId: result._id, modelName: owner.modelName, index }, index, result);
  DECRYPTED_LEAN.add(result);
  return result;
}

/**
 * Decrypts a raw document of `Model` (from an aggregation, `Model.collection`
 * or the driver) in place and returns it (once: a second call on the same
 * object returns it unchanged). Uses the options the model's
 * schema was given (allowUnencrypted, onDecrypt); a discriminator key picks
 * the discriminator's paths.
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
  decryptPlain(ctx, ctx.index, raw);
  DECRYPTED_LEAN.add(raw);
  return raw;
}

module.exports = { decryptLeanResult, decryptDocument };
