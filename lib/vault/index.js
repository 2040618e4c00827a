'use strict';

/**
 * The key vault: DEKs in a MongoDB collection, wrapped by master keys held
 * by a KMS (docs/key-vault.md). store.js is the collection, providers/ the
 * KMSs, deks.js creation and rewrapping, load.js loadKeyVault().
 */

const { loadKeyVault, KeyVault } = require('./load');
const { createDataKey, rewrapDataKey } = require('./deks');
const { openVault, ensureIndexes, DEFAULT_NAMESPACE } = require('./store');
const { resolveProviders } = require('./providers');

module.exports = {
  loadKeyVault,
  KeyVault,
  createDataKey,
  rewrapDataKey,
  openVault,
  ensureIndexes,
  resolveProviders,
  DEFAULT_NAMESPACE,
};
