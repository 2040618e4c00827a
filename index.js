'use strict';

/**
 * fieldcrypt: field-level AES-256-GCM encryption for Mongoose, with a Rust core.
 * See README.md; types in index.d.ts.
 */

const api = require('./lib/core');
const { configureKeys, reloadKeys, loadedKeyVersions } = require('./lib/core/keys');
const { keyUsage, onKeyUsage } = require('./lib/core/usage');
const { loadKeyVault } = require('./lib/vault/load');
const { encryptFieldIfModified, createDecryptMethod, createDecryptedGetter } = require('./lib/mongoose/helpers');
const { fieldEncryption, decryptDocument, encryptedPaths } = require('./lib/mongoose/plugin');
const { FieldCryptError, codes } = require('./lib/core/errors');
const { info: nativeInfo } = require('./lib/core/native');

module.exports = {
  // encrypt/decrypt of text, Buffers and batches, isEncrypted, reEncrypt,
  // getKeyVersion (the exact export set is pinned by __test__/api.test.js)
  ...api,
  configureKeys,
  reloadKeys,
  loadedKeyVersions,
  keyUsage,
  onKeyUsage,
  loadKeyVault,
  encryptFieldIfModified,
  createDecryptMethod,
  createDecryptedGetter,
  nativeInfo,
  fieldEncryption,
  decryptDocument,
  encryptedPaths,
  FieldCryptError,
  errorCodes: codes,
};
