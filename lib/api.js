'use strict';

/**
 * The core API: encrypt, decrypt, isEncrypted, reEncrypt, getKeyVersion.
 *
 * Each call goes straight to the native keyring. If the keyring reports a
 * missing key version, the key is loaded from process.env (environment mode)
 * and the call is retried once; this keeps key loading lazy without a check
 * on the fast path.
 */

const { types } = require('node:util');
const native = require('./native').load();
const { codes, FieldCryptError, adopt, describeType, invalidFormat } = require('./errors');
const keys = require('./keys');

const { ring } = keys;

function retryable(err, version) {
  return err && err.code === codes.KEY_NOT_FOUND && keys.loadMissing(version);
}

function versionOption(options, fn) {
  const { keyVersion } = keys.checkOptions(options, fn);
  return keyVersion === undefined ? keys.currentVersion() : keys.checkVersion(keyVersion, 'options.keyVersion');
}

/**
 * Calls `ring[method](arg, version)`; if the keyring lacks `needed` (the
 * version the call uses), loads it from process.env and calls once more.
 */
function withKey(method, arg, version, needed) {
  try {
    return ring[method](arg, version);
  } catch (err) {
    if (!retryable(err, needed)) throw adopt(err);
  }
  try {
    return ring[method](arg, version);
  } catch (err) {
    throw adopt(err);
  }
}

/**
 * Encrypts UTF-8 text into `VV:IV:TAG:CT` under the current key version, or
 * `options.keyVersion`.
 */
function encrypt(plaintext, options) {
  if (typeof plaintext !== 'string') {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `encrypt() expects a string, got ${describeType(plaintext)}`);
  }
  const version = versionOption(options, 'encrypt');
  return withKey('encrypt', plaintext, version, version);
}

/** Decrypts a stored value back to its text. */
function decrypt(encryptedData) {
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  // A missing key is only reported for a well-formed value, whose first two
  // characters are its version.
  return withKey('decrypt', encryptedData, undefined, encryptedData.slice(0, 2));
}

/** Encrypts binary data (Buffer or any Uint8Array) into the same stored format. */
function encryptBuffer(data, options) {
  if (!types.isUint8Array(data)) {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `encryptBuffer() expects a Buffer or Uint8Array, got ${describeType(data)}`);
  }
  const version = versionOption(options, 'encryptBuffer');
  return withKey('encryptBytes', data, version, version);
}

/** Decrypts a stored value to a Buffer (for values written by encryptBuffer). */
function decryptBuffer(encryptedData) {
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  return withKey('decryptBytes', encryptedData, undefined, encryptedData.slice(0, 2));
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
  keys.checkVersion(newKeyVersion, 'reEncrypt()');
  // Up to two keys may need loading: the stored version and the new one.
  for (let attempt = 0; ; attempt++) {
    try {
      return ring.reEncrypt(encryptedData, newKeyVersion);
    } catch (err) {
      const missing = ring.has(newKeyVersion) ? encryptedData.slice(0, 2) : newKeyVersion;
      if (attempt >= 2 || !retryable(err, missing)) throw adopt(err);
    }
  }
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
