'use strict';

/**
 * Query updates (`updateOne`, `updateMany`, `findOneAndUpdate`,
 * `findByIdAndUpdate`, `doc.updateOne()`, upserts, bulkWrite update ops) and
 * whole replacement or inserted documents (`replaceOne`,
 * `findOneAndReplace`, bulkWrite `insertOne`/`replaceOne`): the update is
 * rewritten key by key before Mongoose casts it; operators that cannot work
 * on ciphertext throw before anything is sent (update-checks.js).
 *
 * Invariants: every value written to an encrypted path is ciphertext,
 * including defaults an upsert inserts and defaults inside subdocuments; the
 * caller's update objects are not changed (a new update is returned);
 * setters run once on each plaintext.
 */

const { forEachAtPath } = require('../../paths');
const { isDocument, hasCastError, subdocConstructorOf, defaultOf } = require('../compat');
const { normalizeKey, relate } = require('./path-index');
const {
  encryptLeaf,
  encryptPlain,
  clonePlain,
  isPlainObject,
  unsupportedOperator,
  STORED_OBJECT,
} = require('./values');
const { checkOtherOperator, checkPull, refusePipeline, checkArrayFilters } = require('./update-checks');
const { bindReplacementId } = require('./binding');
const search = { ...require('./search-writes'), ...require('./search-updates') };

/**
 * Encrypts a value the application assigns to a leaf: one value, or an
 * array element by element (one level, as lib/paths.js visits stored
 * values). `element`: the value is one element of the leaf's array.
 */
function encryptLeafValue(ctx, leaf, value, element) {
  if (!element && Array.isArray(value)) return value.map((v) => encryptLeaf(ctx, leaf, v, true));
  return encryptLeaf(ctx, leaf, value, true);
}

/**
 * Encrypts a value the application assigns to a container (a nested
 * object, a subdocument, a document array or one of its elements, a Map),
 * returning a new plain value. Subdocuments are built the way Mongoose
 * builds them while casting the update, so that defaults inside them are
 * there now (Mongoose would add them in clear) and setters run once; their
 * stored form is then encrypted. A value that does not build is copied and
 * its leaves encrypted as given: Mongoose reports the cast error itself.
 */
function encryptContainerValue(ctx, container, value, element) {
  if (value === null || value === undefined || typeof value !== 'object') return value;
  const { kind, schemaType } = container;
  if (kind === 'docarray' && !element) {
    return Array.isArray(value)
      ? value.map((el) => encryptContainerValue(ctx, container, el, true))
      : encryptUnbuilt(ctx, container, value);
  }
  if (kind === 'docarray' || kind === 'single') {
    let doc = isDocument(value) ? value : null;
    if (!doc && isPlainObject(value)) {
      try {
        doc = kind === 'single' ? schemaType.cast(value) : new (subdocConstructorOf(schemaType))(value);
      } catch {
        doc = null;
      }
    }
    // A cast error inside a subdocument is recorded on it, not thrown.
    if (!isDocument(doc) || hasCastError(doc)) return encryptUnbuilt(ctx, container, value);
    return encryptBelow(ctx, container, doc.toObject(STORED_OBJECT), false);
  }
  // A nested object or a Map: each entry is a leaf, a container, or unrelated.
  const isMap = value instanceof Map;
  const copy = isMap ? new Map() : {};
  for (const [key, v] of isMap ? value : Object.entries(value)) {
    const childPath = kind === 'map' ? `${container.path}.$*` : `${container.path}.${key}`;
    // Index values are the plugin's to write (search-writes.js), beside their leaf.
    if (ctx.index.indexPaths.has(childPath)) continue;
    const leaf = ctx.index.leaves.get(childPath);
    if (leaf && leaf.search && !isMap) {
      copy[key] = v;
      search.sealInParent(ctx, leaf.search, copy, key, true);
      continue;
    }
    const child = ctx.index.containers.get(childPath);
    const encrypted = leaf
      ? encryptLeafValue(ctx, leaf, v, false)
      : child
        ? encryptContainerValue(ctx, child, v, false)
        : clonePlain(v);
    if (isMap) copy.set(key, encrypted);
    else copy[key] = encrypted;
  }
  return copy;
}

function encryptUnbuilt(ctx, container, value) {
  return encryptBelow(ctx, container, clonePlain(value), true);
}

/** Encrypts, in place, every leaf below `container` in a plain value of it (searchable ones with their index). */
function encryptBelow(ctx, container, plain, raw) {
  search.sealSearchable(ctx, plain, container.path, raw);
  for (const leaf of ctx.index.under.get(container.path)) {
    if (leaf.search) continue;
    forEachAtPath(plain, leaf.path.slice(container.path.length + 1), (v, set) => set(encryptLeaf(ctx, leaf, v, raw)));
  }
  return plain;
}

/** `$set`, `$setOnInsert` and top-level keys: `key` is assigned `value` (`extras`: index keys to add). */
function encryptAssignment(ctx, operator, key, value, ids, extras) {
  search.refuseIndexPathWrite(ctx, operator, key, extras);
  const { path, element } = normalizeKey(ctx.index, key, ids);
  const relation = relate(ctx.index, path);
  if (!relation) return value;
  if (relation.kind === 'inside') {
    throw unsupportedOperator(
      ctx,
      operator,
      relation.leaf.path,
      `'${key}' is inside an encrypted value, which can only be replaced as a whole`,
    );
  }
  if (relation.kind === 'leaf') {
    if (relation.leaf.search) {
      return search.assignSearchable(ctx, operator, key, relation.leaf, value, element, extras);
    }
    return encryptLeafValue(ctx, relation.leaf, value, element);
  }
  return encryptContainerValue(ctx, relation.container, value, element);
}

/** `$push` and `$addToSet` (with or without `$each`): the new elements are encrypted. */
function encryptAppend(ctx, operator, key, value, ids, extras) {
  search.refuseIndexPathWrite(ctx, operator, key, extras);
  const { path } = normalizeKey(ctx.index, key, ids);
  const relation = relate(ctx.index, path);
  if (!relation) return value;
  if (relation.kind === 'inside') {
    throw unsupportedOperator(ctx, operator, relation.leaf.path, `'${key}' is inside an encrypted value`);
  }
  const one = (el) =>
    relation.kind === 'leaf'
      ? encryptLeafValue(ctx, relation.leaf, el, true)
      : encryptContainerValue(ctx, relation.container, el, true);
  if (
    value !== null &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    isPlainObject(value) &&
    Object.hasOwn(value, '$each')
  ) {
    if (value.$sort !== undefined && sortTouchesEncrypted(ctx, relation, value.$sort)) {
      throw unsupportedOperator(
        ctx,
        `${operator} with $sort`,
        relation.kind === 'leaf' ? relation.leaf.path : path,
        'ciphertexts cannot be sorted by their plaintext',
      );
    }
    if (relation.kind === 'leaf' && relation.leaf.search) {
      return search.appendSearchable(ctx, operator, key, relation.leaf, value, extras);
    }
    return { ...value, $each: Array.isArray(value.$each) ? value.$each.map(one) : one(value.$each) };
  }
  if (relation.kind === 'leaf' && relation.leaf.search) {
    return search.appendSearchable(ctx, operator, key, relation.leaf, value, extras);
  }
  return one(value);
}

function sortTouchesEncrypted(ctx, relation, sort) {
  if (relation.kind === 'leaf') return true;
  if (sort === null || typeof sort !== 'object') return false;
  return Object.keys(sort).some((field) => relate(ctx.index, `${relation.container.path}.${field}`) !== null);
}

/**
 * Rewrites an update document so that every value written to an encrypted
 * path is ciphertext, and refuses what cannot be done on ciphertext.
 * Returns a new update; the caller's objects are not changed.
 */
function encryptUpdate(ctx, update, { filter, upsert, setDefaultsOnInsert, arrayFilters } = {}) {
  if (update === null || update === undefined || typeof update !== 'object') return update;
  if (Array.isArray(update)) {
    refusePipeline(ctx, update);
    return update;
  }
  const ids = new Map(); // $[name] -> array path
  // Index keys of searchable leaves, added at the end (search-updates.js).
  const extras = new search.SearchExtras(ctx.index.search.size ? search.writtenKeysOf(update) : undefined);
  const out = {};
  for (const [key, value] of Object.entries(update)) {
    if (key[0] !== '$') {
      out[key] = encryptAssignment(ctx, '$set', key, value, ids, extras);
      continue;
    }
    if (value === null || typeof value !== 'object') {
      out[key] = value;
      continue;
    }
    switch (key) {
      case '$set':
      case '$setOnInsert':
        out[key] = mapEntries(value, (k, v) => encryptAssignment(ctx, key, k, v, ids, extras));
        break;
      case '$push':
      case '$addToSet':
        out[key] = mapEntries(value, (k, v) => encryptAppend(ctx, key, k, v, ids, extras));
        break;
      case '$unset':
      case '$pop':
        // Remove values; nothing of a plaintext is sent. A searchable leaf's index goes with it.
        for (const [k, v] of Object.entries(value)) {
          search.refuseIndexPathWrite(ctx, key, k, extras);
          const leaf = ctx.index.leaves.get(normalizeKey(ctx.index, k, ids).path);
          if (leaf && leaf.search && key === '$unset') search.unsetSearchable(ctx, k, leaf, extras);
          else if (leaf && leaf.search && leaf.search.kind === 'array') search.popSearchable(ctx, k, leaf, v, extras);
        }
        out[key] = value;
        break;
      case '$pull':
        out[key] = mapEntries(value, (k, condition) => rewritePull(ctx, k, condition, ids));
        break;
      default:
        for (const k of Object.keys(value)) search.refuseIndexPathWrite(ctx, key, k);
        if (key === '$rename') for (const v of Object.values(value)) search.refuseIndexPathWrite(ctx, key, String(v));
        checkOtherOperator(ctx, key, value, ids);
        out[key] = value;
    }
  }
  checkArrayFilters(ctx, arrayFilters, ids);
  if (upsert && setDefaultsOnInsert !== false) addEncryptedDefaults(ctx, out, filter, extras);
  return extras.mergeInto(out);
}

/**
 * A `$pull` condition: on a document array, equalities on searchable fields
 * of the elements become equalities on their index values; then checked.
 */
function rewritePull(ctx, key, condition, ids) {
  search.refuseIndexPathWrite(ctx, '$pull', key);
  const { path } = normalizeKey(ctx.index, key, ids);
  const relation = relate(ctx.index, path);
  let out = condition;
  if (relation && relation.kind === 'leaf' && relation.leaf.search) throw search.refusePullByValue(ctx, relation.leaf);
  if (relation && relation.kind === 'container' && relation.container.kind === 'docarray') {
    out = search.rewritePullCondition(ctx, relation.container, condition);
  }
  checkPull(ctx, key, out, ids);
  return out;
}

function mapEntries(object, fn) {
  const out = {};
  for (const [k, v] of Object.entries(object)) out[k] = fn(k, v);
  return out;
}

/**
 * Mongoose's setDefaultsOnInsert adds `$setOnInsert` for schema defaults
 * after the hooks ran and after casting, in clear. For encrypted paths (and
 * containers holding them) the plugin adds them first, encrypted; Mongoose
 * then sees the path set and leaves it. Mirrors Mongoose's rules: top-level
 * schema paths not under a Map, not set by the update or by an equality in
 * the filter.
 */
function addEncryptedDefaults(ctx, update, filter, extras) {
  const touched = [];
  for (const [key, value] of Object.entries(update)) {
    if (key[0] !== '$') touched.push(key);
    else if (value && typeof value === 'object') touched.push(...Object.keys(value));
  }
  for (const [key, condition] of Object.entries(filter || {})) {
    if (key[0] === '$') continue;
    if (
      condition &&
      typeof condition === 'object' &&
      !isDocument(condition) &&
      Object.keys(condition).some((k) => k[0] === '$')
    )
      continue;
    touched.push(key);
  }
  const isTouched = (path) => touched.some((t) => t === path || t.startsWith(`${path}.`) || path.startsWith(`${t}.`));
  const schema = ctx.index.schema;
  schema.eachPath((path, schemaType) => {
    if (path.includes('$*') || !relate(ctx.index, path) || isTouched(path)) return;
    const def = defaultOf(schemaType);
    if (def === undefined) return;
    update.$setOnInsert = update.$setOnInsert || {};
    update.$setOnInsert[path] = encryptAssignment(ctx, '$setOnInsert', path, def, undefined, extras);
  });
}

/**
 * A replacement document (replaceOne, findOneAndReplace, bulkWrite
 * replaceOne) or an inserted one (bulkWrite insertOne): built as a document
 * of `model` (as Mongoose will, so defaults are there), then encrypted as a
 * plain object.
 */
function encryptWholeDocument(ctx, model, input, { skipId }) {
  if (input === null || input === undefined || typeof input !== 'object') return input;
  let doc = input;
  if (!isDocument(input)) {
    try {
      doc = new model(input, null, skipId ? { skipId: true } : undefined);
    } catch {
      doc = null;
    }
  }
  // A cast error is recorded on the document, not thrown; Mongoose reports
  // it when it builds the document again, so encrypt the input as given.
  if (!doc || hasCastError(doc)) {
    return encryptPlain(ctx, ctx.index, search.sealSearchable(ctx, clonePlain(input), '', true), true, true);
  }
  // An insert is bound to the _id of the document as built (a new one is
  // generated when the input has none, and sent with it).
  const own = skipId ? ctx : { ...ctx, documentId: doc._id, target: undefined };
  const out = encryptPlain(
    own,
    ctx.index,
    search.sealSearchable(own, doc.toObject(STORED_OBJECT), '', false),
    false,
    true,
  );
  if (skipId) bindReplacementId(ctx, out);
  return out;
}

module.exports = { encryptUpdate, encryptWholeDocument };
