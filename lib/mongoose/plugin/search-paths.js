'use strict';

/**
 * TEMP shim (search-queries branch only; the lead takes the search-writes
 * branch's module): the searchable paths of a schema, "state.search", a Map
 * schemaPath -> { path, indexPath, kind: 'scalar'|'array'|'container',
 * unique, normalize }, from the schema type option `searchable` (true or an
 * options object) and the plugin option `searchable: [path | { path, ...options }]`.
 */

const { codes, FieldCryptError } = require('../../core/errors');
const { indexOf } = require('./path-index');
const { pluginOptionsOf } = require('./options');

const INDEX_SUFFIX = '_bidx';
const NORMALIZERS = ['trim', 'lowercase', 'collapseWhitespace', 'normalize'];
const SEARCH = new WeakMap(); // schema -> Map

/** The index path of an encrypted path: its sibling in the same parent. */
function indexPathOf(path) {
  return `${path}${INDEX_SUFFIX}`;
}

function entryOf(leaf, options) {
  const opts = options === true ? {} : options;
  const normalize = {};
  for (const name of NORMALIZERS) if (opts[name] !== undefined) normalize[name] = opts[name];
  const mixed = leaf.schemaType.instance === 'Mixed';
  return {
    path: leaf.path,
    indexPath: indexPathOf(leaf.path),
    kind: leaf.element ? 'array' : mixed ? 'container' : 'scalar',
    unique: Boolean(opts.unique),
    normalize,
  };
}

/** state.search of a schema. */
function searchOf(schema) {
  let search = SEARCH.get(schema);
  if (search !== undefined) return search;
  search = new Map();
  const index = indexOf(schema);
  for (const leaf of index.leafList) {
    if (leaf.path.includes('$*')) continue;
    const own = leaf.schemaType.options && leaf.schemaType.options.searchable;
    const outer = schema.path(leaf.path);
    const declared = own || (outer && outer.options && outer.options.searchable);
    if (declared) search.set(leaf.path, entryOf(leaf, declared));
  }
  const options = pluginOptionsOf(schema);
  for (const item of (options && options.searchable) || []) {
    const { path, ...rest } = typeof item === 'string' ? { path: item } : item;
    const leaf = index.leaves.get(path);
    if (!leaf) throw new FieldCryptError(codes.INVALID_ARGUMENT, `searchable: '${path}' is not an encrypted path`);
    search.set(path, entryOf(leaf, rest));
  }
  SEARCH.set(schema, search);
  return search;
}

module.exports = { INDEX_SUFFIX, indexPathOf, searchOf };
