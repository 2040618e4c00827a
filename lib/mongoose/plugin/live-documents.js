'use strict';

/**
 * Writes of live documents (save, create, insertMany, bulkSave): before the
 * write each plaintext on an encrypted path is replaced by its ciphertext in
 * the document's own storage (no setter, no change tracking), so whatever
 * Mongoose then sends (the whole document or its delta) is ciphertext; after
 * the write the plaintext is put back (encryptLive, settleLive).
 *
 * Invariants: nothing Mongoose sends for the document holds a plaintext of
 * an encrypted path (array change operators carrying copies become a `$set`
 * of the whole array; `$inc` on an encrypted path is refused); a value
 * unchanged since it was decrypted keeps its stored ciphertext; after the
 * write, successful or not, the document is as the application left it;
 * values of bound paths are bound to the document's collection (and `_id`).
 */

const { isEncrypted } = require('../../core');
const { fingerprint, sameFingerprint, encryptFingerprint } = require('../../core/codec');
const { splitPath } = require('../../paths');
const {
  documentStorage,
  isTrackedArray,
  arrayStorage,
  arrayOperators,
  markArrayReplaced,
  pendingIncrements,
} = require('../compat');
const { normalizeKey } = require('./path-index');
const { audit, unsupportedOperator } = require('./values');
const { writeOptions } = require('./binding');
const { indexLive, forgetIndexValues } = require('./search-writes');
const { PRINTS, PENDING, WRITING } = require('./state');

/**
 * Like paths.forEachAtPath, over a live Mongoose document. forEachAtPath
 * reads and writes through property accessors, which on a document are
 * Mongoose's getters and setters: they cast, run user setters and mark
 * paths modified. Here values are read and written in the document's own
 * storage (see compat.js: documentStorage, arrayStorage; a Map's entries),
 * so changing a plaintext into its ciphertext changes neither what Mongoose
 * thinks was modified nor how it builds the write.
 * `onArray(array, concretePath, isLeaf)` sees every MongooseArray passed.
 */
function forEachStored(doc, path, visit, onArray) {
  walkStored(doc, splitPath(path), 0, '', visit, onArray);
}

function walkStored(node, parts, i, at, visit, onArray) {
  if (node === null || typeof node !== 'object') return;
  node = documentStorage(node);
  if (Array.isArray(node)) {
    const raw = arrayStorage(node);
    if (onArray && isTrackedArray(node)) onArray(node, at, i === parts.length);
    for (let k = 0; k < raw.length; k++) {
      const concrete = `${at}.${k}`;
      if (i === parts.length) {
        if (raw[k] !== null && raw[k] !== undefined)
          visit(
            raw[k],
            (v) => {
              raw[k] = v;
            },
            concrete,
          );
      } else {
        walkStored(raw[k], parts, i, concrete, visit, onArray);
      }
    }
    return;
  }
  if (i === parts.length) return;
  const isMap = node instanceof Map;
  const part = parts[i];
  const keys = part === '$*' ? (isMap ? [...Map.prototype.keys.call(node)] : Object.keys(node)) : [part];
  for (const key of keys) {
    const value = isMap ? Map.prototype.get.call(node, key) : node[key];
    if (value === null || value === undefined) continue;
    const concrete = at ? `${at}.${key}` : key;
    if (i + 1 === parts.length && !Array.isArray(value)) {
      visit(
        value,
        isMap
          ? (v) => Map.prototype.set.call(node, key, v)
          : (v) => {
              node[key] = v;
            },
        concrete,
      );
    } else {
      walkStored(value, parts, i + 1, concrete, visit, onArray);
    }
  }
}

/**
 * The change operators a MongooseArray may record that carry no copy of a
 * plaintext: for an encrypted array ($push/$addToSet/$pull… hold copies of
 * the values), only $set (the array itself) and $pop; for an array of
 * subdocuments, also $push and $addToSet (they hold the subdocuments, whose
 * storage is encrypted); $pull and $pullAll of subdocuments hold copies.
 */
const SAFE_ATOMICS_OF_ENCRYPTED_ARRAYS = new Set(['$set', '$pop']);
const SAFE_ATOMICS_OF_SUBDOCUMENT_ARRAYS = new Set(['$set', '$pop', '$push', '$addToSet']);

/**
 * Replaces every plaintext on an encrypted path of a live document with its
 * ciphertext, in the document's own storage. A value unchanged since it was
 * decrypted keeps its stored ciphertext (so it is byte-identical when written
 * again). Returns nothing; PENDING remembers what to put back.
 */
function encryptLive(ctx, doc) {
  // Blind indexes first: they are computed from the plaintexts (search-writes.js).
  indexLive(ctx, doc);
  const prints = PRINTS.get(doc);
  const pending = PENDING.get(doc) || [];
  for (const leaf of ctx.index.leafList) {
    forEachStored(
      doc,
      leaf.path,
      (value, set, concretePath) => {
        if (isEncrypted(value)) return;
        const print = fingerprint(value, ctx.bson);
        const known = prints && prints.get(concretePath);
        let stored;
        if (known && sameFingerprint(known.print, print)) {
          stored = known.stored;
        } else {
          stored = leaf.bind ? encryptFingerprint(print, writeOptions(ctx, leaf)) : encryptFingerprint(print);
          audit(ctx, 'onEncrypt', leaf.path, stored);
        }
        set(stored);
        pending.push({ set, value, concretePath, stored, print });
      },
      (array, concretePath, isLeafArray) => {
        // Change operators that would carry a copy of a plaintext become a
        // $set of the whole (encrypted) array.
        const safe = isLeafArray ? SAFE_ATOMICS_OF_ENCRYPTED_ARRAYS : SAFE_ATOMICS_OF_SUBDOCUMENT_ARRAYS;
        if (arrayOperators(array).some((op) => !safe.has(op))) markArrayReplaced(array);
      },
    );
  }
  refuseIncrements(ctx, doc);
  PENDING.set(doc, pending);
  if (!WRITING.has(doc)) WRITING.set(doc, { ctx, late: new Map() });
}

/** `doc.$inc()` on an encrypted path would send an increment for a ciphertext. */
function refuseIncrements(ctx, doc) {
  for (const { path, operator } of pendingIncrements(doc)) {
    const normalized = normalizeKey(ctx.index, path).path;
    if (ctx.index.leaves.has(normalized)) {
      throw unsupportedOperator(
        ctx,
        operator || '$inc',
        normalized,
        'an encrypted value cannot be incremented on the server',
      );
    }
  }
}

/**
 * After a write: puts the plaintexts back (`restore`), or keeps the
 * ciphertexts (explicit mode after a successful write), and remembers the
 * stored ciphertext of each plaintext for the next write.
 */
function settleLive(doc, restore) {
  const pending = PENDING.get(doc);
  const writing = WRITING.get(doc);
  PENDING.delete(doc);
  WRITING.delete(doc);
  if (writing) forgetIndexValues(writing.ctx.index, doc);
  if (!restore) return;
  let prints = PRINTS.get(doc);
  if (!prints) PRINTS.set(doc, (prints = new Map()));
  for (const entry of pending || []) {
    entry.set(entry.value);
    prints.set(entry.concretePath, { stored: entry.stored, print: entry.print });
  }
  // Values encrypted as they were assigned during the write (sealDuringWrite).
  if (writing && writing.late.size) {
    for (const leaf of writing.ctx.index.leafList) {
      forEachStored(doc, leaf.path, (value, set) => {
        if (typeof value === 'string' && writing.late.has(value)) set(writing.late.get(value));
      });
    }
  }
}

module.exports = { encryptLive, settleLive };
