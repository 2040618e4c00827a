'use strict';

/**
 * The write side of blind indexes (issue 20): every time the plugin encrypts
 * the value of a searchable leaf, the same operation writes its index value
 * at the sibling `<leaf>_bidx` (search-paths.js), and removes it when the
 * value is removed.
 *
 * - live documents (save, create, insertMany, bulkSave): indexLive() sets the
 *   index of every new or modified searchable value through the document
 *   (so Mongoose sends it with the delta) before encryptLive() encrypts;
 *   forgetIndexValues() removes the index values from the document after the
 *   write, as a read shows it (search-paths.js stripIndexValues);
 * - plain objects (replacements, inserted documents, values of update keys):
 *   sealSearchable() casts each searchable value once, encrypts it and sets
 *   its index beside it, dropping any index value the application passed;
 * - update keys: search-updates.js.
 *
 * Invariants: an index value is always computed from the plaintext that is
 * encrypted in the same operation, with the path's normalisers
 * (indexInput) under the current index-key version; what would leave an
 * index out of step with its value ($pull by value or $[name] on an
 * encrypted array of scalars, a write to an index path) throws before
 * anything is sent.
 */

const { isEncrypted } = require('../../core');
const { blindIndex, blindIndexMany, blindIndexAll } = require('../../core/blind-index');
const { indexInput } = require('../../core/index-input');
const { codes, FieldCryptError } = require('../../core/errors');
const { splitPath } = require('../../paths');
const { isDocument, documentStorage, arrayStorage } = require('../compat');
const { INDEX_SUFFIX } = require('./search-paths');
const { encryptLeaf, castLeafValue, decryptLeaf, unsupportedOperator, isPlainObject } = require('./values');

// ---------------------------------------------------------------------------
// Index values

function whereOf(ctx, entry) {
  if (!ctx.index.indexPaths.has(entry.indexPath)) {
    // The plugin adds index paths when it is applied; a discriminator's own
    // schema is merged later, without them: its index would be dropped.
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `${ctx.modelName ? `${ctx.modelName}.` : ''}${entry.path} is searchable, but its index path ` +
        `${entry.indexPath} is not in the schema: declare searchable paths in the schema the plugin is applied ` +
        "to (a discriminator's own paths cannot be searchable). Nothing was sent to the database.",
      { modelName: ctx.modelName, path: entry.path },
    );
  }
  if (!ctx.collection) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `${entry.path} is searchable, but its model's collection is unknown: index values are keyed per collection`,
      { modelName: ctx.modelName, path: entry.path },
    );
  }
  return { collection: ctx.collection, path: entry.path };
}

/** The index value of one plaintext (current index-key version); null for null/undefined. */
function indexValue(ctx, entry, plain) {
  if (plain === null || plain === undefined) return null;
  return blindIndex(indexInput(plain, entry.normalize), whereOf(ctx, entry));
}

/** The index values of several plaintexts, in order (one native call); null elements stay null. */
function indexValues(ctx, entry, plains) {
  const present = plains.filter((p) => p !== null && p !== undefined);
  const values = present.length
    ? blindIndexMany(
        present.map((p) => indexInput(p, entry.normalize)),
        whereOf(ctx, entry),
      )
    : [];
  let k = 0;
  return plains.map((p) => (p === null || p === undefined ? null : values[k++]));
}

/** Every live index-key version's value of a plaintext (current first): what a condition matches with `$in`. */
function indexValuesAll(ctx, entry, plain) {
  return blindIndexAll(indexInput(plain, entry.normalize), whereOf(ctx, entry));
}

/** The plaintext of a value found on a searchable leaf: a ciphertext (copied or kept) is decrypted. */
function plainOf(ctx, leaf, value, raw) {
  if (value === null || value === undefined) return value;
  if (isEncrypted(value)) return decryptLeaf(ctx, leaf, value);
  return raw ? castLeafValue(ctx, leaf, value) : value;
}

function leafNameOf(entry) {
  const parts = splitPath(entry.path);
  return parts[parts.length - 1];
}

// ---------------------------------------------------------------------------
// Live documents

/**
 * Before a live document is encrypted: the index of every searchable value
 * that is new or modified is set through the (sub)document that holds it,
 * so that Mongoose writes it with the value (a `$unset` when the value is
 * gone). Unmodified values keep the index stored with them (documents are
 * read without it: stripIndexValues).
 */
function indexLive(ctx, doc) {
  if (ctx.index.search.size === 0) return;
  for (const entry of ctx.index.search.values()) {
    const leaf = ctx.index.leaves.get(entry.path);
    const parts = splitPath(entry.path);
    const name = parts[parts.length - 1];
    forEachLiveParent(doc, parts, doc, '', '', (owner, relative, storage, concrete) => {
      const concreteLeaf = concrete ? `${concrete}.${name}` : name;
      // (An index value the application changed itself is computed again too.)
      if (!doc.isNew && !doc.isModified(concreteLeaf) && !doc.isModified(`${concreteLeaf}${INDEX_SUFFIX}`)) return;
      const siblingPath = relative ? `${relative}.${name}${INDEX_SUFFIX}` : `${name}${INDEX_SUFFIX}`;
      const value = storage[name];
      let next;
      if (value === null || value === undefined) {
        next = undefined;
      } else if (entry.kind === 'array') {
        const elements = Array.isArray(value) ? [...arrayStorage(value)] : [value];
        next = indexValues(
          ctx,
          entry,
          elements.map((v) => plainOf(ctx, leaf, v, false)),
        );
      } else {
        next = indexValue(ctx, entry, plainOf(ctx, leaf, value, false));
      }
      const sibling = `${name}${INDEX_SUFFIX}`;
      if (next === undefined && (doc.isNew || owner.isNew)) {
        // Nothing stored yet: only an index the application put there goes.
        if (storage[sibling] !== undefined) owner.set(siblingPath, undefined);
        return;
      }
      // The stored index may differ from what the document shows (it is read without it): always written.
      owner.set(siblingPath, next);
      if (next === undefined) owner.markModified(siblingPath);
    });
  }
}

/**
 * Calls `fn(owner, relative, storage, concrete)` for every object that holds
 * the leaf at `parts` in a live document: `owner` is the (sub)document it
 * belongs to, `relative` its path from the owner, `storage` the object
 * itself, `concrete` its path from the top-level document.
 */
function forEachLiveParent(node, parts, owner, relative, concrete, fn, i = 0) {
  if (node === null || typeof node !== 'object') return;
  if (isDocument(node) && node !== owner) {
    owner = node;
    relative = '';
  }
  const storage = documentStorage(node);
  if (Array.isArray(storage)) {
    const raw = arrayStorage(storage);
    for (let k = 0; k < raw.length; k++) {
      const at = `${concrete}.${k}`;
      forEachLiveParent(raw[k], parts, owner, relative ? `${relative}.${k}` : '', at, fn, i);
    }
    return;
  }
  if (i === parts.length - 1) {
    fn(owner, relative, storage, concrete);
    return;
  }
  const part = parts[i];
  const next = storage instanceof Map ? undefined : storage[part];
  forEachLiveParent(
    next,
    parts,
    owner,
    relative ? `${relative}.${part}` : part,
    concrete ? `${concrete}.${part}` : part,
    fn,
    i + 1,
  );
}

/**
 * A value assigned to a searchable leaf while the plugin writes the document
 * (by a pre('save') hook registered after the plugin's, see
 * schema-types.js sealDuringWrite): its index is set beside it, through the
 * (sub)document `scope` that holds it, at `relativePath` + the suffix. An
 * element of a searchable array cannot be indexed on its own: refused.
 */
function indexLateValue(ctx, leaf, scope, relativePath, plain) {
  if (leaf.search.kind === 'array') {
    throw unsupportedOperator(
      ctx,
      'save',
      leaf.path,
      'an element of a searchable encrypted array was assigned after the plugin indexed the document ' +
        "(a pre('save') hook registered after the plugin); register that hook before applying the plugin",
    );
  }
  scope.set(`${relativePath}${INDEX_SUFFIX}`, indexValue(ctx, leaf.search, plain));
}

/** After a write: the document holds no index values, as when it is read. */
function forgetIndexValues(index, doc) {
  if (!index || index.search.size === 0) return;
  for (const entry of index.search.values()) {
    const parts = splitPath(entry.path);
    const sibling = `${parts[parts.length - 1]}${INDEX_SUFFIX}`;
    forEachLiveParent(doc, parts, doc, '', '', (owner, relative, storage) => {
      if (Object.hasOwn(storage, sibling)) delete storage[sibling];
    });
  }
}

// ---------------------------------------------------------------------------
// Plain objects

/**
 * Encrypts, in place, every searchable leaf below `base` ('' or a container
 * path) in a plain value, and sets its index beside it; index values the
 * application put there are dropped. `raw`: values are the application's
 * (cast once here). The other leaves are left to encryptPlain/encryptBelow.
 */
function sealSearchable(ctx, plain, base, raw) {
  if (ctx.index.search.size === 0 || plain === null || typeof plain !== 'object') return plain;
  const prefix = base ? `${base}.` : '';
  for (const entry of ctx.index.search.values()) {
    if (prefix && !entry.path.startsWith(prefix)) continue;
    const parts = splitPath(entry.path.slice(prefix.length));
    forEachPlainParent(plain, parts, 0, (parent) => sealInParent(ctx, entry, parent, parts[parts.length - 1], raw));
  }
  return plain;
}

/** Encrypts `parent[name]` of a searchable leaf and sets `parent[name_bidx]` (or removes it). */
function sealInParent(ctx, entry, parent, name, raw) {
  const leaf = ctx.index.leaves.get(entry.path);
  const sibling = `${name}${INDEX_SUFFIX}`;
  delete parent[sibling];
  const value = parent[name];
  if (value === null || value === undefined) return;
  if (entry.kind === 'array') {
    const list = Array.isArray(value) ? value : [value];
    const plains = list.map((v) => plainOf(ctx, leaf, v, raw));
    const stored = plains.map((p) => encryptLeaf(ctx, leaf, p, false));
    parent[name] = Array.isArray(value) ? stored : stored[0];
    parent[sibling] = indexValues(ctx, entry, plains);
    return;
  }
  const plainValue = plainOf(ctx, leaf, value, raw);
  parent[name] = encryptLeaf(ctx, leaf, plainValue, false);
  const index = indexValue(ctx, entry, plainValue);
  if (index !== null) parent[sibling] = index;
}

function forEachPlainParent(node, parts, i, fn) {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const el of node) forEachPlainParent(el, parts, i, fn);
    return;
  }
  if (!isPlainObject(node)) return;
  if (i === parts.length - 1) {
    fn(node);
    return;
  }
  forEachPlainParent(node[parts[i]], parts, i + 1, fn);
}

module.exports = {
  indexValue,
  indexValues,
  indexValuesAll,
  plainOf,
  leafNameOf,
  indexLive,
  indexLateValue,
  forgetIndexValues,
  sealSearchable,
  sealInParent,
};
