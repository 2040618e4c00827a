'use strict';

/**
 * Everything fieldcrypt knows about Mongoose beyond its documented API, in
 * one place. The rest of lib/mongoose/ calls the named functions below and
 * never reads a `$`- or `_`-prefixed property, a private option or a hook
 * shape itself. Invariant: these functions behave the same on Mongoose 8
 * and 9 (test/ runs every test on both).
 *
 * Mongoose 8 / 9 differences handled here:
 * - Pre hooks (kareem 2 / kareem 3): Mongoose 8 passes `next` first when the
 *   hook declares a parameter and calls it when a returned promise settles;
 *   Mongoose 9 passes only the hook's arguments and awaits a returned
 *   promise (mongooseHook).
 * - Error-handling post hooks: Mongoose 8 passes `next`, which must be
 *   called; Mongoose 9 passes none (addErrorHook).
 * - SchemaType#doValidate: Mongoose 8 is doValidate(value, callback, scope,
 *   options), Mongoose 9 is async doValidate(value, scope, options)
 *   (validateConverted).
 * - The element type of an array path: `embeddedSchemaType` on 9, `caster`
 *   on 8; `$embeddedSchemaType`, a name some releases use, is tried in
 *   between (elementTypeOf).
 * - The document constructor of a subdocument path: `Constructor` on 9,
 *   `casterConstructor`/`caster` on 8 (subdocConstructorOf).
 *
 * Private internals used, and why:
 * - `doc.$__` (the document's internal state): its presence is how a value is
 *   recognised as a document (isDocument); it lives as long as the document,
 *   and fieldcrypt keeps its own per-document state there under a Symbol
 *   (documentState), which adds no property to the document itself;
 *   `$__.validationError` is where a cast error inside a document being
 *   built is recorded, not thrown
 *   (hasCastError); `$__.primitiveAtomics` holds `doc.$inc()` operations,
 *   which must be refused on encrypted paths (pendingIncrements, with
 *   `$getAllSubdocs()` and `$__fullPath()` to reach and name them).
 * - `doc.$__schema`: the schema of a document or subdocument (schemaOf).
 * - `doc.$__.selected`: the projection a hydrated document was loaded with,
 *   which its init hook sees before Mongoose keeps it (selectedFieldsOf).
 * - `doc.$isSubdocument`: whether a document is a subdocument (isSubdocument).
 * - `doc._doc` and a MongooseArray's `__array`, `isMongooseArray`: the
 *   document's own storage, written without setters or change tracking so
 *   that replacing a plaintext with its ciphertext for a write changes
 *   neither what Mongoose thinks was modified nor how it builds the write
 *   (documentStorage, arrayStorage, isTrackedArray).
 * - A MongooseArray's `$atomics()` and `_registerAtomic()`: the change
 *   operators it will send; those carrying a copy of a plaintext are turned
 *   into a `$set` of the whole (encrypted) array (arrayOperators,
 *   markArrayReplaced).
 * - SchemaType flags `$isSingleNested`, `$isMongooseDocumentArray`,
 *   `$isSchemaMap`, `$isMongooseArray` and a Map's value type `$__schemaType`:
 *   how the path index recognises containers (schemaTypeKind, mapValueTypeOf).
 * - SchemaType#getDefault(scope, init): the default the plugin encrypts for
 *   upserts before Mongoose adds it in clear (defaultOf).
 * - `schema.plugins` (`{ fn, opts }` entries): a discriminator's schema is a
 *   merged copy listing its base schema's plugins (pluginEntryOf).
 * - `schema.discriminatorMapping.value`: a discriminator's key value when it
 *   differs from the model name (matchesDiscriminatorValue).
 * - `model.base` / `schema.base`: the Mongoose instance whose BSON library
 *   encodes typed values (bsonOf).
 * - Document#get's `noDottedPath` option: reads a top-level path directly
 *   instead of walking it as a dotted path (storedGetOptions).
 * - kareem's `unshift` argument of Schema#post: puts a post hook in front of
 *   the application's own (addPostHookFirst).
 * - `query._distinct`: the field of a distinct() query, refused on an
 *   encrypted path (distinctFieldOf).
 */

const { codes, FieldCryptError } = require('../core/errors');

// ---------------------------------------------------------------------------
// Hooks

function named(name, fn) {
  return Object.defineProperty(fn, 'name', { value: name });
}

/**
 * A Mongoose hook running `work(context, args)` on both majors: Mongoose 8
 * (kareem 2) passes `next` first when the function declares a parameter and
 * calls it when a returned promise settles; Mongoose 9 (kareem 3) passes only
 * the hook's arguments and awaits a returned promise. The returned function
 * declares one parameter so Mongoose 8 passes its arguments at all.
 */
function mongooseHook(name, work) {
  return named(name, function (first, ...rest) {
    if (typeof first === 'function') {
      // Mongoose 8: `first` is next; kareem calls it when this promise settles.
      return new Promise((resolve) => resolve(work(this, rest)));
    }
    return work(this, [first, ...rest]);
  });
}

/**
 * Registers `fn(err, result)` (called with the document or model as `this`)
 * as an error-handling post hook of `operation`, under `fn`'s name. The
 * registered function declares three parameters (kareem 2 also tells error
 * handlers by their arity) and calls Mongoose 8's `next` when there is one,
 * so the error goes on to the caller.
 */
function addErrorHook(schema, operation, fn) {
  schema.post(
    operation,
    { errorHandler: true },
    named(fn.name, function (err, result, next) {
      fn.call(this, err, result);
      if (typeof next === 'function') next();
    }),
  );
}

/** Registers a post hook ahead of those already registered (kareem's `unshift`). */
function addPostHookFirst(schema, operation, fn) {
  schema.post(operation, fn, true);
}

// ---------------------------------------------------------------------------
// Documents

function isDocument(value) {
  return value !== null && typeof value === 'object' && value.$__ !== undefined && typeof value.toObject === 'function';
}

/**
 * The object holding a document's internal state (`doc.$__`): created with
 * the document and kept for its life; fieldcrypt keeps Symbol-keyed state
 * there. Undefined for anything that is not a document.
 */
function documentState(doc) {
  return doc.$__;
}

function isSubdocument(doc) {
  return Boolean(doc.$isSubdocument);
}

/** The top-level document of a subdocument; a document itself otherwise. */
function rootDocument(doc) {
  return doc.$isSubdocument && typeof doc.ownerDocument === 'function' ? doc.ownerDocument() : doc;
}

/** The schema of a document or subdocument. */
function schemaOf(doc) {
  return doc.$__schema;
}

/** The projection a document was loaded with (undefined when none). */
function selectedFieldsOf(doc) {
  return (doc.$__ && doc.$__.selected) || undefined;
}

/** A document built from an invalid value records the cast error instead of throwing it. */
function hasCastError(doc) {
  return Boolean(doc.$__ && doc.$__.validationError);
}

/** The object holding a document's fields (a document's `_doc`); any other value as it is. */
function documentStorage(node) {
  return isDocument(node) && node._doc ? node._doc : node;
}

function isTrackedArray(array) {
  return Boolean(array.isMongooseArray);
}

/** The plain array inside a MongooseArray (no casting, no change tracking); any other array as it is. */
function arrayStorage(array) {
  return array.isMongooseArray && array.__array ? array.__array : array;
}

/** The change operators a MongooseArray has recorded for the next write. */
function arrayOperators(array) {
  const atomics = typeof array.$atomics === 'function' ? array.$atomics() || {} : {};
  return Object.keys(atomics);
}

/** Makes the next write of a MongooseArray a `$set` of the whole array. */
function markArrayReplaced(array) {
  array._registerAtomic('$set', array);
}

/**
 * The `doc.$inc()` operations pending on a document and its subdocuments:
 * `{ path, operator }`, `path` the full path from the top-level document.
 */
function pendingIncrements(doc) {
  const found = [];
  const docs = [doc, ...(typeof doc.$getAllSubdocs === 'function' ? doc.$getAllSubdocs() : [])];
  for (const d of docs) {
    const atomics = d.$__ && d.$__.primitiveAtomics;
    if (!atomics) continue;
    for (const path of Object.keys(atomics)) {
      const full = typeof d.$__fullPath === 'function' ? d.$__fullPath(path) : path;
      found.push({ path: full, operator: Object.keys(atomics[path])[0] });
    }
  }
  return found;
}

/**
 * Document#get options for the stored value, without getters (so a decrypting
 * getter on the same path cannot recurse). For a path without a dot,
 * `noDottedPath` (Mongoose 8 and 9) reads it from the document directly
 * instead of walking it as a dotted path: the same value (schema paths,
 * aliases, nested objects, arrays and missing paths alike), at a fraction of
 * the cost, which matters for a getter called on every read.
 */
const RAW_DOTTED = Object.freeze({ getters: false });
const RAW_TOP_LEVEL = Object.freeze({ getters: false, noDottedPath: true });

function storedGetOptions(path) {
  return path.includes('.') ? RAW_DOTTED : RAW_TOP_LEVEL;
}

// ---------------------------------------------------------------------------
// Schemas and SchemaTypes

/**
 * What a SchemaType holds: 'single' (a single nested subdocument),
 * 'docarray' (an array of subdocuments), 'map', 'array' (of primitives or
 * arrays) or 'value'. The checks go in this order (a document array is also
 * an array).
 */
function schemaTypeKind(schemaType) {
  if (schemaType.$isSingleNested) return 'single';
  if (schemaType.$isMongooseDocumentArray) return 'docarray';
  if (schemaType.$isSchemaMap) return 'map';
  if (schemaType.$isMongooseArray) return 'array';
  return 'value';
}

/** The SchemaType of a Map's values. */
function mapValueTypeOf(schemaType) {
  return schemaType.$__schemaType;
}

/** The type of an array's elements: `embeddedSchemaType` on Mongoose 9, `caster` on 8. */
function elementTypeOf(schemaType) {
  return schemaType.embeddedSchemaType || schemaType.$embeddedSchemaType || schemaType.caster;
}

/** The constructor of a subdocument path's documents: `Constructor` (9), `casterConstructor`/`caster` (8). */
function subdocConstructorOf(schemaType) {
  return schemaType.Constructor || schemaType.casterConstructor || schemaType.caster;
}

/** The default of a path as Mongoose computes it when it inserts a document. */
function defaultOf(schemaType) {
  return schemaType.getDefault(null, true);
}

/**
 * Makes the validators of `schemaType` see `convert(value, scope)` for every
 * value `applies(value)` accepts; `scope` is what the validators get as
 * `this` (the document, the query, or null). A conversion error goes to
 * Mongoose 8's callback, or rejects Mongoose 9's promise, as a validation
 * error would.
 */
function validateConverted(schemaType, applies, convert) {
  const { doValidate, doValidateSync } = schemaType;
  // Mongoose 8: doValidate(value, callback, scope, options); 9: async doValidate(value, scope, options).
  schemaType.doValidate = function doValidateDecrypted(value, ...rest) {
    if (!applies(value)) return doValidate.call(this, value, ...rest);
    const callback = typeof rest[0] === 'function';
    let converted;
    try {
      converted = convert(value, callback ? rest[1] : rest[0]);
    } catch (err) {
      if (callback) return rest[0](err);
      return Promise.reject(err);
    }
    return doValidate.call(this, converted, ...rest);
  };
  if (typeof doValidateSync === 'function') {
    // doValidateSync(value, scope, options) on both.
    schemaType.doValidateSync = function doValidateSyncDecrypted(value, ...rest) {
      return doValidateSync.call(this, applies(value) ? convert(value, rest[0]) : value, ...rest);
    };
  }
}

/**
 * Query selector injection (Mongoose's `sanitizeFilter`): whether Mongoose
 * will sanitize this query's filter (the connection's, the Mongoose
 * instance's or the query's option, as Query#_castConditions decides), and
 * sanitizeQueryFilter() doing it now, before the plugin reads the filter, so
 * that an operator the application did not mean to trust is not rewritten
 * into one (`{ ssn: { $ne: x } }` from a request stays `$eq` of an object).
 */
function sanitizesFilter(query) {
  const model = query.model;
  return Boolean(
    model?.db?.config?.sanitizeFilter ??
    model?.db?.options?.sanitizeFilter ??
    model?.base?.options?.sanitizeFilter ??
    query.mongooseOptions().sanitizeFilter,
  );
}

function sanitizeQueryFilter(query, filter) {
  return query.model.base.sanitizeFilter(filter);
}

/**
 * `mongoose.trusted(obj)` of the model's Mongoose instance (each package
 * copy has its own marker): the conditions the plugin builds are its own,
 * and Mongoose's sanitizeFilter must leave them as they are.
 */
function trustFor(model) {
  const base = model && model.base;
  return base && typeof base.trusted === 'function' ? (obj) => base.trusted(obj) : (obj) => obj;
}

/** The field a distinct() query asks for (Mongoose keeps it in `query._distinct`; there is no getter). */
function distinctFieldOf(query) {
  return query._distinct;
}

/** The `{ fn, opts }` entry of the first plugin of `schema` that `isPlugin(fn)` accepts. */
function pluginEntryOf(schema, isPlugin) {
  return (Array.isArray(schema.plugins) && schema.plugins.find((p) => isPlugin(p.fn))) || undefined;
}

/** Whether `value` is the discriminator key value of a discriminator's schema. */
function matchesDiscriminatorValue(schema, value) {
  return Boolean(schema.discriminatorMapping && schema.discriminatorMapping.value === value);
}

/** The BSON library of the Mongoose instance a model or schema belongs to. */
function bsonOf(schema, model) {
  const base = (model && model.base) || (schema && schema.base);
  const bson = base && base.mongo && base.mongo.BSON;
  if (!bson) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      'fieldEncryption: cannot find the BSON library of the Mongoose instance this schema belongs to',
    );
  }
  return bson;
}

module.exports = {
  named,
  mongooseHook,
  addErrorHook,
  addPostHookFirst,
  isDocument,
  documentState,
  isSubdocument,
  rootDocument,
  schemaOf,
  selectedFieldsOf,
  hasCastError,
  documentStorage,
  isTrackedArray,
  arrayStorage,
  arrayOperators,
  markArrayReplaced,
  pendingIncrements,
  storedGetOptions,
  schemaTypeKind,
  mapValueTypeOf,
  elementTypeOf,
  subdocConstructorOf,
  defaultOf,
  validateConverted,
  distinctFieldOf,
  sanitizesFilter,
  sanitizeQueryFilter,
  trustFor,
  pluginEntryOf,
  matchesDiscriminatorValue,
  bsonOf,
};
