'use strict';

/**
 * toJSON() and toObject() of documents and subdocuments of schemas using the
 * plugin: encrypted paths are omitted unless `includeDecrypted` (per call,
 * or the plugin option of the top-level schema).
 *
 * Invariants: the filter runs before the application's own transform, also
 * when the application sets toJSON/toObject options after the plugin (it is
 * installed again when the model is compiled); a subdocument's own output
 * omits every path encrypted below it, from every place its schema is used
 * (fail closed); the filter works on the output object, never the document.
 */

const { forEachAtPath, splitPath } = require('../../paths');
const { named, isDocument, isSubdocument, rootDocument, schemaOf, bsonOf } = require('../compat');
const { normalizeOptions, pluginOptionsOf } = require('./options');
const { indexOf } = require('./path-index');
const { decryptPlain } = require('./values');
const { collectionOf } = require('./binding');
const { SUBDOCUMENT_LEAVES, OUTPUT_FILTER } = require('./state');

/**
 * A subdocument's own toJSON()/toObject() (`res.json(doc.identifications)`)
 * must omit its encrypted fields too, including those the top-level schema
 * names (`fields: ['identifications.idNumber']`). Each child schema under a
 * container gets the relative leaves (from every place it is used: fail
 * closed) and the output filter.
 */
function registerSubdocumentLeaves(index) {
  for (const container of index.containers.values()) {
    if (container.kind !== 'single' && container.kind !== 'docarray') continue;
    const child = container.schemaType && container.schemaType.schema;
    if (!child) continue;
    const entry = SUBDOCUMENT_LEAVES.get(child) || { leafList: [] };
    for (const leaf of index.under.get(container.path)) {
      const path = leaf.path.slice(container.path.length + 1);
      if (!entry.leafList.some((l) => l.path === path)) entry.leafList.push({ ...leaf, path, schemaPath: leaf.path });
    }
    SUBDOCUMENT_LEAVES.set(child, entry);
    installOutputFilter(child);
  }
}

/**
 * The transform behind toJSON()/toObject() of documents and subdocuments of
 * schemas using the plugin: encrypted paths are omitted unless
 * `includeDecrypted` (per call, or the plugin option of the top-level
 * schema). Included, they are decrypted where they still hold ciphertext
 * (explicit mode, or during a save); in auto mode the document holds
 * plaintext already.
 */
function outputFilter(doc, ret, callOptions) {
  if (!isDocument(doc) || ret === null || typeof ret !== 'object') return ret;
  const root = rootDocument(doc);
  const rootSchema = root && schemaOf(root);
  const options = (rootSchema && pluginOptionsOf(rootSchema)) || normalizeOptions({});
  const sub = isSubdocument(doc);
  const index = sub ? SUBDOCUMENT_LEAVES.get(schemaOf(doc)) : rootSchema && indexOf(rootSchema);
  if (!index) return ret;
  const include =
    callOptions && typeof callOptions.includeDecrypted === 'boolean'
      ? callOptions.includeDecrypted
      : options.includeDecrypted;
  if (!sub) plainMapValues(index, ret, callOptions);
  if (!include) return omitPlain(index, ret);
  const model = root && !isSubdocument(root) ? root.constructor : undefined;
  const ctx = {
    options: { ...options, allowUnencrypted: true },
    modelName: model && model.modelName,
    collection: collectionOf(model),
    bson: bsonOf(rootSchema, model),
    documentId: root && root._id,
  };
  return decryptPlain(ctx, index, ret);
}

/** Removes every encrypted path from a plain document (toJSON/toObject output). */
function omitPlain(index, doc) {
  for (const leaf of index.leafList) {
    // An encrypted array or Map disappears as a whole.
    const parts = splitPath(leaf.path).slice();
    while (parts.length > 1 && parts[parts.length - 1] === '$*') parts.pop();
    const key = parts.pop();
    const remove = (container) => {
      if (container instanceof Map) container.delete(key);
      else if (container && typeof container === 'object') delete container[key];
    };
    if (parts.length === 0) remove(doc);
    else forEachAtPath(doc, parts.join('.'), remove);
  }
  return doc;
}

/**
 * toObject() leaves the values of a Map of subdocuments as documents; the
 * output filter works on plain objects, so those become their own
 * toObject()/toJSON() output (what JSON.stringify would make of them).
 */
function plainMapValues(index, ret, callOptions) {
  for (const container of index.containers.values()) {
    if (container.kind !== 'map') continue;
    forEachAtPath(ret, container.path, (map) => {
      if (map === null || typeof map !== 'object') return;
      const entries = map instanceof Map ? [...map] : Object.entries(map);
      for (const [key, value] of entries) {
        if (!isDocument(value)) continue;
        const plain = value.toObject(callOptions);
        if (map instanceof Map) map.set(key, plain);
        else map[key] = plain;
      }
    });
  }
}

/** Puts outputFilter in front of the schema's toJSON and toObject transforms (once). */
function installOutputFilter(schema) {
  for (const kind of ['toJSON', 'toObject']) {
    const current = schema.get(kind) || {};
    if (current.transform && current.transform[OUTPUT_FILTER]) continue;
    const inner = current.transform;
    const transform = named(`fieldcrypt${kind.slice(2)}Filter`, function (doc, ret, callOptions) {
      const filtered = outputFilter(doc, ret, callOptions);
      return typeof inner === 'function' ? inner.call(this, doc, filtered, callOptions) : filtered;
    });
    Object.defineProperty(transform, OUTPUT_FILTER, { value: true });
    schema.set(kind, { ...current, transform });
  }
}

module.exports = { registerSubdocumentLeaves, installOutputFilter };
