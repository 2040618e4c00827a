'use strict';

/**
 * Searchable paths (issue 20, blind indexes): which encrypted leaves carry a
 * keyed index value, how their input is normalised, and where the index
 * lives. The value of an encrypted leaf `<parent>.<leaf>` is indexed at the
 * sibling path `<parent>.<leaf>_bidx`, in the same parent (inside each
 * element of a document array), so that a positional update of the leaf has
 * the same positional path to its index.
 *
 * - kind 'scalar': one value -> one "VV:hex" string;
 * - kind 'array': an array of scalars encrypted element by element -> an
 *   array of "VV:hex" in element order (a multikey index);
 * - kind 'container': an object or array encrypted as a whole -> one
 *   "VV:hex" of its canonical encoding (lib/core/index-input.js).
 *
 * Invariants: a searchable path is an encrypted leaf (anything else throws
 * INVALID_ARGUMENT when the plugin is applied); index paths are never
 * encrypted; they reach no hydrated document or lean result unless the
 * query's projection names them (stripIndexValues: not `select: false`,
 * which makes Mongoose send a projection with findOneAndUpdate and friends
 * that FerretDB v1 refuses); each index path gets a schema index (`unique`
 * -> unique and sparse), so syncIndexes() builds it. The search table is computed with the
 * path index (path-index.js) and kept on it: `index.search`, schema path ->
 * `{ path, indexPath, kind, unique, normalize }`.
 */

const { codes, FieldCryptError, describeType } = require('../../core/errors');
const { splitPath, forEachAtPath } = require('../../paths');
const { invalidOption } = require('./options');
const { INDEX_TYPES } = require('./state');

const INDEX_SUFFIX = '_bidx';

/** The index path of a searchable schema path: the sibling `<leaf>_bidx`. */
function indexPathOf(path) {
  if (typeof path !== 'string' || path === '') {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `indexPathOf() expects a schema path, got ${describeType(path)}`);
  }
  return `${path}${INDEX_SUFFIX}`;
}

/** The kind of index a searchable leaf gets (see the module comment). */
function kindOf(leaf) {
  if (leaf.element) return 'array';
  const instance = leaf.schemaType.instance;
  return instance === 'Mixed' || instance === 'Array' || instance === 'Object' ? 'container' : 'scalar';
}

/**
 * The search table of an index (path-index.js finishIndex): every leaf that
 * has `searchOptions` gets its entry, and the leaf its `search` property.
 * Refuses a searchable leaf inside a Map (its index would need a key per
 * Map entry).
 */
function buildSearch(leaves) {
  const search = new Map();
  for (const leaf of leaves.values()) {
    if (!leaf.searchOptions) continue;
    if (splitPath(leaf.path).includes('$*')) {
      throw invalidOption(
        `'${leaf.path}' cannot be searchable: a Map value has no fixed place for its index; ` +
          'use a document array of { key, value } instead',
      );
    }
    const entry = Object.freeze({
      path: leaf.path,
      indexPath: indexPathOf(leaf.path),
      kind: kindOf(leaf),
      unique: leaf.searchOptions.unique,
      normalize: leaf.searchOptions.normalize,
    });
    leaf.search = entry;
    search.set(leaf.path, entry);
  }
  return search;
}

/**
 * Adds the index paths of `index.search` to the schemas that hold their
 * leaves (a child schema for paths under a subdocument or a document array),
 * and declares their indexes on `schema` (the top-level
 * one). Called once, when the plugin is applied.
 */
function addIndexPaths(schema, index) {
  for (const entry of index.search.values()) {
    // The innermost subdocument (or document array) schema above the leaf owns the sibling.
    let owner = schema;
    let base = '';
    for (const container of index.containers.values()) {
      if (container.kind !== 'single' && container.kind !== 'docarray') continue;
      if (!entry.path.startsWith(`${container.path}.`) || container.path.length + 1 <= base.length) continue;
      owner = container.schemaType.schema;
      base = `${container.path}.`;
    }
    const relative = entry.indexPath.slice(base.length);
    if (owner.path(relative)) {
      if (INDEX_TYPES.has(owner.path(relative))) continue;
      throw invalidOption(
        `'${entry.path}' cannot be searchable: its index path '${entry.indexPath}' is already a path of the schema`,
      );
    }
    const definition = entry.kind === 'array' ? { type: [String], default: undefined } : { type: String };
    owner.add({ [relative]: definition });
    INDEX_TYPES.add(owner.path(relative));
    schema.index({ [entry.indexPath]: 1 }, entry.unique ? { unique: true, sparse: true } : {});
  }
}

/**
 * Removes the index values from a plain document (a raw document about to
 * initialise a hydrated one, a lean result), except those whose index path
 * `projection` includes by name (`{ 'a.b_bidx': 1 }`, `.select('a.b_bidx')`).
 */
function stripIndexValues(index, doc, projection) {
  if (index.search.size === 0 || doc === null || typeof doc !== 'object') return doc;
  for (const entry of index.search.values()) {
    if (projection && projection[entry.indexPath]) continue;
    const parts = splitPath(entry.indexPath);
    const name = parts[parts.length - 1];
    if (parts.length === 1) {
      delete doc[name];
      continue;
    }
    forEachAtPath(doc, parts.slice(0, -1).join('.'), (parent) => {
      if (parent !== null && typeof parent === 'object' && !Array.isArray(parent)) delete parent[name];
    });
  }
  return doc;
}

/** The search table of a schema or model, including its discriminators' (for searchablePaths). */
function searchablePathsOf(indexes) {
  const out = new Map();
  for (const index of indexes) for (const [path, entry] of index.search) if (!out.has(path)) out.set(path, entry);
  return [...out.values()].map((entry) => ({ ...entry, normalize: { ...entry.normalize } }));
}

module.exports = {
  INDEX_SUFFIX,
  indexPathOf,
  buildSearch,
  addIndexPaths,
  stripIndexValues,
  searchablePathsOf,
};
