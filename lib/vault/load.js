'use strict';

/**
 * loadKeyVault(): the DEKs of a key vault, unwrapped once and installed into
 * the addon's key ring (src/napi/vault.rs), so encrypt()/decrypt() and the
 * plugin stay synchronous and never see a DEK.
 *
 * - At start every non-retired DEK must unwrap: any failure (KMS unreachable,
 *   wrong master key, bad document, a version also defined by the
 *   environment) rejects, and the keys this call installed are removed again.
 * - New values are written with the newest active encryption DEK (or
 *   `currentVersion`); decrypt-only DEKs only decrypt; retired ones are not loaded.
 * - Blind-index DEKs (purpose "index") go to the addon's index keys the same
 *   way: new index values are written with the newest active one (or
 *   `currentIndexVersion`), decrypt-only ones are only read (queries during a
 *   rotation), retired ones are not loaded (and dropped on refresh).
 * - refresh() (and every refreshIntervalMS) loads new and rewrapped DEKs and
 *   drops retired ones. A refresh that fails keeps serving the keys loaded
 *   (nothing is removed for a document that went missing or a KMS that is
 *   down) and reports the error as a 'refreshError' event (a process warning
 *   when nobody listens).
 * - The addon's encryption counts (keyUsage()) are added to each DEK's
 *   usage.encryptions at every refresh and on close(), as increments, so
 *   several processes add up.
 */

const { EventEmitter } = require('node:events');
const native = require('../core/native').load();
const keys = require('../core/keys');
const blindIndexKeys = require('../core/blind-index');
const { keyUsage } = require('../core/usage');
const { codes, FieldCryptError, adopt, describeType } = require('../core/errors');
const { openVault, ensureIndexes, checkDoc, describe, materialOf, vaultError, DEFAULT_NAMESPACE } = require('./store');
const { resolveProviders } = require('./providers');
const { refOf } = require('./deks');

const OPTIONS = [
  'keyVaultNamespace',
  'kmsProviders',
  'connection',
  'uri',
  'refreshIntervalMS',
  'currentVersion',
  'currentIndexVersion',
];

/** What identifies a loaded DEK's wrapping: a changed one is unwrapped again. */
function fingerprint(doc) {
  return `${doc.status}|${JSON.stringify(doc.masterKey)}|${Buffer.from(materialOf(doc)).toString('base64')}`;
}

function forget(version, purpose = 'encryption') {
  try {
    if (purpose === 'index') native.vaultForgetIndex(version);
    else native.vaultForget(version);
  } catch (err) {
    throw adopt(err);
  }
}

class KeyVault extends EventEmitter {
  constructor(vault, providers, options) {
    super();
    this._vault = vault;
    this._providers = providers;
    this._currentVersion = options.currentVersion;
    this._currentIndexVersion = options.currentIndexVersion;
    this._loaded = new Map(); // version -> fingerprint
    this._loadedIndex = new Map(); // blind-index DEKs: version -> fingerprint
    this._flushed = new Map(); // version -> encryptions already added to the vault
    this._usesIndexVersion = false; // whether useIndexVersion() was given a version of this vault
    this._timer = null;
    this._refreshing = undefined; // the refresh under way, if any
  }

  get keyVaultNamespace() {
    return this._vault.namespace;
  }

  /** The versions loaded from the vault, ascending. */
  get versions() {
    return [...this._loaded.keys()].sort();
  }

  async _install(doc) {
    checkDoc(doc);
    if (keys.envDefines(doc.version) && !this._loaded.has(doc.version)) {
      throw new FieldCryptError(
        codes.KEY_VAULT,
        `Key version ${doc.version} is defined twice, in the key vault and by an environment or configureKeys() key; remove one of them (after moving a key into the vault, unset its ENCRYPTION_KEY_V${doc.version})`,
      );
    }
    const provider = this._providers(doc.masterKey.provider);
    await provider.install(materialOf(doc), doc.masterKey, refOf(doc, this._vault.namespace));
    if (!this._flushed.has(doc.version)) {
      // Encryptions under this version before it came from the vault are not its DEK's.
      const before = keyUsage()[doc.version];
      this._flushed.set(doc.version, before ? before.encryptions : 0);
    }
    this._loaded.set(doc.version, fingerprint(doc));
  }

  /** The index key versions loaded from the vault, ascending. */
  get indexVersions() {
    return [...this._loadedIndex.keys()].sort();
  }

  /** A blind-index DEK: unwrapped into the addon's vault index ring (purpose "index"). */
  async _installIndexKey(doc) {
    checkDoc(doc);
    if (blindIndexKeys.envDefinesIndex(doc.version) && !this._loadedIndex.has(doc.version)) {
      throw new FieldCryptError(
        codes.KEY_VAULT,
        `Index key version ${doc.version} is defined twice, in the key vault and by an environment or configureIndexKeys() key; remove one of them (after moving an index key into the vault, unset its ENCRYPTION_INDEX_KEY_V${doc.version}${doc.version === '01' ? ' and ENCRYPTION_INDEX_KEY' : ''})`,
      );
    }
    const provider = this._providers(doc.masterKey.provider);
    await provider.install(materialOf(doc), doc.masterKey, refOf(doc, this._vault.namespace));
    this._loadedIndex.set(doc.version, fingerprint(doc));
  }

  /** Loads, refreshes and drops the blind-index DEKs; returns the failures (with `strict`, throws the first). */
  async _loadIndex(all, strict) {
    const docs = all.filter((d) => d.purpose === 'index');
    const failures = [];
    const seen = new Set();
    for (const doc of docs.sort((a, b) => String(a.version).localeCompare(String(b.version)))) {
      seen.add(doc.version);
      try {
        if (doc.status === 'retired') {
          if (this._loadedIndex.has(doc.version)) {
            forget(doc.version, 'index');
            this._loadedIndex.delete(doc.version);
          }
          continue;
        }
        if (this._loadedIndex.get(doc.version) === fingerprint(doc)) continue;
        await this._installIndexKey(doc);
      } catch (err) {
        if (strict) throw err;
        failures.push(err);
      }
    }
    for (const version of this._loadedIndex.keys()) {
      if (!seen.has(version)) {
        failures.push(
          vaultError(
            `the index DEK of index key version ${version} is no longer in ${this._vault.namespace}; still serving it from memory: restore the document (from a backup) before this process restarts`,
          ),
        );
      }
    }
    const active = docs.filter((d) => d.status === 'active' && this._loadedIndex.has(d.version)).map((d) => d.version);
    const current = this._currentIndexVersion ?? active.sort().at(-1);
    if (current !== undefined || this._usesIndexVersion) blindIndexKeys.useIndexVersion(current);
    this._usesIndexVersion = current !== undefined;
    return failures;
  }

  /** Loads every DEK that is new or changed; with `strict`, the first failure rejects. */
  async _load(strict) {
    const all = await this._vault.coll.find({}).toArray();
    const docs = all.filter((d) => d.purpose === 'encryption');
    const failures = await this._loadIndex(all, strict);
    const seen = new Set();
    for (const doc of docs.sort((a, b) => String(a.version).localeCompare(String(b.version)))) {
      seen.add(doc.version);
      try {
        if (doc.status === 'retired') {
          if (this._loaded.has(doc.version)) {
            forget(doc.version);
            this._loaded.delete(doc.version);
          }
          continue;
        }
        if (this._loaded.get(doc.version) === fingerprint(doc)) continue;
        await this._install(doc);
      } catch (err) {
        if (strict) throw err;
        failures.push(err);
      }
    }
    for (const version of this._loaded.keys()) {
      if (!seen.has(version)) {
        failures.push(
          vaultError(
            `the DEK of key version ${version} is no longer in ${this._vault.namespace}; still serving it from memory: restore the document (from a backup) before this process restarts`,
          ),
        );
      }
    }
    const active = docs.filter((d) => d.status === 'active' && this._loaded.has(d.version)).map((d) => d.version);
    const current = this._currentVersion ?? active.sort().at(-1);
    if (current !== undefined) keys.useVersion(current);
    return failures;
  }

  /** Re-reads the vault; resolves with the errors met (also emitted as 'refreshError'). One at a time. */
  refresh() {
    this._refreshing ??= this._refresh().finally(() => {
      this._refreshing = undefined;
    });
    return this._refreshing;
  }

  async _refresh() {
    let failures;
    try {
      await this.flushUsage();
      failures = await this._load(false);
    } catch (err) {
      failures = [err];
    }
    for (const err of failures) {
      if (this.listenerCount('refreshError') > 0) this.emit('refreshError', err);
      else process.emitWarning(err);
    }
    this.emit('refresh', { versions: this.versions, indexVersions: this.indexVersions, errors: failures });
    return failures;
  }

  /** Adds this process's new encryptions per loaded version to the vault's usage counters. */
  async flushUsage() {
    const usage = keyUsage();
    for (const version of this._loaded.keys()) {
      const count = usage[version] ? usage[version].encryptions : 0;
      const delta = count - (this._flushed.get(version) || 0);
      if (delta <= 0) continue;
      await this._vault.coll.updateOne({ purpose: 'encryption', version }, { $inc: { 'usage.encryptions': delta } });
      this._flushed.set(version, count);
    }
  }

  /** Stops refreshing, flushes the usage counts, closes a client opened from `uri`. Loaded keys stay loaded. */
  async close() {
    if (this._timer) clearInterval(this._timer);
    this._timer = null;
    try {
      await this.flushUsage();
    } finally {
      await this._vault.close();
    }
  }
}

function checkOptions(options) {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `loadKeyVault() expects an options object, got ${describeType(options)}`,
    );
  }
  for (const name of Object.keys(options)) {
    if (!OPTIONS.includes(name)) {
      throw new FieldCryptError(
        codes.INVALID_ARGUMENT,
        `loadKeyVault() has no option "${name}" (options: ${OPTIONS.join(', ')})`,
      );
    }
  }
  const { refreshIntervalMS, currentVersion, currentIndexVersion } = options;
  if (
    refreshIntervalMS !== undefined &&
    (!Number.isInteger(refreshIntervalMS) || refreshIntervalMS < 1 || refreshIntervalMS > 2 ** 31 - 1)
  ) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      'loadKeyVault() option refreshIntervalMS must be a positive integer (milliseconds)',
    );
  }
  if (currentVersion !== undefined) keys.checkVersion(currentVersion, 'loadKeyVault() option currentVersion');
  if (currentIndexVersion !== undefined) {
    keys.checkVersion(currentIndexVersion, 'loadKeyVault() option currentIndexVersion');
  }
}

/**
 * await loadKeyVault({ keyVaultNamespace?, kmsProviders, connection | uri, refreshIntervalMS?, currentVersion?,
 *   currentIndexVersion? })
 * resolves with a KeyVault once every DEK is installed.
 */
async function loadKeyVault(options) {
  checkOptions(options);
  const providers = resolveProviders(options.kmsProviders);
  const vault = await openVault({
    keyVaultNamespace: options.keyVaultNamespace ?? DEFAULT_NAMESPACE,
    connection: options.connection,
    uri: options.uri,
  });
  const kv = new KeyVault(vault, providers, options);
  try {
    await ensureIndexes(vault.coll);
    await kv._load(true);
  } catch (err) {
    for (const version of kv._loaded.keys()) forget(version);
    for (const version of kv._loadedIndex.keys()) forget(version, 'index');
    if (kv._usesIndexVersion) blindIndexKeys.useIndexVersion(undefined);
    await vault.close();
    throw err;
  }
  if (options.refreshIntervalMS) {
    kv._timer = setInterval(() => {
      // A throwing 'refresh' listener must not become an unhandled rejection.
      kv.refresh().catch((err) => process.emitWarning(err));
    }, options.refreshIntervalMS);
    kv._timer.unref();
  }
  return kv;
}

module.exports = { loadKeyVault, KeyVault, describe };
