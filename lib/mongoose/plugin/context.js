'use strict';

/**
 * The context every hook hands to the value, update, filter and read
 * functions: { options, modelName, collection, bson, documentId, index,
 * scope?, target? } (`target`: the documents a query update writes, for
 * document-bound paths, see binding.js).
 *
 * Invariant: building a context prepares its index (prepareSchema), so the
 * encrypted SchemaTypes hold ciphertext before any value is encrypted.
 */

const { bsonOf, schemaOf } = require('../compat');
const { indexOf, queryIndex } = require('./path-index');
const { prepareSchema } = require('./schema-types');
const { isPlainObject } = require('./values');
const { collectionOf, queryTarget } = require('./binding');
const { READ_CONTEXTS } = require('./state');

/**
 * Everything a hook needs: the plugin options, the model (for messages and
 * audit records), BSON, the document id when one is known, and the index.
 */
function contextFor(options, model, schema, documentId, index) {
  const bson = bsonOf(schema, model);
  const idx = index || indexOf(schema);
  prepareSchema(idx, () => bson);
  return {
    options,
    modelName: (model && model.modelName) || undefined,
    collection: collectionOf(model),
    bson,
    documentId,
    index: idx,
  };
}

/** The context of a document's write or read; `id` defaults to the document's `_id`. */
function documentContext(options, doc, id) {
  return contextFor(options, doc.constructor, schemaOf(doc), id === undefined ? doc._id : id);
}

/**
 * documentContext() for the init hook, which runs once per document loaded:
 * what does not change between documents of a model (BSON, the index, the
 * collection) is looked up once per model and kept in READ_CONTEXTS.
 */
function readContext(options, doc, id) {
  const model = doc.constructor;
  const schema = schemaOf(doc);
  let base = READ_CONTEXTS.get(model);
  if (
    base === undefined ||
    base.options !== options ||
    base.index.schema !== schema ||
    base.collectionObject !== model.collection
  ) {
    base = { ...contextFor(options, model, schema, undefined), collectionObject: model.collection };
    READ_CONTEXTS.set(model, base);
  }
  return {
    options,
    modelName: base.modelName,
    collection: base.collection,
    bson: base.bson,
    documentId: id,
    index: base.index,
  };
}

/**
 * The context of a query; setters run with the query as `this`, as when
 * Mongoose casts an update. What it writes is the filter's documents.
 */
function queryContext(options, query, filter) {
  const model = query.model;
  return {
    ...contextFor(options, model, model.schema, idFromFilter(filter), queryIndex(model, filter)),
    scope: query,
    target: queryTarget(query.op, filter, query.op === 'updateMany'),
  };
}

/** `_id` when a filter names exactly one document by it. */
function idFromFilter(filter) {
  if (!filter || typeof filter !== 'object' || !Object.hasOwn(filter, '_id')) return undefined;
  const id = filter._id;
  if (id !== null && typeof id === 'object' && isPlainObject(id)) return undefined;
  return id;
}

module.exports = { contextFor, documentContext, readContext, queryContext, idFromFilter };
