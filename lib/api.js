'use strict';

/**
 * The core API: encrypt, decrypt, isEncrypted, reEncrypt, getKeyVersion.
 *
 * Each call goes straight to the native keyring. If the keyring reports a
 * missing key version, the key is loaded from process.env (environment mode)
 * and the call is retried once; this keeps key loading lazy without a check
 * on the fast path.
 */

const native = require('./native').load();
const { codes, FieldCryptError, adopt, describeType, invalidFormat } = require('./errors');
const keys = require('./keys');

const { ring } = keys;

function retryable(err, version) {
  return err && err.code === codes.KEY_NOT_FOUND && keys.loadMissing(version);
}

function versionOption(options) {
  if (options === undefined || options === null || options.keyVersion === undefined) return keys.currentVersion();
  return keys.checkVersion(options.keyVersion, 'options.keyVersion');
}

/**
 * Encrypts UTF-8 text into `VV:IV:TAG:CT` under the current key version, or
 * `options.keyVersion`.
 */
function encrypt(plaintext, options) {
  if (typeof plaintext !== 'string') {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `encrypt() expects a string, got ${describeType(plaintext)}`);
  }
  const version = versionOption(options);
  try {
    return ring.encrypt(plaintext, version);
  } catch (err) {
    if (!retryable(err, version)) throw adopt(err);
  }
  try {
    return ring.encrypt(plaintext, version);
  } catch (err) {
    throw adopt(err);
  }
}

/** Decrypts a stored value back to its text. */
function decrypt(encryptedData) {
  if (typeof encryptedData !== 'string') throw invalidFormat(encryptedData);
  try {
    return ring.decrypt(encryptedData);
  } catch (err) {
    // A missing key is only reported for a well-formed value, whose first two
    // characters are its version.
    if (!retryable(err, encryptedData.slice(0, 2))) throw adopt(err);
  }
  try {
    return ring.decrypt(encryptedData);
  } catch (err) {
    throw adopt(err);
  }
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

module.exports = { encrypt, decrypt, isEncrypted, reEncrypt, getKeyVersion };
