'use strict';

/**
 * Keys from a key vault for the data commands (encrypt, rotate, decrypt, bind,
 * reindex, status): when the config file has `keyVault` ({ keyVaultNamespace?,
 * kmsProviders, currentVersion?, currentIndexVersion? }), its DEKs are loaded
 * with loadKeyVault() on the command's database before the command runs, and
 * the vault is closed after it (which adds the run's encryption counts to the
 * vault). Without `keyVault`, keys come from the environment as before; the
 * two work together as they do in an application.
 *
 * What must stay true: the DEKs go from the vault into the addon (the CLI
 * never sees key material), and a vault that cannot be loaded stops the
 * command before anything is read or written.
 */

const { loadConfig, configUri } = require('./targets');
const { UsageError } = require('./args');

const VAULT_OPTIONS = ['keyVaultNamespace', 'kmsProviders', 'currentVersion', 'currentIndexVersion'];

/** Runs `fn` with the config's key vault loaded (when it names one). */
async function withVaultKeys(opts, fn) {
  if (!opts.config) return fn();
  const config = await loadConfig(opts.config);
  if (config.keyVault === undefined || config.keyVault === null) return fn();
  const keyVault = config.keyVault;
  if (typeof keyVault !== 'object' || Array.isArray(keyVault) || !keyVault.kmsProviders) {
    throw new UsageError('--config: "keyVault" must be an object with kmsProviders (and optionally keyVaultNamespace)');
  }
  const options = { uri: configUri(opts, config) };
  for (const name of VAULT_OPTIONS) if (keyVault[name] !== undefined) options[name] = keyVault[name];
  const { loadKeyVault } = require('../vault');
  const vault = await loadKeyVault(options);
  try {
    return await fn();
  } finally {
    await vault.close();
  }
}

module.exports = { withVaultKeys };
