'use strict';

const { types } = require('node:util');

/**
 * Errors: every error fieldcrypt throws is a FieldCryptError (an Error) with a
 * stable `code`. Messages never contain plaintext, stored values or key bytes.
 */

// Every code, under its own name. __test__/shared-facts.test.js checks this
// table against the codes src/ raises, index.d.ts and the README.
const codes = Object.freeze({
  KEY_NOT_FOUND: 'ERR_FIELDCRYPT_KEY_NOT_FOUND',
  INVALID_KEY_LENGTH: 'ERR_FIELDCRYPT_INVALID_KEY_LENGTH',
  INVALID_KEY: 'ERR_FIELDCRYPT_INVALID_KEY',
  WEAK_KEY: 'ERR_FIELDCRYPT_WEAK_KEY',
  INVALID_KEY_VERSION: 'ERR_FIELDCRYPT_INVALID_KEY_VERSION',
  KEY_CONFLICT: 'ERR_FIELDCRYPT_KEY_CONFLICT',
  // Blind indexes (lib/core/blind-index.js): no index key for a version.
  INDEX_KEY_NOT_FOUND: 'ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND',
  INVALID_FORMAT: 'ERR_FIELDCRYPT_INVALID_FORMAT',
  AUTH_FAILED: 'ERR_FIELDCRYPT_AUTH_FAILED',
  CONTEXT_MISMATCH: 'ERR_FIELDCRYPT_CONTEXT_MISMATCH',
  UNBOUND_VALUE: 'ERR_FIELDCRYPT_UNBOUND_VALUE',
  TOO_LARGE: 'ERR_FIELDCRYPT_TOO_LARGE',
  NOT_UTF8: 'ERR_FIELDCRYPT_NOT_UTF8',
  INVALID_ARGUMENT: 'ERR_FIELDCRYPT_INVALID_ARGUMENT',
  UNSUPPORTED_TYPE: 'ERR_FIELDCRYPT_UNSUPPORTED_TYPE',
  ADDON_NOT_BUILT: 'ERR_FIELDCRYPT_ADDON_NOT_BUILT',
  // A panic inside a native call (src/napi/errors.rs run), caught and thrown
  // instead of aborting the process: a bug in fieldcrypt, never caused by a
  // value or a key.
  INTERNAL: 'ERR_FIELDCRYPT_INTERNAL',
  // The fieldEncryption plugin (lib/mongoose/plugin/) and typed values (lib/core/codec.js):
  UNENCRYPTED_VALUE: 'ERR_FIELDCRYPT_UNENCRYPTED_VALUE',
  UNSUPPORTED_OPERATOR: 'ERR_FIELDCRYPT_UNSUPPORTED_OPERATOR',
  UNSUPPORTED_QUERY: 'ERR_FIELDCRYPT_UNSUPPORTED_QUERY',
  UNSUPPORTED_CODEC: 'ERR_FIELDCRYPT_UNSUPPORTED_CODEC',
  // Key vault (lib/vault/): a KMS or master key that cannot wrap or unwrap a
  // DEK, and a vault whose documents or use are inconsistent.
  KMS: 'ERR_FIELDCRYPT_KMS',
  KEY_VAULT: 'ERR_FIELDCRYPT_KEY_VAULT',
});

class FieldCryptError extends Error {
  /**
   * `details` (optional) adds context properties, never values: the plugin
   * sets `modelName`, `path` and `operator`.
   */
  constructor(code, message, details) {
    super(message);
    this.code = code;
    if (details) {
      for (const key of ['modelName', 'path', 'operator']) {
        if (details[key] !== undefined) this[key] = details[key];
      }
    }
  }

  get name() {
    return 'FieldCryptError';
  }
}

/** Gives an error thrown by the native addon the FieldCryptError prototype. */
function adopt(err) {
  if (
    err &&
    typeof err.code === 'string' &&
    err.code.startsWith('ERR_FIELDCRYPT_') &&
    !(err instanceof FieldCryptError)
  ) {
    Object.setPrototypeOf(err, FieldCryptError.prototype);
  }
  return err;
}

/**
 * Names a value's type for messages without showing the value, or anything
 * the value controls (such as a constructor name).
 */
function describeType(value) {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value !== 'object') return `a ${typeof value}`;
  if (types.isUint8Array(value)) return 'a Uint8Array';
  if (types.isTypedArray(value)) return 'a typed array';
  if (types.isArrayBuffer(value) || types.isSharedArrayBuffer(value)) return 'an ArrayBuffer';
  if (types.isDate(value)) return 'a Date';
  if (types.isPromise(value)) return 'a Promise';
  if (types.isMap(value)) return 'a Map';
  if (types.isSet(value)) return 'a Set';
  if (types.isRegExp(value)) return 'a RegExp';
  return 'an object';
}

const INVALID_FORMAT_MESSAGE =
  'Invalid encrypted data format: expected VV:IV:TAG:CT (two-digit key version, 32 hex IV, 32 hex tag, hex ciphertext)';

function invalidFormat(value) {
  return new FieldCryptError(codes.INVALID_FORMAT, `${INVALID_FORMAT_MESSAGE}; got ${describeType(value)}`);
}

module.exports = { codes, FieldCryptError, adopt, describeType, invalidFormat };
