'use strict';

/**
 * fieldEncryption: a Mongoose plugin that encrypts chosen paths on every
 * write path Mongoose has and decrypts them on every read path.
 *
 *   schema.plugin(fieldEncryption, { fields: ['ssn', 'patientRecord.billing'] });
 *   // or, per path: new Schema({ ssn: { type: String, encrypted: true } })
 *
 * How it is put together (files in this folder, in dependency order):
 *
 * - state.js: every per-schema, per-model and per-document table.
 * - options.js: the plugin's options, validated and normalized.
 * - search-paths.js: searchable paths (blind indexes): their `_bidx`
 *   siblings, kinds and normalisers; the siblings added to the schema.
 * - path-index.js: the encrypted leaves of a schema (through subdocuments,
 *   document arrays, Maps and discriminators) and the containers above them;
 *   how an update or filter key relates to them.
 * - binding.js: context binding (`bind`): which leaves are bound how, the
 *   context of one value, which document a query update writes, and
 *   pathBindings() for the CLI.
 * - values.js: encrypting and decrypting one value, or every leaf of a
 *   plain document; audit callbacks; the plugin's errors.
 * - output.js: toJSON()/toObject() omit encrypted paths unless asked for.
 * - schema-types.js: each encrypted SchemaType lets a ciphertext through
 *   `cast`, `applySetters` and `castForQuery`, and validates the decrypted
 *   value, so the schema stays as declared.
 * - context.js: what every hook hands on (options, model, BSON, index).
 * - live-documents.js: save/create/insertMany/bulkSave encrypt the
 *   document's own storage before the write and put the plaintext back after.
 * - filters.js, search-conditions.js: a filter on a searchable path is
 *   rewritten to its blind index; one that would send a plaintext of any
 *   other encrypted path is refused.
 * - update-checks.js, updates.js: query updates and replacements are
 *   rewritten key by key before Mongoose casts them; what cannot work on
 *   ciphertext is refused before anything is sent.
 * - reads.js: lean results and decryptDocument(Model, raw).
 * - search-writes.js, search-updates.js: blind-index values written with
 *   every searchable value the plugin encrypts (documents, replacements;
 *   update keys).
 * - hooks/writes.js, hooks/queries.js, hooks/reads.js, hooks/search.js: the
 *   hook functions registered below, by operation.
 * - ../compat.js: everything that depends on Mongoose internals or differs
 *   between Mongoose 8 and 9.
 *
 * Values are encoded by lib/core/codec.js: strings exactly as the
 * foundation's encrypt(), other types as BSON inside the same envelope.
 */

const { describeType } = require('../../core/errors');
const { bsonOf, addPostHookFirst, addErrorHook } = require('../compat');
const { invalidOption, normalizeOptions } = require('./options');
const { buildIndex, encryptedPaths, searchablePaths } = require('./path-index');
const { addIndexPaths } = require('./search-paths');
const { prepareSchema } = require('./schema-types');
const { installOutputFilter } = require('./output');
const { decryptDocument } = require('./reads');
const { pathBindings } = require('./binding');
const { OPTIONS, APPLIED, PLUGIN } = require('./state');
const writes = require('./hooks/writes');
const queries = require('./hooks/queries');
const reads = require('./hooks/reads');
const search = require('./hooks/search');

/**
 * `schema.plugin(fieldEncryption, options)`. Reference: docs/plugin.md.
 *
 * options: fields (paths to encrypt, besides those marked `encrypted: true`),
 * decrypt ('auto' | 'explicit'), includeDecrypted (toJSON/toObject default),
 * allowUnencrypted (read legacy plaintext), bind (false | 'collection' |
 * 'document': bind values to where they are stored), allowUnbound (read
 * values written before binding), onEncrypt/onDecrypt (audit), searchable
 * (paths kept with a blind index besides those marked `searchable`).
 */
function fieldEncryption(schema, rawOptions) {
  if (!schema || typeof schema.pre !== 'function' || typeof schema.eachPath !== 'function') {
    throw invalidOption(`expected a Mongoose schema, got ${describeType(schema)}`);
  }
  const options = normalizeOptions(rawOptions);
  // Once per schema: a second application (typically a global plugin, which
  // Mongoose applies when it compiles the model, after the schema's own) is
  // ignored; the first options count. Two sets of hooks would decrypt twice.
  if (APPLIED.has(schema)) return;
  APPLIED.add(schema);
  OPTIONS.set(schema, options);
  // Validates `fields` now, while the mistake is easy to find, and lets the
  // encrypted SchemaTypes hold ciphertext from the start. The index is built
  // again (and cached) when first used, from the schema as it is then.
  const index = buildIndex(schema);
  // Searchable paths (issue 20): their `<leaf>_bidx` siblings and indexes
  // join the schema now, before a model compiles it.
  addIndexPaths(schema, index);
  prepareSchema(index, () => bsonOf(schema));
  const plugin = { options, auto: options.decrypt === 'auto' };

  // save(), create(), bulkSave(): encrypt the document's storage, then put
  // the plaintext back. The post hook goes first, so the application's own
  // post('save') hooks see the document as the application uses it.
  schema.pre('save', writes.encryptBeforeSave(plugin));
  addPostHookFirst(schema, 'save', writes.settleAfterSave(plugin));
  addErrorHook(schema, 'save', writes.settleAfterFailedSave);

  // insertMany(): each input becomes a document of the model, encrypted the same way.
  schema.pre('insertMany', writes.encryptInsertMany(plugin));
  schema.post('insertMany', writes.settleAfterInsertMany(plugin));
  addErrorHook(schema, 'insertMany', writes.settleAfterFailedInsertMany);

  // bulkWrite() (also what bulkSave() sends): filters rewritten (searchable
  // paths) first; then inserts and replacements are built and encrypted,
  // updates rewritten, filters checked.
  schema.pre('bulkWrite', queries.rewriteBulkWriteFilters(plugin));
  schema.pre('bulkWrite', writes.encryptBulkWrite(plugin));

  // Query updates and replacements; query reads and deletes; aggregations.
  schema.pre(queries.QUERY_WRITES, queries.QUERY_ONLY, queries.encryptQueryUpdate(plugin));
  schema.pre(queries.QUERY_READS, queries.QUERY_ONLY, queries.checkQueryFilter(plugin));
  schema.pre('aggregate', queries.checkAggregateMatch(plugin));
  // A lean cursor's documents, where an error reaches the cursor's consumer
  // (the query transform, which decrypts other lean results, cannot fail a cursor).
  addPostHookFirst(schema, 'find', queries.decryptLeanCursorDocument());

  // Lean results leave blind-index values out unless the projection names them.
  schema.pre(search.LEAN_DOCUMENT_OPS, queries.QUERY_ONLY, search.stripLeanIndexValues());

  // Hydrated documents are decrypted before Mongoose casts them.
  schema.pre('init', reads.decryptOnInit(plugin));

  // toJSON()/toObject() omit encrypted paths unless `includeDecrypted`. If
  // the application sets toJSON/toObject options after the plugin, the
  // filter is put back in front of its transform when the model is compiled.
  installOutputFilter(schema);
  schema.on('init', () => installOutputFilter(schema));

  // doc.decryptField(path); the application's own method of that name wins.
  if (!schema.methods.decryptField) schema.method('decryptField', reads.decryptFieldMethod(plugin));
}
Object.defineProperty(fieldEncryption, PLUGIN, { value: true });

// pathBindings is internal (lib/cli/), not in the package's exports.
module.exports = { fieldEncryption, decryptDocument, encryptedPaths, searchablePaths, pathBindings };
