'use strict';

/**
 * Fixtures for test/key-vault*.test.js: a clean key state (no environment
 * keys, nothing in the addon's key ring, vault keys included), a local
 * master key in an environment variable, the vault of the file's own
 * database, and a model using the fieldEncryption plugin.
 */

const crypto = require('node:crypto');
const native = require('../lib/core/native').load();
const { reloadKeys } = require('../lib/core/keys');
const { openVault, ensureIndexes, createDataKey, rewrapDataKey, resolveProviders } = require('../lib/vault');

const MASTER_VAR = 'FIELDCRYPT_TEST_MASTER_KEY';
const MASTER_VAR_2 = 'FIELDCRYPT_TEST_MASTER_KEY_2';

/** Forgets every key (environment and vault) and unsets ENCRYPTION_KEY*. */
function resetKeys() {
  for (const name of Object.keys(process.env)) if (name.startsWith('ENCRYPTION_KEY')) delete process.env[name];
  native.clearKeys();
  reloadKeys();
}

/** Two random local master keys in the environment: 96 bytes base64, 32 bytes hex. */
function setMasterKeys() {
  process.env[MASTER_VAR] = crypto.randomBytes(96).toString('base64');
  process.env[MASTER_VAR_2] = crypto.randomBytes(32).toString('hex');
}

const LOCAL_PROVIDERS = { local: { key: `env:${MASTER_VAR}` }, 'local:2': { key: `env:${MASTER_VAR_2}` } };

/** The file's vault: { vault (for lib/vault/deks.js), namespace, coll }. */
async function vaultOf(connection) {
  const namespace = `${connection.name}.__keyVault`;
  const vault = await openVault({ keyVaultNamespace: namespace, connection });
  await ensureIndexes(vault.coll);
  return vault;
}

/** Creates a DEK; resolves with its document. */
async function createDek(vault, kmsProviders, providerName, options = {}) {
  const providers = resolveProviders(kmsProviders);
  const provider = providers(providerName);
  const masterKey = provider.masterKeyFor(options.masterKey || {});
  return createDataKey(vault, provider, { ...options, masterKey });
}

async function rewrap(vault, kmsProviders, doc, toName, params = {}) {
  const providers = resolveProviders(kmsProviders);
  const to = providers(toName);
  return rewrapDataKey(vault, providers, doc, to, to.masterKeyFor(params));
}

/** A Patient model with an encrypted ssn (fieldEncryption plugin). */
function definePatient(mongoose, connection) {
  const { fieldEncryption } = require('..');
  const schema = new mongoose.Schema({ name: String, ssn: { type: String, encrypted: true } });
  schema.plugin(fieldEncryption);
  return connection.model('Patient', schema);
}

/** Every raw patient document, by _id order. */
async function rawPatients(connection) {
  return connection.db.collection('patients').find({}).sort({ _id: 1 }).toArray();
}

module.exports = {
  MASTER_VAR,
  MASTER_VAR_2,
  LOCAL_PROVIDERS,
  resetKeys,
  setMasterKeys,
  vaultOf,
  createDek,
  rewrap,
  definePatient,
  rawPatients,
};
