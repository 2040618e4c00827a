'use strict';

/**
 * fieldcrypt: field-level AES-256-GCM encryption for Mongoose, with a Rust core.
 * See README.md; types in index.d.ts.
 */

const api = require('./lib/core');
const { configureKeys, reloadKeys, loadedKeyVersions } = require('./lib/core/keys');
const {
  configureIndexKeys,
  reloadIndexKeys,
  indexKeyVersions,
  blindIndex,
  blindIndexMany,
  blindIndexAll,
} = require('./lib/core/blind-index');
const { indexInput } = require('./lib/core/index-input');
const { keyUsage, onKeyUsage } = require('./lib/core/usage');
const { loadKeyVault } = require('./lib/vault/load');
const { encryptFieldIfModified, createDecryptMethod, createDecryptedGetter } = require('./lib/mongoose/helpers');
const { fieldEncryption, decryptDocument, encryptedPaths, searchablePaths } = require('./lib/mongoose/plugin');
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
  // blind indexes (issue 20): index keys, index values, the text a value is indexed as
  configureIndexKeys,
  reloadIndexKeys,
  indexKeyVersions,
  blindIndex,
  blindIndexMany,
  blindIndexAll,
  indexInput,
  encryptFieldIfModified,
  createDecryptMethod,
  createDecryptedGetter,
  nativeInfo,
  fieldEncryption,
  decryptDocument,
  encryptedPaths,
  searchablePaths,
  FieldCryptError,
  errorCodes: codes,
};
