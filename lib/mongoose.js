'use strict';

/**
 * Mongoose helpers for schemas that opt in path by path:
 *
 *   IdentificationSchema.pre('save', encryptFieldIfModified('idNumber'));
 *   IdentificationSchema.methods.getDecryptedIdNumber = createDecryptMethod('idNumber');
 *   schema.virtual('idNumberPlain').get(createDecryptedGetter('idNumber'));
 *
 * They work on Mongoose 9 (pre hooks get the save options, no `next`) and
 * Mongoose 8 (pre hooks get `next`). The hook is idempotent: Mongoose runs
 * subdocument save hooks on every parent save, modified or not.
 */

const { decrypt, isEncrypted } = require('./core');
const { encodeValue } = require('./core/codec');
const { codes, FieldCryptError, describeType } = require('./core/errors');

function checkPath(path, helper) {
  if (typeof path !== 'string' || path === '') {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `${helper}() expects a schema path such as 'idNumber', got ${describeType(path)}`);
  }
}

/**
 * Document#get options for the stored value, without getters (so a decrypting
 * getter on the same path cannot recurse). For a path without a dot,
 * `noDottedPath` (Mongoose 8 and 9) reads it from the document directly
 * instead of walking it as a dotted path: the same value (checked on both
 * majors for schema paths, aliases, nested objects, arrays and missing paths)
 * in 28-29 ns instead of 140-148. A `createDecryptMethod` call on a hydrated
 * document went from 368-400 ns to 227-233 (three alternating runs), and to
 * 248-258 with the alias lookup (realPath) added since.
 */
const RAW_DOTTED = Object.freeze({ getters: false });
const RAW_TOP_LEVEL = Object.freeze({ getters: false, noDottedPath: true });

function rawOptions(path) {
  return path.includes('.') ? RAW_DOTTED : RAW_TOP_LEVEL;
}

/**
 * The path `path` names in `doc`'s schema: itself, or the path it is an
 * alias of (Mongoose's `alias` option; a subdocument's own schema for a
 * subdocument). Under its own name an alias is never `isModified`, and
 * `get` reads it through the real path's getters even with `getters: false`,
 * so the save hook skipped it and the value was stored in clear.
 */
function realPath(doc, path) {
  const aliases = doc != null && doc.schema != null ? doc.schema.aliases : undefined;
  if (aliases != null && Object.hasOwn(aliases, path) && typeof aliases[path] === 'string') return aliases[path];
  return path;
}

/** The stored value at `path`, read with `options` (rawOptions(path)). */
function rawValue(doc, path, options) {
  if (doc && typeof doc.get === 'function') return doc.get(path, null, options);
  let value = doc;
  for (const key of path.split('.')) {
    if (value === null || value === undefined) return undefined;
    value = value[key];
  }
  return value;
}

function named(name, fn) {
  return Object.defineProperty(fn, 'name', { value: name });
}

/**
 * A Mongoose hook running `work(context, args)` on both majors: Mongoose 8
 * (kareem 2) passes `next` first when the function declares a parameter and
 * calls it when a returned promise settles; Mongoose 9 (kareem 3) passes only
 * the hook's arguments and awaits a returned promise. The returned function
 * declares one parameter so Mongoose 8 passes its arguments at all.
 */
function mongooseHook(name, work) {
  return named(name, function (first, ...rest) {
    if (typeof first === 'function') {
      // Mongoose 8: `first` is next; kareem calls it when this promise settles.
      return new Promise((resolve) => resolve(work(this, rest)));
    }
    return work(this, [first, ...rest]);
  });
}

/**
 * A pre('save') hook that encrypts `path` when it is modified, non-empty and
 * not already encrypted.
 */
function encryptFieldIfModified(path) {
  checkPath(path, 'encryptFieldIfModified');
  const options = rawOptions(path);
  function encryptPath(doc) {
    const real = realPath(doc, path);
    if (!doc.isModified(real)) return;
    const value = rawValue(doc, real, real === path ? options : rawOptions(real));
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
  const options = rawOptions(path);
  return named(`${helper}(${path})`, function () {
    const real = realPath(this, path);
    const value = rawValue(this, real, real === path ? options : rawOptions(real));
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

module.exports = { encryptFieldIfModified, createDecryptMethod, createDecryptedGetter, mongooseHook, named };
