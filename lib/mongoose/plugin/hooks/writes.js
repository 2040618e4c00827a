'use strict';

/**
 * The write hooks: save() (also create() and bulkSave()), insertMany() and
 * bulkWrite(). Each factory takes the plugin's `{ options, auto }` and
 * returns the named function fieldEncryption() registers.
 *
 * Invariants: a document is encrypted in its own storage before Mongoose
 * builds the write, and settled after it whether it succeeded or failed
 * (plaintext back in auto mode or after a failure, ciphertext kept in
 * explicit mode after a success); every bulkWrite op is rewritten or refused
 * before Mongoose sends any of them.
 */

const { codes, FieldCryptError } = require('../../../core/errors');
const { named, mongooseHook, isDocument, isSubdocument, rootDocument, schemaOf } = require('../../compat');
const { pluginOptionsOf } = require('../options');
const { modelForObject, queryIndex } = require('../path-index');
const { contextFor, documentContext, idFromFilter } = require('../context');
const { queryTarget } = require('../binding');
const { encryptLive, settleLive } = require('../live-documents');
const { encryptUpdate, encryptWholeDocument } = require('../updates');
const { checkFilter } = require('../filters');
const { STORED_OBJECT } = require('../values');
const { rewriteArrayFilters } = require('../search-updates');

/**
 * The plugin works from the top-level document: encrypted paths of child
 * schemas are found from there. Applied only to a child schema, it cannot
 * cover the parent model's queries, so it refuses to save rather than
 * store plaintext.
 */
function requireRootPlugin(doc) {
  const root = rootDocument(doc);
  if (root && schemaOf(root) && pluginOptionsOf(schemaOf(root))) return;
  throw new FieldCryptError(
    codes.INVALID_ARGUMENT,
    'fieldEncryption is applied to a subdocument schema but not to the schema of its top-level model; ' +
      "apply it to the model's schema (paths marked in child schemas are found from there).",
  );
}

// --- save(), create(), bulkSave() ------------------------------------------

function encryptBeforeSave({ options }) {
  return mongooseHook('fieldcryptEncryptBeforeSave', (doc) => {
    if (isSubdocument(doc)) return requireRootPlugin(doc);
    encryptLive(documentContext(options, doc), doc);
  });
}

/** After a write the document shows plaintext again (auto), or keeps the ciphertext (explicit). */
function settleAfterSave({ auto }) {
  return named('fieldcryptAfterSave', function (doc) {
    if (!isSubdocument(this)) settleLive(this, auto);
  });
}

const settleAfterFailedSave = named('fieldcryptAfterFailedSave', function (err, doc) {
  if (!isSubdocument(this)) settleLive(this, true);
});

// --- insertMany() --------------------------------------------------------------

function encryptInsertMany({ options }) {
  return mongooseHook('fieldcryptEncryptInsertMany', (model, [docs]) => {
    // Each input becomes a document (defaults applied, as Mongoose would),
    // encrypted in its own storage; Mongoose uses documents of the model
    // as they are. A lone object (not an array) is changed in place.
    const list = Array.isArray(docs) ? docs : [docs];
    for (let i = 0; i < list.length; i++) {
      const input = list[i];
      if (input === null || typeof input !== 'object') continue;
      const owner = modelForObject(model, input);
      const doc = input instanceof owner ? input : new owner(input);
      encryptLive(documentContext(options, doc), doc);
      if (Array.isArray(docs)) {
        docs[i] = doc;
      } else {
        for (const key of Object.keys(input)) delete input[key];
        Object.assign(input, doc.toObject(STORED_OBJECT));
      }
    }
  });
}

function settleAfterInsertMany({ auto }) {
  return named('fieldcryptAfterInsertMany', function (docs) {
    for (const doc of Array.isArray(docs) ? docs : [docs]) if (isDocument(doc)) settleLive(doc, auto);
  });
}

const settleAfterFailedInsertMany = named('fieldcryptAfterFailedInsertMany', function (err, docs) {
  for (const doc of Array.isArray(docs) ? docs : []) if (isDocument(doc)) settleLive(doc, true);
  if (err && Array.isArray(err.insertedDocs))
    for (const doc of err.insertedDocs) if (isDocument(doc)) settleLive(doc, true);
});

// --- bulkWrite() (also what bulkSave() sends) ------------------------------

function encryptBulkWrite({ options }) {
  return mongooseHook('fieldcryptEncryptBulkWrite', (model, [ops]) => {
    if (!Array.isArray(ops)) return;
    // Every op is rewritten (or refused) before Mongoose sends any of them.
    for (const op of ops) {
      if (!op || typeof op !== 'object') continue;
      if (op.insertOne) {
        const owner = modelForObject(model, op.insertOne.document);
        const ctx = contextFor(options, owner, owner.schema, op.insertOne.document && op.insertOne.document._id);
        op.insertOne.document = encryptWholeDocument(ctx, owner, op.insertOne.document, { skipId: false });
      } else if (op.replaceOne) {
        const owner = modelForObject(model, op.replaceOne.filter);
        const ctx = contextFor(
          options,
          owner,
          owner.schema,
          idFromFilter(op.replaceOne.filter),
          queryIndex(model, op.replaceOne.filter),
        );
        ctx.target = queryTarget('bulkWrite replaceOne', op.replaceOne.filter, false);
        checkFilter(ctx, op.replaceOne.filter);
        op.replaceOne.replacement = encryptWholeDocument(ctx, owner, op.replaceOne.replacement, { skipId: true });
      } else if (op.updateOne || op.updateMany) {
        const spec = op.updateOne || op.updateMany;
        const ctx = contextFor(
          options,
          model,
          model.schema,
          op.updateOne ? idFromFilter(spec.filter) : undefined,
          queryIndex(model, spec.filter),
        );
        ctx.target = queryTarget(
          op.updateOne ? 'bulkWrite updateOne' : 'bulkWrite updateMany',
          spec.filter,
          !op.updateOne,
        );
        checkFilter(ctx, spec.filter);
        // Conditions on searchable fields of elements compare their blind indexes.
        spec.arrayFilters = rewriteArrayFilters(ctx, spec.update, spec.arrayFilters);
        spec.update = encryptUpdate(ctx, spec.update, {
          filter: spec.filter,
          upsert: spec.upsert,
          setDefaultsOnInsert: spec.setDefaultsOnInsert ?? model.base.options.setDefaultsOnInsert,
          arrayFilters: spec.arrayFilters,
        });
      } else if (op.deleteOne || op.deleteMany) {
        const spec = op.deleteOne || op.deleteMany;
        checkFilter(contextFor(options, model, model.schema, undefined, queryIndex(model, spec.filter)), spec.filter);
      }
    }
  });
}

module.exports = {
  encryptBeforeSave,
  settleAfterSave,
  settleAfterFailedSave,
  encryptInsertMany,
  settleAfterInsertMany,
  settleAfterFailedInsertMany,
  encryptBulkWrite,
};
