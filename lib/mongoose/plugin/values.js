'use strict';

/**
 * Encrypting and decrypting one value of an encrypted leaf, and every leaf of
 * a plain document (raw driver documents, lean results, toObject() output);
 * the audit callbacks and the errors the plugin throws.
 *
 * Invariants: null and undefined are never encrypted; a value already in the
 * stored format is never encrypted twice; plaintext found on an encrypted
 * path is an error unless `allowUnencrypted`; every encryption and
 * decryption of a leaf is reported to onEncrypt/onDecrypt. Values are encoded
 * by lib/core/codec.js: strings exactly as the foundation's encrypt(), other
 * types as BSON inside the same envelope.
 *
 * `ctx` (context.js): { options, modelName, collection, bson, documentId,
 * index, scope?, target? }. Values of bound leaves are encrypted and
 * decrypted with their context (binding.js); other leaves exactly as before.
 */

const { isEncrypted, decrypt } = require('../../core');
const { encodeValue, decodeValue } = require('../../core/codec');
const { codes, FieldCryptError, describeType } = require('../../core/errors');
const { forEachAtPath } = require('../../paths');
const { writeOptions, decodeBound, leafContext } = require('./binding');

function audit(ctx, hook, path, stored) {
  const fn = ctx.options[hook];
  if (fn) fn({ modelName: ctx.modelName, path, documentId: ctx.documentId, keyVersion: stored.slice(0, 2) });
}

function where(ctx, path) {
  return ctx.modelName ? `${ctx.modelName}.${path}` : path;
}

function unsupportedOperator(ctx, operator, path, why) {
  return new FieldCryptError(
    codes.UNSUPPORTED_OPERATOR,
    `${operator} on ${where(ctx, path)}: ${why}. Nothing was sent to the database.`,
    { modelName: ctx.modelName, path, operator },
  );
}

function unsupportedQuery(ctx, path) {
  return new FieldCryptError(
    codes.UNSUPPORTED_QUERY,
    `The filter compares ${where(ctx, path)}, an encrypted path, with a value other than null or a stored ciphertext: ` +
      'encryption is randomized, so it could never match, and the value would be sent in clear. ' +
      'To find documents by this value, declare the path searchable (`searchable: true`): equality filters on it ' +
      'are then rewritten to its blind index. Nothing was sent to the database.',
    { modelName: ctx.modelName, path },
  );
}

function unsupportedDistinct(ctx, path) {
  return new FieldCryptError(
    codes.UNSUPPORTED_QUERY,
    `distinct() of ${where(ctx, path)}, an encrypted path, would return one ciphertext per document ` +
      '(encryption is randomized). Read the documents and decrypt them instead. Nothing was sent to the database.',
    { modelName: ctx.modelName, path, operator: 'distinct' },
  );
}

/** What a blind index can answer, for messages. */
const SEARCH_SUPPORTED =
  'a value, $eq, $ne, $in, $nin, $not of these, $all and $elemMatch on arrays, and null, $exists, $type, $size';

/**
 * A condition on a searchable path that its blind index cannot answer (a
 * keyed hash answers equality only): `what` names the operator or shape.
 */
function unsupportedSearch(ctx, path, what, why = 'its blind index answers equality only') {
  return new FieldCryptError(
    codes.UNSUPPORTED_QUERY,
    `The filter uses ${what} on ${where(ctx, path)}, a searchable encrypted path: ${why}. ` +
      `Supported: ${SEARCH_SUPPORTED}; ranges, patterns and expressions cannot be answered without the plaintext. ` +
      'Nothing was sent to the database.',
    { modelName: ctx.modelName, path, operator: what.startsWith('$') ? what.split(' ')[0] : undefined },
  );
}

/**
 * Encrypts one plaintext value of `leaf`. null/undefined stay as they are;
 * a value already in the stored format is kept (ciphertext copied from
 * elsewhere, or encrypted earlier in the same operation).
 *
 * `raw: true` says the value comes straight from the application (an update
 * or a replacement Mongoose has not cast yet): it goes through the path's
 * setters and cast first, as Mongoose would do while casting, so `'42'` on a
 * Number path is stored, and comes back, as the number 42, and `lowercase`
 * applies to the plaintext. Values Mongoose already cast (documents,
 * subdocuments it built) are not cast again, so setters run once.
 */
function encryptLeaf(ctx, leaf, value, raw) {
  if (value === null || value === undefined || isEncrypted(value)) return value;
  const plain = raw ? castLeafValue(ctx, leaf, value) : value;
  if (plain === null || plain === undefined || isEncrypted(plain)) return plain;
  const stored = leaf.bind ? encodeValue(plain, ctx.bson, writeOptions(ctx, leaf)) : encodeValue(plain, ctx.bson);
  audit(ctx, 'onEncrypt', leaf.path, stored);
  return stored;
}

/** A value from the application through the leaf's setters and cast, as Mongoose would cast it (see encryptLeaf). */
function castLeafValue(ctx, leaf, value) {
  try {
    return leaf.schemaType.applySetters(value, ctx.scope === undefined ? null : ctx.scope);
  } catch {
    throw new FieldCryptError(
      codes.UNSUPPORTED_TYPE,
      `${where(ctx, leaf.path)}: the value (${describeType(value)}) cannot be cast to ${leaf.schemaType.instance}. Nothing was sent to the database.`,
      { modelName: ctx.modelName, path: leaf.path },
    );
  }
}

/**
 * Decrypts one stored value of `leaf`. null, undefined and '' are returned
 * as they are ('' is what the foundation's helpers left for empty values).
 * Anything else that is not a ciphertext is plaintext stored before the
 * path was encrypted: an error in strict mode, returned as it is with
 * `allowUnencrypted`. With `prints`, records the value's fingerprint (not
 * for an unbound value of a bound leaf read with `allowUnbound`, so that the
 * next save of its path writes it bound).
 */
function decryptLeaf(ctx, leaf, stored, concretePath, prints) {
  if (stored === null || stored === undefined || stored === '') return stored;
  if (leaf.text) {
    const text = decryptText(ctx, leaf, stored);
    if (text !== undefined) return decryptedText(ctx, leaf, stored, text, concretePath, prints);
  }
  const schemaPath = leaf.schemaPath || leaf.path;
  if (!isEncrypted(stored)) {
    if (ctx.options.allowUnencrypted) return stored;
    throw new FieldCryptError(
      codes.UNENCRYPTED_VALUE,
      `${where(ctx, schemaPath)} holds ${describeType(stored)} that is not encrypted. ` +
        'Encrypt existing data first, or set allowUnencrypted: true for a migration window.',
      { modelName: ctx.modelName, path: schemaPath },
    );
  }
  let value;
  if (leaf.bind) {
    const withFingerprint = Boolean(prints);
    const { decoded, unbound } = decodeBound(ctx, leaf, stored, { buffer: leaf.buffer, withFingerprint });
    value = withFingerprint ? decoded.value : decoded;
    if (withFingerprint && !unbound) prints.set(concretePath, { stored, print: decoded.fingerprint });
  } else if (prints) {
    const decoded = decodeValue(stored, ctx.bson, { buffer: leaf.buffer, withFingerprint: true });
    value = decoded.value;
    prints.set(concretePath, { stored, print: decoded.fingerprint });
  } else {
    value = decodeValue(stored, ctx.bson, { buffer: leaf.buffer });
  }
  audit(ctx, 'onDecrypt', schemaPath, stored);
  return value;
}

/**
 * The fast path of a String leaf's value: decrypt() straight to text, bound
 * to the leaf's context when it is bound. Returns undefined when that does
 * not give the value (not a ciphertext, a typed value, an unbound value of a
 * bound leaf, any error): decryptLeaf's general path then decides, and
 * throws what it always threw. A value decrypt() reads is well-formed, so it
 * is one decryptLeaf's general path would decrypt to the same text.
 */
function decryptText(ctx, leaf, stored) {
  if (typeof stored !== 'string') return undefined;
  try {
    return leaf.bind ? decrypt(stored, { context: leafContext(ctx, leaf, false) }) : decrypt(stored);
  } catch {
    return undefined;
  }
}

/** What decryptLeaf does with a value decrypted to `text` (a fingerprint, the audit record). */
function decryptedText(ctx, leaf, stored, text, concretePath, prints) {
  if (prints) prints.set(concretePath, { stored, print: text });
  audit(ctx, 'onDecrypt', leaf.schemaPath || leaf.path, stored);
  return text;
}

// ---------------------------------------------------------------------------
// Plain documents

/** Whether a value goes to a ReadBatch: a String leaf's non-empty string, not bound per document. */
function batches(leaf, stored) {
  return leaf.text && leaf.bind !== 'document' && typeof stored === 'string' && stored !== '';
}

/**
 * Decrypts every encrypted path of a plain document in place. With `batch`
 * (read-batch.js), the values of String leaves are handed to it instead, to
 * be decrypted together with the rest of a result set.
 */
function decryptPlain(ctx, index, doc, prints, batch) {
  const leaves = index.leafList;
  for (let i = 0; i < leaves.length; i++) {
    const leaf = leaves[i];
    const path = leaf.path;
    // A top-level path holding one value (the common case): no walk, no closure.
    if (path.indexOf('.') < 0 && !(doc instanceof Map)) {
      const stored = doc[path];
      if (stored === null || stored === undefined) continue;
      if (!Array.isArray(stored)) {
        if (batch !== undefined && batches(leaf, stored)) {
          batch.add(ctx, leaf, stored, doc, path, path);
        } else {
          doc[path] = decryptLeaf(ctx, leaf, stored, path, prints);
        }
        continue;
      }
    }
    forEachAtPath(doc, path, (stored, set, concretePath) => {
      if (batch !== undefined && batches(leaf, stored)) {
        batch.add(ctx, leaf, stored, set, undefined, concretePath);
      } else {
        set(decryptLeaf(ctx, leaf, stored, concretePath, prints));
      }
    });
  }
  return doc;
}

/**
 * Encrypts every encrypted path of a plain document in place. `raw`: the
 * values are the application's, not cast by Mongoose yet (see encryptLeaf).
 * `skipSearchable`: searchable leaves were encrypted, with their index, by
 * search-writes.js already.
 */
function encryptPlain(ctx, index, doc, raw, skipSearchable = false) {
  for (const leaf of index.leafList) {
    if (skipSearchable && leaf.search) continue;
    forEachAtPath(doc, leaf.path, (value, set) => set(encryptLeaf(ctx, leaf, value, raw)));
  }
  return doc;
}

/** A deep copy of plain objects, arrays and Maps; every other value is shared. */
function clonePlain(value) {
  if (Array.isArray(value)) return value.map(clonePlain);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, clonePlain(v)]));
  if (value !== null && typeof value === 'object' && isPlainObject(value)) {
    const out = {};
    for (const key of Object.keys(value)) out[key] = clonePlain(value[key]);
    return out;
  }
  return value;
}

function isPlainObject(value) {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * toObject() options for a copy of exactly what Mongoose would store: no
 * transforms (so no output filtering), getters or virtuals.
 */
const STORED_OBJECT = Object.freeze({
  transform: false,
  virtuals: false,
  getters: false,
  depopulate: true,
  flattenMaps: false,
  flattenObjectIds: false,
  versionKey: true,
  useProjection: false,
});

module.exports = {
  audit,
  unsupportedOperator,
  unsupportedQuery,
  unsupportedSearch,
  unsupportedDistinct,
  encryptLeaf,
  castLeafValue,
  decryptLeaf,
  decryptedText,
  decryptPlain,
  encryptPlain,
  clonePlain,
  isPlainObject,
  STORED_OBJECT,
};
