'use strict';

/**
 * The path index: which paths of a schema are encrypted. From the schema
 * (recursing into single nested subdocuments, document arrays, Maps and
 * discriminators) it lists the encrypted leaves ("raw" dotted paths:
 * `ids.idNumber` for every element of `ids`, `tags` for every element of an
 * array of primitives, `secrets.$*` for every value of a Map) and the
 * containers above them; and it tells how an update or filter key relates
 * to them (normalizeKey, relate).
 *
 * Invariants: `_id`, the version key and the discriminator key are never
 * encrypted; a `fields` entry that matches no path throws when the plugin is
 * applied; queries on a base model with discriminators see the union of all
 * their encrypted paths (fail closed).
 */

const { codes, FieldCryptError, describeType } = require('../../core/errors');
const { splitPath } = require('../../paths');
const { schemaTypeKind, mapValueTypeOf, elementTypeOf, matchesDiscriminatorValue } = require('../compat');
const { BIND_MODES, invalidOption, pluginOptionsOf, searchOptionsOf } = require('./options');
const { buildSearch, searchablePathsOf } = require('./search-paths');
const { INDEXES, INDEX_TYPES, UNIONS } = require('./state');

/** Paths never encrypted: Mongoose needs them as they are. */
function isProtectedPath(schema, relativePath) {
  const last = relativePath.slice(relativePath.lastIndexOf('.') + 1);
  return (
    last === '_id' || relativePath === schema.options.versionKey || relativePath === schema.options.discriminatorKey
  );
}

/**
 * The encrypted paths of `schema`:
 *   leaves:     raw path -> { path, schemaType, element, buffer, text, bind }
 *               (`bind`: false, 'collection' or 'document', see binding.js)
 *   containers: raw path -> { path, kind: 'nested'|'single'|'docarray'|'map', schemaType }
 *               (every path above a leaf)
 *   arrays:     paths whose value is an array (document arrays, arrays of primitives)
 *   maps:       paths whose value is a Map
 *   under:      container path -> the leaves below it
 */
function indexOf(schema) {
  let index = INDEXES.get(schema);
  if (index === undefined) {
    index = buildIndex(schema);
    INDEXES.set(schema, index);
  }
  return index;
}

function buildIndex(schema) {
  const leaves = new Map();
  const kinds = new Map(); // path -> container kind or 'array'
  const types = new Map(); // container path -> SchemaType
  const listed = new Set(); // which `fields` entries matched something
  const aliases = new Map(); // raw alias path -> raw path (Mongoose `alias` options)
  const indexPaths = new Set(); // raw paths of the blind-index siblings (search-paths.js)

  function scopeMatches(full, scopes) {
    for (const scope of scopes) {
      if (scope.base && !full.startsWith(scope.base)) continue;
      const parts = splitPath(full.slice(scope.base.length));
      let prefix = '';
      for (const part of parts) {
        prefix = prefix ? `${prefix}.${part}` : part;
        if (scope.fields.has(prefix)) {
          listed.add(scope.base + prefix);
          return true;
        }
      }
    }
    return false;
  }

  // The schema's `bind` plugin option is the default of every leaf; a path's
  // own `bind` schema option (or its container's) overrides it.
  const rootOptions = pluginOptionsOf(schema);
  const defaultBind = rootOptions ? rootOptions.bind : false;
  // The plugin's `searchable` option; a path's own `searchable` schema option.
  const searchList = rootOptions ? rootOptions.searchable : new Map();
  const searchListed = new Set();
  function searchableOf(full, ...schemaTypes) {
    if (searchList.has(full)) {
      searchListed.add(full);
      return searchOptionsOf(searchList.get(full), full);
    }
    for (const t of schemaTypes) {
      const own = t && t.options ? t.options.searchable : undefined;
      if (own !== undefined && own !== false) return searchOptionsOf(own, full);
    }
    return undefined;
  }
  function refuseUnencryptedSearchable(full, schemaType) {
    if (searchableOf(full, schemaType)) {
      throw invalidOption(
        `'${full}' is searchable but not encrypted: a blind index is kept only for an encrypted value ` +
          '(mark it encrypted: true or list it in fields; an object whose fields are encrypted one by one ' +
          'cannot be searched as a whole: mark its fields searchable, or make it one encrypted Mixed value)',
      );
    }
  }

  function visitSchema(s, prefix, scopes, inherited, bindAbove) {
    const own = pluginOptionsOf(s);
    if (own && own.fields.length) scopes = [...scopes, { base: prefix, fields: new Set(own.fields) }];
    for (const [alias, real] of Object.entries(s.aliases || {})) aliases.set(prefix + alias, prefix + real);
    s.eachPath((path, schemaType) => {
      if (path.includes('$*')) return; // a Map's value type: reached from the Map path
      visitType(s, schemaType, prefix, path, scopes, inherited, bindAbove);
    });
  }

  /** A SchemaType's own `bind` option (validated), or `above`. */
  function bindOf(schemaType, full, above) {
    const own = schemaType && schemaType.options ? schemaType.options.bind : undefined;
    if (own === undefined) return above;
    if (!BIND_MODES.includes(own)) throw invalidOption(`'${full}': bind must be false, 'collection' or 'document'`);
    return own;
  }

  function visitType(owner, schemaType, prefix, relative, scopes, inherited, bindAbove) {
    const full = prefix + relative;
    if (INDEX_TYPES.has(schemaType)) {
      indexPaths.add(full);
      return;
    }
    const bind = bindOf(schemaType, full, bindAbove);
    const explicit = schemaType.options && schemaType.options.encrypted === true;
    const marked = inherited || explicit || scopeMatches(full, scopes);
    if (isProtectedPath(owner, relative)) {
      if (explicit || (!inherited && marked)) {
        throw invalidOption(
          `'${full}' cannot be encrypted: Mongoose needs _id, the version key and the discriminator key as they are`,
        );
      }
      return;
    }
    const kind = schemaTypeKind(schemaType);
    if (kind === 'single' || kind === 'docarray') {
      refuseUnencryptedSearchable(full, schemaType);
      kinds.set(full, kind);
      types.set(full, schemaType);
      visitSchema(schemaType.schema, `${full}.`, scopes, marked, bind);
    } else if (kind === 'map') {
      kinds.set(full, 'map');
      types.set(full, schemaType);
      const valueType = mapValueTypeOf(schemaType);
      if (valueType) visitType(owner, valueType, `${full}.`, '$*', scopes, marked, bind);
    } else if (kind === 'array') {
      kinds.set(full, 'array');
      const elementType = elementTypeOf(schemaType);
      const elementMarked = elementType && elementType.options && elementType.options.encrypted === true;
      if (marked || elementMarked) {
        addLeaf(full, elementType || schemaType, true, bindOf(elementType, full, bind));
        leaves.get(full).searchOptions = searchableOf(full, schemaType, elementType);
      } else {
        refuseUnencryptedSearchable(full, schemaType);
        if (elementType) refuseUnencryptedSearchable(full, elementType);
      }
    } else if (marked) {
      addLeaf(full, schemaType, false, bind);
      leaves.get(full).searchOptions = searchableOf(full, schemaType);
    } else {
      refuseUnencryptedSearchable(full, schemaType);
    }
  }

  // `element`: the leaf is an array whose elements are encrypted one by one
  // (an element that is itself an array, in an array of arrays, is one value,
  // as lib/paths.js visits it); `schemaType` is then the element type.
  // `bind`: undefined when neither the path nor a container above it says.
  function addLeaf(path, schemaType, element, bind) {
    leaves.set(path, {
      path,
      schemaType,
      element,
      buffer: schemaType.instance === 'Buffer',
      // String values are stored as text (lib/core/codec.js): decrypt() reads them without the codec.
      text: schemaType.instance === 'String',
      bind: bind === undefined ? defaultBind : bind,
    });
  }

  visitSchema(schema, '', [], false, undefined);

  const own = rootOptions;
  if (own) {
    for (const field of own.fields) {
      const normalized = field.endsWith('.$*') ? field.slice(0, -3) : field;
      if (!listed.has(field) && !listed.has(normalized)) {
        throw invalidOption(
          `fields: '${field}' is not a path of the schema (apply the plugin after defining the paths)`,
        );
      }
    }
  }
  for (const path of searchList.keys()) {
    if (searchListed.has(path)) continue;
    if (schema.pathType(path) === 'adhocOrUndefined') {
      throw invalidOption(
        `searchable: '${path}' is not a path of the schema (apply the plugin after defining the paths)`,
      );
    }
    refuseUnencryptedSearchable(path, { options: { searchable: true } });
  }
  return finishIndex(schema, leaves, kinds, types, aliases, indexPaths);
}

function finishIndex(schema, leaves, kinds, types, aliases, indexPaths) {
  const containers = new Map();
  const under = new Map();
  for (const leaf of leaves.values()) {
    const parts = splitPath(leaf.path);
    let prefix = '';
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = prefix ? `${prefix}.${parts[i]}` : parts[i];
      if (!containers.has(prefix)) {
        containers.set(prefix, { path: prefix, kind: kinds.get(prefix) || 'nested', schemaType: types.get(prefix) });
        under.set(prefix, []);
      }
      under.get(prefix).push(leaf);
    }
  }
  const arrays = new Set();
  const maps = new Set();
  for (const [path, kind] of kinds) {
    if (!containers.has(path) && !leaves.has(path)) continue;
    if (kind === 'docarray' || kind === 'array') arrays.add(path);
    if (kind === 'map') maps.add(path);
  }
  const search = buildSearch(leaves);
  return {
    schema,
    leaves,
    leafList: [...leaves.values()],
    containers,
    under,
    arrays,
    maps,
    aliases,
    search,
    indexPaths,
  };
}

/** The union of several indexes (a base model and its discriminators). */
function unionIndex(indexes) {
  if (indexes.length === 1) return indexes[0];
  const leaves = new Map();
  const containers = new Map();
  const arrays = new Set();
  const maps = new Set();
  const aliases = new Map();
  const search = new Map();
  const indexPaths = new Set();
  for (const index of indexes) {
    for (const [k, v] of index.search) if (!search.has(k)) search.set(k, v);
    for (const p of index.indexPaths) indexPaths.add(p);
    for (const [k, v] of index.leaves) if (!leaves.has(k)) leaves.set(k, v);
    for (const [k, v] of index.containers) if (!containers.has(k)) containers.set(k, v);
    for (const p of index.arrays) arrays.add(p);
    for (const p of index.maps) maps.add(p);
    for (const [k, v] of index.aliases) if (!aliases.has(k)) aliases.set(k, v);
  }
  const under = new Map();
  for (const path of containers.keys()) {
    under.set(
      path,
      [...leaves.values()].filter((leaf) => leaf.path.startsWith(`${path}.`)),
    );
  }
  return {
    schema: indexes[0].schema,
    leaves,
    leafList: [...leaves.values()],
    containers,
    under,
    arrays,
    maps,
    aliases,
    search,
    indexPaths,
  };
}

function discriminatorsOf(model) {
  return model && model.discriminators ? Object.values(model.discriminators) : [];
}

/** The model a raw document belongs to: a discriminator when its key says so (as Mongoose decides). */
function modelForObject(model, object) {
  const key = model.schema.options.discriminatorKey;
  if (object && typeof object === 'object' && Object.hasOwn(object, key)) {
    const value = object[key];
    for (const d of discriminatorsOf(model)) {
      if (d.modelName === value || matchesDiscriminatorValue(d.schema, value)) return d;
    }
  }
  return model;
}

/**
 * The paths an update or filter on `model` may touch: the model's own, or,
 * on a base model with discriminators and no discriminator key in the filter,
 * the union of all of them (fail closed: a path encrypted in any
 * discriminator is treated as encrypted).
 */
function queryIndex(model, filter) {
  const chosen = modelForObject(model, filter);
  if (chosen !== model) return indexOf(chosen.schema);
  const discriminators = discriminatorsOf(model);
  if (discriminators.length === 0) return indexOf(model.schema);
  const cached = UNIONS.get(model);
  if (cached && cached.count === discriminators.length) return cached.index;
  const index = unionIndex([indexOf(model.schema), ...discriminators.map((d) => indexOf(d.schema))]);
  UNIONS.set(model, { count: discriminators.length, index });
  return index;
}

/** The indexes of a schema or model and of its discriminators; `what` names the caller in errors. */
function indexesOf(schemaOrModel, what) {
  const isModel = typeof schemaOrModel === 'function' && schemaOrModel.schema;
  const schema = isModel ? schemaOrModel.schema : schemaOrModel;
  if (!schema || typeof schema.eachPath !== 'function') {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `${what}() expects a Mongoose schema or model, got ${describeType(schemaOrModel)}`,
    );
  }
  const more = isModel
    ? discriminatorsOf(schemaOrModel).map((d) => d.schema)
    : Object.values(schema.discriminators || {});
  return [indexOf(schema), ...more.map((s) => indexOf(s))];
}

/**
 * The raw dotted paths the plugin encrypts in a schema or model (through
 * arrays; every value of a Map as `$*`), including a model's discriminators.
 */
function encryptedPaths(schemaOrModel) {
  const paths = new Set();
  for (const index of indexesOf(schemaOrModel, 'encryptedPaths')) for (const p of index.leaves.keys()) paths.add(p);
  return [...paths];
}

/**
 * The searchable paths of a schema or model (and its discriminators):
 * `{ path, indexPath, kind, unique, normalize }` each (search-paths.js); the
 * CLI's reindex and status read them.
 */
function searchablePaths(schemaOrModel) {
  return searchablePathsOf(indexesOf(schemaOrModel, 'searchablePaths'));
}

// ---------------------------------------------------------------------------
// Update and filter keys

const ARRAY_SELECTOR = /^(\d+|\$|\$\[\]|\$\[[A-Za-z0-9_]*\])$/;
const ARRAY_FILTER_ID = /^\$\[([A-Za-z0-9_]+)\]$/;

/**
 * The raw schema path an update or filter key refers to: array indexes and
 * positional operators (`$`, `$[]`, `$[name]`) after an array are dropped,
 * a Map key becomes `$*`, an alias becomes its path (Mongoose translates
 * aliases after the hooks ran, with `translateAliases`). `element` says the
 * key names one element of an array; `segments[last]` is the key's last
 * segment that names a path (what follows it selects array elements). `$[name]` identifiers are recorded with
 * their array's path.
 */
function normalizeKey(index, key, arrayFilterIds) {
  let path = '';
  let element = false;
  let last = -1; // the last segment that named a path (not an array selector)
  const segments = key.split('.');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    if (path && index.arrays.has(path) && ARRAY_SELECTOR.test(segment)) {
      element = true;
      const id = ARRAY_FILTER_ID.exec(segment);
      if (id && arrayFilterIds) arrayFilterIds.set(id[1], path);
      continue;
    }
    element = false;
    last = i;
    if (path && index.maps.has(path)) {
      path += '.$*';
      continue;
    }
    path = path ? `${path}.${segment}` : segment;
    const aliased = index.aliases.get(path);
    if (aliased !== undefined) path = aliased;
  }
  return { path, element, segments, last };
}

/**
 * How a normalized path relates to the encrypted paths: the path of a leaf,
 * a container above leaves, inside a leaf's value, or unrelated (null).
 */
function relate(index, path) {
  const leaf = index.leaves.get(path);
  if (leaf) return { kind: 'leaf', leaf };
  const container = index.containers.get(path);
  if (container) return { kind: 'container', container };
  const parts = splitPath(path);
  let prefix = '';
  for (let i = 0; i < parts.length - 1; i++) {
    prefix = prefix ? `${prefix}.${parts[i]}` : parts[i];
    const outer = index.leaves.get(prefix);
    if (outer) return { kind: 'inside', leaf: outer };
  }
  return null;
}

/** The leaf path to name in an error about a relation: the leaf's, or the first leaf under a container. */
function relatedLeafPath(index, relation) {
  return relation.kind === 'container' ? index.under.get(relation.container.path)[0].path : relation.leaf.path;
}

module.exports = {
  indexOf,
  buildIndex,
  modelForObject,
  queryIndex,
  encryptedPaths,
  searchablePaths,
  normalizeKey,
  relate,
  relatedLeafPath,
};
