'use strict';

/**
 * Mongoose helpers for schemas that opt in path by path:
 *
 *   IdentificationSchema.pre('save', encryptFieldIfModified('idNumber'));
 *   IdentificationSchema.methods.getDecryptedIdNumber = createDecryptMethod('idNumber');
 *   schema.virtual('idNumberPlain').get(createDecryptedGetter('idNumber'));
 *
 * They work on Mongoose 9 (pre hooks get the save options, no `next`) and
 * Mongoose 8 (pre hooks get `next`); compat.js handles the difference.
 * Invariants: the hook is idempotent (Mongoose runs subdocument save hooks
 * on every parent save, modified or not); a non-string value on the path is
 * refused, never stored in clear; the decrypting readers read the stored
 * value past the path's getters (so a decrypting getter cannot recurse).
 */

const { decrypt, isEncrypted } = require('../core');
const { encodeValue } = require('../core/codec');
const { codes, FieldCryptError, describeType } = require('../core/errors');
const { named, mongooseHook, storedGetOptions } = require('./compat');

function checkPath(path, helper) {
  if (typeof path !== 'string' || path === '') {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `${helper}() expects a schema path such as 'idNumber', got ${describeType(path)}`,
    );
  }
}

/**
 * The path `path` names in `doc`'s schema: itself, or the path it is an
 * alias of (Mongoose's `alias` option; a subdocument's own schema for a
 * subdocument). Under its own name an alias is never `isModified`, and
 * `get` reads it through the real path's getters even with `getters: false`,
 * so without this the save hook would skip it and store the value in clear.
 */
function realPath(doc, path) {
  const aliases = doc != null && doc.schema != null ? doc.schema.aliases : undefined;
  if (aliases != null && Object.hasOwn(aliases, path) && typeof aliases[path] === 'string') return aliases[path];
  return path;
}

/** The stored value at `path`, read with `options` (storedGetOptions(path)). */
function rawValue(doc, path, options) {
  if (doc && typeof doc.get === 'function') return doc.get(path, null, options);
  let value = doc;
  for (const key of path.split('.')) {
    if (value === null || value === undefined) return undefined;
    value = value[key];
  }
  return value;
}

/**
 * A pre('save') hook that encrypts `path` when it is modified, non-empty and
 * not already encrypted.
 */
function encryptFieldIfModified(path) {
  checkPath(path, 'encryptFieldIfModified');
  const options = storedGetOptions(path);
  function encryptPath(doc) {
    const real = realPath(doc, path);
    if (!doc.isModified(real)) return;
    const value = rawValue(doc, real, real === path ? options : storedGetOptions(real));
    if (value === null || value === undefined || value === '' || isEncrypted(value)) return;
    if (typeof value !== 'string') {
      // Fail closed: never store a non-string value in clear on an encrypted path.
      throw new FieldCryptError(
        codes.UNSUPPORTED_TYPE,
        `encryptFieldIfModified('${path}') encrypts String paths; the value is ${describeType(value)}. ` +
          'Declare the path as String.',
      );
    }
    // The same encrypt-one-value path as the fieldEncryption plugin (strings
    // are stored in the foundation's text format).
    doc.set(real, encodeValue(value));
  }
  return mongooseHook(`encryptFieldIfModified(${path})`, (doc) => encryptPath(doc));
}

function decryptField(path, helper) {
  checkPath(path, helper);
  const options = storedGetOptions(path);
  return named(`${helper}(${path})`, function () {
    const real = realPath(this, path);
    const value = rawValue(this, real, real === path ? options : storedGetOptions(real));
    if (value === null || value === undefined || value === '') return value;
    return decrypt(value);
  });
}

/**
 * A document method returning the plaintext of `path`; null, undefined or ''
 * when the path is empty.
 */
function createDecryptMethod(path) {
  return decryptField(path, 'createDecryptMethod');
}

/** The same, for use as a virtual getter: schema.virtual('x').get(createDecryptedGetter('path')). */
function createDecryptedGetter(path) {
  return decryptField(path, 'createDecryptedGetter');
}

module.exports = { encryptFieldIfModified, createDecryptMethod, createDecryptedGetter };
