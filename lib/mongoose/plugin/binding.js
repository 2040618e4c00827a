'use strict';

/**
 * Context binding in the plugin: which encrypted paths are bound how, the
 * context (AES-GCM additional data) of one value, and the rule for query
 * updates. A bound value decrypts only where it was written, so a ciphertext
 * copied to another field, document or collection by someone who can write
 * to the database is refused (ERR_FIELDCRYPT_CONTEXT_MISMATCH), never shown.
 *
 * - `bind: 'collection'`: `{ collection, path }`; `bind: 'document'`: also
 *   `id`, the root document's `_id` as canonical Extended JSON. `path` is the
 *   raw schema path (lib/core/context.js storedValueContext, the one the
 *   CLI uses too). Each leaf's mode is set when the index is built
 *   (path-index.js): its own `bind` schema option, its container's, or the
 *   plugin's `bind` option.
 * - Reads use the `_id` of the document read. Writes of documents use the
 *   document's `_id`; query updates and replacements use the one `_id` their
 *   filter pins by equality (`{ _id: x }`, `{ _id: { $eq: x } }`, also
 *   inside a top-level `$and`), cast as the schema's `_id` path casts it.
 *
 * Invariants: a leaf with `bind: false` never reaches this module (no extra
 * work per value for schemas without binding); a value is never written
 * bound to a place other than where it is stored: a write of a
 * document-bound value whose document is not known for certain (updateMany,
 * a filter without an `_id` equality, an upsert of an unknown `_id`, a
 * document without `_id`) throws before anything is sent; errors name the
 * model and path, never a value.
 */

const { decodeValue } = require('../../core/codec');
const { codes, FieldCryptError } = require('../../core/errors');
const { storedValueContext, sealedContext } = require('../../core/context');
const { isDocument, rootDocument, bsonOf } = require('../compat');
const { pluginOptionsOf, normalizeOptions } = require('./options');
const { indexOf } = require('./path-index');
const { COLLECTION_CONTEXTS } = require('./state');

function where(ctx, path) {
  return ctx.modelName ? `${ctx.modelName}.${path}` : path;
}

/** The collection a model stores its documents in. */
function collectionOf(model) {
  return (model && model.collection && model.collection.collectionName) || undefined;
}

function isPlainObject(value) {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

// ---------------------------------------------------------------------------
// Which document a query update writes

/**
 * The values a filter pins `_id` to by equality: `{ _id: x }`,
 * `{ _id: { $eq: x } }`, and the same inside a top-level `$and`.
 */
function pinnedIds(filter, out = []) {
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter)) return out;
  if (Object.hasOwn(filter, '_id')) {
    const id = filter._id;
    if (id !== null && typeof id === 'object' && isPlainObject(id) && Object.keys(id).some((k) => k[0] === '$')) {
      const keys = Object.keys(id);
      if (keys.length === 1 && keys[0] === '$eq') out.push(id.$eq);
    } else if (id !== undefined) {
      out.push(id);
    }
  }
  if (Array.isArray(filter.$and)) for (const sub of filter.$and) pinnedIds(sub, out);
  return out;
}

/** Describes a query update's target for leafContext(): `{ op, filter, many }`. */
function queryTarget(op, filter, many) {
  return { op, filter, many, id: undefined, text: undefined };
}

function refusedWrite(ctx, leaf, why) {
  const path = leaf.schemaPath || leaf.path;
  const op = ctx.target ? ctx.target.op : 'save';
  return new FieldCryptError(
    codes.UNSUPPORTED_QUERY,
    `${op} on ${where(ctx, path)}: the path is bound to its document (bind: 'document'), so a value written ` +
      `to it must know the one document it is stored in; ${why}. Read the document and save() it, or write ` +
      'with updateOne/findOneAndUpdate/findByIdAndUpdate filtered by _id equality ({ _id: … }). ' +
      'Nothing was sent to the database.',
    { modelName: ctx.modelName, path, operator: op },
  );
}

/** The `_id` a query update writes, as canonical Extended JSON; refuses when it is not known for certain. */
function targetIdText(ctx, leaf) {
  const target = ctx.target;
  if (target.text !== undefined) return target.text;
  if (target.many) throw refusedWrite(ctx, leaf, `${target.op} may write several documents`);
  const pinned = pinnedIds(target.filter);
  if (pinned.length === 0) {
    throw refusedWrite(
      ctx,
      leaf,
      'the filter does not name one _id by equality (an upsert would create an unknown _id)',
    );
  }
  const idType = ctx.index && ctx.index.schema && ctx.index.schema.path('_id');
  const texts = new Set();
  for (const id of pinned) {
    let cast = id;
    try {
      if (idType) cast = idType.cast(id);
    } catch {
      throw refusedWrite(ctx, leaf, 'the _id in the filter does not cast to the schema’s _id type');
    }
    texts.add(ctx.bson.EJSON.stringify(cast, { relaxed: false }));
  }
  if (texts.size !== 1) throw refusedWrite(ctx, leaf, 'the filter names different _id values');
  target.id = idType ? idType.cast(pinned[0]) : pinned[0];
  target.text = [...texts][0];
  return target.text;
}

/** The `_id` of the document a value is read from or saved with, as canonical Extended JSON. */
function documentIdText(ctx, leaf, write) {
  if (write && ctx.target) return targetIdText(ctx, leaf);
  const id = ctx.documentId;
  if (id === undefined || id === null) {
    if (write) throw refusedWrite(ctx, leaf, 'the document has no _id');
    const path = leaf.schemaPath || leaf.path;
    throw new FieldCryptError(
      codes.UNSUPPORTED_QUERY,
      `${where(ctx, path)} is bound to its document (bind: 'document'): decrypting it needs the document's _id, ` +
        'which this result does not have (projected out?). Include _id in the projection.',
      { modelName: ctx.modelName, path },
    );
  }
  const memo = ctx.idMemo;
  if (memo !== undefined && memo.id === id) return memo.text;
  const text = ctx.bson.EJSON.stringify(id, { relaxed: false });
  ctx.idMemo = { id, text };
  return text;
}

// ---------------------------------------------------------------------------
// The context of one value

/**
 * The context of a value of `leaf` (a bound leaf) in the place `ctx`
 * describes; `write`: for a value about to be written (a query update's
 * target decides the `_id`). Collection-bound contexts are made once per
 * (leaf, collection), their encoding cached by the core.
 */
function leafContext(ctx, leaf, write) {
  const path = leaf.schemaPath || leaf.path;
  const collection = ctx.collection;
  if (collection === undefined) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `${where(ctx, path)} is bound to its collection (bind: '${leaf.bind}'), ` +
        'but the model, and so the collection, is not known here.',
      { modelName: ctx.modelName, path },
    );
  }
  if (leaf.bind === 'document') return storedValueContext(collection, path, documentIdText(ctx, leaf, write));
  let byCollection = COLLECTION_CONTEXTS.get(leaf);
  if (byCollection === undefined) COLLECTION_CONTEXTS.set(leaf, (byCollection = new Map()));
  let context = byCollection.get(collection);
  if (context === undefined)
    byCollection.set(collection, (context = sealedContext(storedValueContext(collection, path))));
  return context;
}

/**
 * A replacement holding values bound to the `_id` its filter names carries
 * that `_id` (so Mongoose validates it as that document, and an upsert
 * inserts it with that `_id`); one naming another `_id` is refused.
 */
function bindReplacementId(ctx, replacement) {
  const target = ctx.target;
  if (!target || target.id === undefined) return;
  if (!Object.hasOwn(replacement, '_id')) {
    replacement._id = target.id;
    return;
  }
  if (ctx.bson.EJSON.stringify(replacement._id, { relaxed: false }) !== target.text) {
    const leaf = ctx.index.leafList.find((l) => l.bind === 'document');
    throw refusedWrite(ctx, leaf, 'the replacement names another _id than the filter');
  }
}

/** encrypt()'s options for a value of a bound leaf. */
function writeOptions(ctx, leaf) {
  return { context: leafContext(ctx, leaf, true) };
}

/**
 * Decrypts a stored value of a bound leaf (decodeValue's `options`):
 * returns `{ decoded, unbound }`, `unbound` when the value was written
 * without a context and accepted because of `allowUnbound` (it is then
 * written again, bound, on the next save of its path). A value bound
 * elsewhere, or unbound without `allowUnbound`, throws with the model and
 * path.
 */
function decodeBound(ctx, leaf, stored, options, write = false) {
  const context = leafContext(ctx, leaf, write);
  try {
    return { decoded: decodeValue(stored, ctx.bson, { ...options, context }), unbound: false };
  } catch (err) {
    if (err && err.code === codes.UNBOUND_VALUE && ctx.options.allowUnbound) {
      return { decoded: decodeValue(stored, ctx.bson, options), unbound: true };
    }
    throw bindingError(ctx, leaf, err);
  }
}

/** The core's binding errors, restated with the model and path. */
function bindingError(ctx, leaf, err) {
  const path = leaf.schemaPath || leaf.path;
  const details = { modelName: ctx.modelName, path };
  if (err && err.code === codes.CONTEXT_MISMATCH) {
    return new FieldCryptError(
      codes.CONTEXT_MISMATCH,
      `${where(ctx, path)} holds a value bound to another place (another document, path or collection): ` +
        'it was copied or moved here and is not shown.',
      details,
    );
  }
  if (err && err.code === codes.UNBOUND_VALUE) {
    return new FieldCryptError(
      codes.UNBOUND_VALUE,
      `${where(ctx, path)} is bound (bind: '${leaf.bind}') but holds a value encrypted without a binding. ` +
        'Bind existing values with `npx fieldcrypt bind`, or set allowUnbound: true for a migration window.',
      details,
    );
  }
  return err;
}

// ---------------------------------------------------------------------------
// Validators

/**
 * Decrypts a ciphertext of a bound leaf for its validators, from what
 * Mongoose passes them as `this`: the document (save, insertMany, bulkWrite
 * inserts) or the query (update validators on arrays, or with
 * `context: 'query'`).
 */
function decodeForValidation(leaf, value, scope, bson, buffer) {
  let model;
  let ctx;
  if (isDocument(scope)) {
    const root = rootDocument(scope);
    model = root.constructor;
    ctx = { documentId: root._id };
  } else if (scope && typeof scope.getFilter === 'function' && typeof scope.model === 'function') {
    model = scope.model;
    ctx = { target: queryTarget(scope.op, scope.getFilter(), scope.op === 'updateMany') };
  } else {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `${leaf.schemaPath || leaf.path} is bound (bind: '${leaf.bind}'): its validators need the document or the ` +
        "query; with runValidators on an update, also pass context: 'query'.",
      { path: leaf.schemaPath || leaf.path },
    );
  }
  Object.assign(ctx, {
    options: pluginOptionsOf(model.schema) || normalizeOptions({}),
    modelName: model.modelName,
    collection: collectionOf(model),
    bson: bson || bsonOf(model.schema, model),
    index: indexOf(model.schema),
  });
  return decodeBound(ctx, leaf, value, { buffer }, true).decoded;
}

// ---------------------------------------------------------------------------
// For the CLI

/**
 * Every bound raw path of a schema or model (a model's discriminators
 * too): `{ paths: [{ path, bind }], allowUnbound, collection }`
 * (`collection` only for a model). Internal: lib/cli/ builds `fieldcrypt
 * bind` and the binding counts of `status` on it.
 */
function pathBindings(schemaOrModel) {
  const isModel = typeof schemaOrModel === 'function' && schemaOrModel.schema;
  const schema = isModel ? schemaOrModel.schema : schemaOrModel;
  if (!schema || typeof schema.eachPath !== 'function') {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, 'pathBindings() expects a Mongoose schema or model');
  }
  const schemas = [
    schema,
    ...(isModel
      ? Object.values(schemaOrModel.discriminators || {}).map((d) => d.schema)
      : Object.values(schema.discriminators || {})),
  ];
  const paths = new Map();
  for (const s of schemas) {
    for (const leaf of indexOf(s).leafList) {
      if (leaf.bind && !paths.has(leaf.path)) paths.set(leaf.path, { path: leaf.path, bind: leaf.bind });
    }
  }
  const options = pluginOptionsOf(schema);
  const result = { paths: [...paths.values()], allowUnbound: Boolean(options && options.allowUnbound) };
  if (isModel) result.collection = collectionOf(schemaOrModel);
  return result;
}

module.exports = {
  collectionOf,
  queryTarget,
  leafContext,
  writeOptions,
  bindReplacementId,
  decodeBound,
  decodeForValidation,
  pathBindings,
};
