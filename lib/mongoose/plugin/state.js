'use strict';

/**
 * Every table the plugin keeps about schemas, SchemaTypes, models and
 * documents, in one place. Invariants: all are WeakMaps, WeakSets or
 * Symbols keyed by Mongoose objects, so nothing here keeps a schema, model or
 * document alive; no other module of the plugin declares module-level state.
 */

const { documentState } = require('../compat');

// --- Per schema ----------------------------------------------------------------

/**
 * schema -> the plugin's normalized options. Set by fieldEncryption() when the
 * plugin is applied, or by pluginOptionsOf() (options.js) the first time it
 * finds the plugin in a discriminator's merged plugin list. Read by
 * pluginOptionsOf(). Never cleared.
 */
const OPTIONS = new WeakMap();

/**
 * Schemas the plugin was applied to. Set and read by fieldEncryption(): a
 * second application to the same schema (a global plugin) is ignored. Never
 * cleared.
 */
const APPLIED = new WeakSet();

/**
 * schema -> its path index (path-index.js). Built and set by indexOf() the
 * first time the index is used (after the schema is complete); read by
 * indexOf(). Never cleared: a schema does not change once a model uses it.
 * The index carries the schema's search table (search-paths.js):
 * `index.search`, schema path -> `{ path, indexPath, kind, unique, normalize }`
 * for every searchable leaf (issue 20); the union index of a base model and
 * its discriminators carries the union of theirs.
 */
const INDEXES = new WeakMap();

/**
 * child schema -> { leafList } of the encrypted leaves relative to its
 * subdocuments, from every place it is used. Added to by
 * registerSubdocumentLeaves() (output.js) when an index is prepared; read by
 * outputFilter() for a subdocument's toJSON()/toObject(). Never cleared.
 */
const SUBDOCUMENT_LEAVES = new WeakMap();

/**
 * Marks the toJSON/toObject transform installed by installOutputFilter()
 * (output.js), which reads it so the filter is installed once per schema even
 * when it runs again as the model is compiled.
 */
const OUTPUT_FILTER = Symbol('fieldcrypt.outputFilter');

/**
 * Marks the fieldEncryption function. Set by index.js; read by
 * pluginOptionsOf() (options.js) to find the plugin's entry among
 * the schema's plugin list.
 */
const PLUGIN = Symbol('fieldcrypt.plugin');

/**
 * The SchemaTypes of index paths (`<leaf>_bidx`) the plugin added to a
 * schema. Added to by addIndexPaths() (search-paths.js); read by the path
 * index, which never encrypts them and lists them in `index.indexPaths`.
 * Never cleared.
 */
const INDEX_TYPES = new WeakSet();

// --- Per index and SchemaType -----------------------------------------------------

/**
 * Indexes whose encrypted SchemaTypes are patched. Set and read by
 * prepareSchema() (schema-types.js), so each index is prepared once. Never
 * cleared.
 */
const PREPARED = new WeakSet();

/**
 * Marks a SchemaType instance patched by acceptCiphertext()
 * (schema-types.js), which sets and reads it so a type shared by several
 * indexes is patched once.
 */
const PATCHED = Symbol('fieldcrypt.ciphertextAware');

/**
 * SchemaType -> its leaf (path-index.js): the raw path for audit records and
 * the leaf's binding. Set by prepareSchema() (the first index to prepare it
 * wins); read by sealDuringWrite() and the validators (schema-types.js).
 * Never cleared.
 */
const TYPE_LEAVES = new WeakMap();

/**
 * leaf -> Map(collection -> its frozen `{ collection, path }` context), for
 * collection-bound leaves. Set and read by leafContext() (binding.js), so
 * each (collection, path) has one context whose encoding the core caches.
 * Never cleared.
 */
const COLLECTION_CONTEXTS = new WeakMap();

// --- Per model ------------------------------------------------------------------

/**
 * model -> { count, index }: the union of a base model's and its
 * discriminators' indexes. Set and read by queryIndex() (path-index.js);
 * replaced when the number of discriminators changed.
 */
const UNIONS = new WeakMap();

/**
 * model -> { options, modelName, collection, bson, index, collectionObject }:
 * what the init hook's context takes from the model. Set and read by
 * readContext() (context.js); replaced when the options, the document's
 * schema or the model's collection differ from the entry's.
 */
const READ_CONTEXTS = new WeakMap();

// --- Per document -----------------------------------------------------------------

/**
 * document -> { ctx, late: Map(ciphertext -> plaintext) } while the plugin
 * writes it. Set by encryptLive() (live-documents.js); read by
 * sealDuringWrite() (schema-types.js), which encrypts a value assigned
 * during the write and records it in `late`; deleted by settleLive() after
 * the write, successful or not.
 */
const WRITING = new WeakMap();

/**
 * document -> [{ set, value, concretePath, stored, print }]: the plaintexts
 * replaced by their ciphertexts for a write. Set by encryptLive(); read and
 * deleted by settleLive(), which puts the plaintexts back.
 */
const PENDING = new WeakMap();

/**
 * document -> Map(concrete path -> { stored, print }): the stored ciphertext
 * and fingerprint of each decrypted value, so an unchanged value is written
 * back byte-identical. Set by the init hook (hooks/reads.js) when a document
 * is loaded, updated by settleLive() after a write; read by encryptLive().
 * Lives as long as the document.
 *
 * Kept in a Symbol property of the document's internal state (compat.js
 * documentState), with a WeakMap's get/set: one is set for every document a
 * query loads. A WeakMap holding an entry per live document made each set,
 * and every garbage collection while the documents lived, cost several times
 * the decryption of their values; a property defined on the document itself
 * (non-enumerable, so as not to show in spreads) cost about as much as the
 * decryption. The document holds its Map, the Map never the document.
 */
const PRINTS_KEY = Symbol('fieldcrypt.prints');
const PRINTS = Object.freeze({
  get(doc) {
    const state = documentState(doc);
    return state === undefined ? undefined : state[PRINTS_KEY];
  },
  set(doc, prints) {
    documentState(doc)[PRINTS_KEY] = prints;
  },
});

/**
 * Lean results and raw documents already decrypted: single documents, and
 * the arrays of lean finds (not their documents). Added to by
 * decryptLeanResult() and decryptDocument() (reads.js), which read it to
 * decrypt each object once (Mongoose applies a query transform to a
 * findOneAnd* result twice). Never cleared.
 */
const DECRYPTED_LEAN = new WeakSet();

/**
 * lean query -> the function decrypting its results (the one its transform
 * calls). Set once per query by decryptLeanResults() (hooks/queries.js) in
 * the query's pre hook, which runs again when a query is executed and then
 * iterated with cursor(): a second transform would decrypt twice. Read by the
 * post('find') hook, which decrypts a lean cursor's documents where an error
 * reaches the cursor's consumer. Entries go with their query.
 */
const LEAN_DECRYPTION = new WeakMap();

module.exports = {
  OPTIONS,
  APPLIED,
  INDEXES,
  INDEX_TYPES,
  SUBDOCUMENT_LEAVES,
  OUTPUT_FILTER,
  PLUGIN,
  PREPARED,
  PATCHED,
  TYPE_LEAVES,
  COLLECTION_CONTEXTS,
  UNIONS,
  READ_CONTEXTS,
  WRITING,
  PENDING,
  PRINTS,
  DECRYPTED_LEAN,
  LEAN_DECRYPTION,
};
