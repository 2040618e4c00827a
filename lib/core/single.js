'use strict';

/**
 * Single values: encrypt, decrypt, their Buffer variants, isEncrypted,
 * reEncrypt and getKeyVersion. Each is an argument check and one native call
 * (lib/core/calls.js); the plaintext of reEncrypt never reaches JavaScript.
 */

const { types } = require('node:util');
const native = require('./native').load();
const { codes, FieldCryptError, adopt, describeType, invalidFormat } = require('./errors');
const keys = require('./keys');
const { withKeys, versionOption, contextOption, allowUnboundOption, readOptions } = require('./calls');
const { resultBytes } = require('./limits');
const { encodeContext } = require('./context');

function checkString(value, fn) {
  if (typeof value !== 'string') {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `${fn}() expects a string, got ${describeType(value)}`);
  }
}

/**
 * Encrypts UTF-8 text into `VV:IV:TAG:CT` under the current key version, or
 * `options.keyVersion`, bound to `options.context` if given.
 */
function encrypt(plaintext, options) {
  checkString(plaintext, 'encrypt');
  return withKeys(
    native.encrypt,
    plaintext,
    versionOption(options, 'encrypt'),
    options === undefined ? undefined : contextOption(options, 'encrypt'),
  );
}

/**
 * Decrypts a stored value back to its text; a value bound to a context
 * decrypts only with `options.context` the same (see lib/core/context.js).
 */
function decrypt(encryptedData, maybeOptions) {
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  const options = readOptions(maybeOptions);
  if (options === undefined) return withKeys(native.decrypt, encryptedData);
  return withKeys(
    native.decrypt,
    encryptedData,
    contextOption(options, 'decrypt'),
    allowUnboundOption(options, 'decrypt'),
  );
}

/** Encrypts binary data (Buffer or any Uint8Array) into the same stored format. */
function encryptBuffer(data, options) {
  if (!types.isUint8Array(data)) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `encryptBuffer() expects a Buffer or Uint8Array, got ${describeType(data)}`,
    );
  }
  return withKeys(
    native.encryptBytes,
    data,
    versionOption(options, 'encryptBuffer'),
    contextOption(options, 'encryptBuffer'),
  );
}

/** Decrypts a stored value to a Buffer (for values written by encryptBuffer). */
function decryptBuffer(encryptedData, maybeOptions) {
  const options = readOptions(maybeOptions);
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  // The plaintext is as long as the ciphertext, half its hex. The addon
  // decrypts into a Buffer made here: small ones come out of Node's pool,
  // much cheaper than one made in the addon. A string of any other shape
  // fails in the addon.
  const bytes = Math.max(0, Math.floor(resultBytes(false, encryptedData.length, 1)));
  const out = Buffer.allocUnsafe(bytes);
  withKeys(
    native.decryptBytes,
    encryptedData,
    out,
    contextOption(options, 'decryptBuffer'),
    allowUnboundOption(options, 'decryptBuffer'),
  );
  return out;
}

/** `VV:` + 32 hex + `:` + 32 hex + `:`: the shortest stored value. */
const STORED_HEADER = 69;
const COLON = 0x3a;

/**
 * True only for a well-formed stored value (a string in `VV:IV:TAG:CT` form).
 * The length and the three separators are checked here first (the addon
 * checks them too), so the plaintexts Mongoose casts on every read and write
 * of an encrypted path are told apart without a native call.
 */
function isEncrypted(value) {
  return (
    typeof value === 'string' &&
    value.length >= STORED_HEADER &&
    value.charCodeAt(2) === COLON &&
    value.charCodeAt(35) === COLON &&
    value.charCodeAt(68) === COLON &&
    native.isWellFormed(value)
  );
}

/**
 * Re-encrypts a stored value under `newKeyVersion` (for key rotation), bound
 * to `options.context`; it is read under `options.fromContext` (default: the
 * same context; `null` for an unbound value), accepting an unbound value
 * too with `options.allowUnbound`. The plaintext stays inside the native
 * addon.
 */
function reEncrypt(encryptedData, newKeyVersion, options) {
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  const version = keys.checkVersion(newKeyVersion, 'reEncrypt()');
  if (options === undefined) return withKeys(native.reEncrypt, encryptedData, version);
  const context = contextOption(options, 'reEncrypt');
  const from = keys.checkOptions(options, 'reEncrypt').fromContext;
  const fromContext = from === undefined ? context : from === null ? undefined : encodeContext(from, 'reEncrypt');
  return withKeys(
    native.reEncrypt,
    encryptedData,
    version,
    context,
    fromContext,
    allowUnboundOption(options, 'reEncrypt'),
  );
}

/** The two-digit key version a stored value was written with. */
function getKeyVersion(encryptedData) {
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  try {
    return native.keyVersionOf(encryptedData);
  } catch (err) {
    throw adopt(err);
  }
}

module.exports = { encrypt, decrypt, encryptBuffer, decryptBuffer, isEncrypted, reEncrypt, getKeyVersion };
