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
const { withKeys, versionOption } = require('./calls');
const { resultBytes } = require('./limits');

function checkString(value, fn) {
  if (typeof value !== 'string') {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `${fn}() expects a string, got ${describeType(value)}`);
  }
}

/**
 * Encrypts UTF-8 text into `VV:IV:TAG:CT` under the current key version, or
 * `options.keyVersion`.
 */
function encrypt(plaintext, options) {
  checkString(plaintext, 'encrypt');
  return withKeys(native.encrypt, plaintext, versionOption(options, 'encrypt'));
}

/** Decrypts a stored value back to its text. */
function decrypt(encryptedData) {
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  return withKeys(native.decrypt, encryptedData);
}

/** Encrypts binary data (Buffer or any Uint8Array) into the same stored format. */
function encryptBuffer(data, options) {
  if (!types.isUint8Array(data)) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `encryptBuffer() expects a Buffer or Uint8Array, got ${describeType(data)}`,
    );
  }
  return withKeys(native.encryptBytes, data, versionOption(options, 'encryptBuffer'));
}

/** Decrypts a stored value to a Buffer (for values written by encryptBuffer). */
function decryptBuffer(encryptedData) {
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  // The plaintext is as long as the ciphertext, half its hex. The addon
  // decrypts into a Buffer made here: small ones come out of Node's pool,
  // much cheaper than one made in the addon. A string of any other shape
  // fails in the addon.
  const bytes = Math.max(0, Math.floor(resultBytes(false, encryptedData.length, 1)));
  const out = Buffer.allocUnsafe(bytes);
  withKeys(native.decryptBytes, encryptedData, out);
  return out;
}

/** True only for a well-formed stored value (a string in `VV:IV:TAG:CT` form). */
function isEncrypted(value) {
  return typeof value === 'string' && native.isWellFormed(value);
}

/**
 * Re-encrypts a stored value under `newKeyVersion` (for key rotation). The
 * plaintext stays inside the native addon.
 */
function reEncrypt(encryptedData, newKeyVersion) {
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  return withKeys(native.reEncrypt, encryptedData, keys.checkVersion(newKeyVersion, 'reEncrypt()'));
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
