'use strict';

/**
 * Blind index values (issue 20): a keyed, deterministic value of a field's
 * plaintext, stored beside its (randomized) ciphertext, so that equality
 * queries can find it. The derivation is in src/blind_index.rs and
 * docs/format.md ("Blind index values"):
 *
 *   k_path = HKDF-SHA256(index key of version VV, salt "fieldcrypt/blind-index/v1",
 *                        info collection || 0x00 || path, 32 bytes)
 *   value  = "VV:" + hex(HMAC-SHA256(k_path, input as UTF-8 or bytes))
 *
 * Index keys are not encryption keys, and live only in the addon:
 *
 * Environment mode (the default): version 01 is ENCRYPTION_INDEX_KEY or
 * ENCRYPTION_INDEX_KEY_V01, version NN is ENCRYPTION_INDEX_KEY_VNN, and
 * ENCRYPTION_INDEX_KEY_VERSION (default: the highest version set) is the
 * version new index values are written with. Nothing is read at import: the
 * first call that needs index keys reads them all (apps that load dotenv after
 * their imports work); while none is set, each call fails with
 * ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND and the next one reads again. A version
 * set later is read when first asked for. reloadIndexKeys() re-reads.
 *
 * Key vault: loadKeyVault() installs index DEKs (purpose "index") into the
 * addon's vault index ring, and calls useIndexVersion() with the version new
 * index values are written with; that choice wins over the environment's
 * (state.vaultCurrent). A version defined by the vault and by the environment
 * or configureIndexKeys() is refused (ERR_FIELDCRYPT_KEY_VAULT), here for
 * variables not read yet and in the addon for keys it holds.
 *
 * Configured mode: configureIndexKeys({ '01': hex }, { current: '01' })
 * installs exactly those keys; process.env is not consulted until
 * reloadIndexKeys().
 *
 * An index key equal to an encryption key is refused (ERR_FIELDCRYPT_KEY_CONFLICT):
 * by the addon against the encryption keys it holds (and the other way round
 * when an encryption key is loaded later), and here against the
 * ENCRYPTION_KEY* variables, which environment mode loads only when used.
 */

const { types } = require('node:util');
const native = require('./native').load();
const { codes, FieldCryptError, adopt, describeType } = require('./errors');
const { checkVersion, checkOptions } = require('./keys');
// Re-exported: callers of the blind index API find the text it MACs here too.
const { indexInput } = require('./index-input');

const VERSION_RE = /^\d\d$/;

const state = {
  mode: 'env',
  /** Whether the index keys of the current mode are installed. */
  loaded: false,
  /** The version new index values are written with, once loaded. */
  current: undefined,
  /** The version a key vault writes with (lib/vault/load.js), or undefined. */
  vaultCurrent: undefined,
};

function envValue(name) {
  const v = process.env[name];
  return v === undefined ? undefined : v.trim() || undefined;
}

function variableHint(version) {
  return version === '01' ? 'ENCRYPTION_INDEX_KEY (or ENCRYPTION_INDEX_KEY_V01)' : `ENCRYPTION_INDEX_KEY_V${version}`;
}

/** The addon's message for a missing index key (src/error.rs IndexKeyNotFound). */
function notFound(version) {
  const err = new FieldCryptError(
    codes.INDEX_KEY_NOT_FOUND,
    `Index key not found for index key version ${version}: set ${variableHint(version)} to 64 hex characters ` +
      '(generate one with `openssl rand -hex 32`; it must differ from every encryption key), or pass it to ' +
      'configureIndexKeys()',
  );
  err.keyVersion = version;
  return err;
}

/** The hex index key for `version` from process.env, or undefined. */
function envIndexKey(version) {
  const specific = envValue(`ENCRYPTION_INDEX_KEY_V${version}`);
  if (version !== '01') return specific;
  const plain = envValue('ENCRYPTION_INDEX_KEY');
  if (specific && plain && specific !== plain) {
    throw new FieldCryptError(
      codes.KEY_CONFLICT,
      'Conflicting index keys for index key version 01: ENCRYPTION_INDEX_KEY and ENCRYPTION_INDEX_KEY_V01 are ' +
        'both set and differ; unset one of them',
    );
  }
  return specific || plain;
}

/** Every index key set in process.env: { version: hex }. */
function envIndexKeys() {
  const entries = {};
  const v01 = envIndexKey('01');
  if (v01 !== undefined) entries['01'] = v01;
  for (const name of Object.keys(process.env)) {
    const m = /^ENCRYPTION_INDEX_KEY_V(\d\d)$/.exec(name);
    if (m && m[1] !== '01') {
      const hex = envValue(name);
      if (hex !== undefined) entries[m[1]] = hex;
    }
  }
  return entries;
}

/** ENCRYPTION_INDEX_KEY_VERSION, validated; undefined when unset. */
function envCurrentVersion() {
  const v = envValue('ENCRYPTION_INDEX_KEY_VERSION');
  if (v !== undefined && !VERSION_RE.test(v)) {
    throw new FieldCryptError(
      codes.INVALID_KEY_VERSION,
      'Invalid ENCRYPTION_INDEX_KEY_VERSION: it must be two digits, such as 01 or 02',
    );
  }
  return v;
}

/**
 * Refuses index keys equal to an encryption key set in process.env (not yet
 * loaded, perhaps never: environment mode loads encryption keys when used).
 */
function checkAgainstEnvEncryptionKeys(entries) {
  const encryption = new Map();
  for (const name of Object.keys(process.env)) {
    if (name === 'ENCRYPTION_KEY' || /^ENCRYPTION_KEY_V\d\d$/.test(name)) {
      const hex = envValue(name);
      if (hex !== undefined) encryption.set(hex.toLowerCase(), name);
    }
  }
  for (const [version, hex] of Object.entries(entries)) {
    const name = typeof hex === 'string' && encryption.get(hex.toLowerCase());
    if (name) {
      throw new FieldCryptError(
        codes.KEY_CONFLICT,
        `Conflicting keys: the index key of index key version ${version} is the encryption key in ${name}; ` +
          'index keys must be keys of their own (generate one with `openssl rand -hex 32`)',
      );
    }
  }
}

/** Installs exactly these index keys ({ version: hex }) in the addon; all or nothing. */
function install(entries) {
  checkAgainstEnvEncryptionKeys(entries);
  try {
    native.replaceIndexKeys(Object.keys(entries), Object.values(entries));
  } catch (err) {
    throw adopt(err);
  }
}

/**
 * Reads every index key from process.env and installs them (all or nothing);
 * false, with the index keys emptied, when none is set.
 */
function loadFromEnv() {
  const entries = envIndexKeys();
  const versions = Object.keys(entries).sort();
  const { vaultCurrent } = state;
  const current = vaultCurrent ?? envCurrentVersion() ?? versions.at(-1);
  if (versions.length === 0) {
    try {
      native.clearIndexKeys(); // the vault's index keys stay
    } catch (err) {
      throw adopt(err);
    }
    state.loaded = vaultCurrent !== undefined;
    state.current = vaultCurrent;
    return state.loaded;
  }
  if (vaultCurrent === undefined && !Object.hasOwn(entries, current)) throw notFound(current);
  install(entries);
  state.current = current;
  state.loaded = true;
  return true;
}

/** Makes sure the index keys of the current mode are installed. */
function ensureLoaded() {
  if (state.loaded) return;
  if (!loadFromEnv()) throw notFound(envCurrentVersion() ?? '01');
}

/** The version new index values are written with. */
function currentIndexVersion() {
  ensureLoaded();
  return state.current;
}

/** Calls the addon; in environment mode, a version it lacks is read from process.env once, then retried. */
function withIndexKeys(fn, a, b, c, d) {
  for (;;) {
    try {
      return fn(a, b, c, d);
    } catch (err) {
      const version = err && err.code === codes.INDEX_KEY_NOT_FOUND ? err.keyVersion : undefined;
      const hex = state.mode === 'env' && version !== undefined ? envIndexKey(version) : undefined;
      if (hex === undefined || native.hasIndexKey(version)) throw adopt(err);
      checkAgainstEnvEncryptionKeys({ [version]: hex });
      try {
        native.addIndexKey(version, hex);
      } catch (e) {
        throw adopt(e);
      }
    }
  }
}

/**
 * Uses exactly these index keys from now on ({ version: hex }); `current`
 * (default: the highest version) is the version new index values are written
 * with. Validates everything first; on any error the previous keys stay.
 */
function configureIndexKeys(keys, options) {
  options = checkOptions(options, 'configureIndexKeys');
  if (keys === null || typeof keys !== 'object' || Array.isArray(keys)) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `configureIndexKeys() expects an object of { version: hexKey }, got ${describeType(keys)}`,
    );
  }
  const versions = Object.keys(keys);
  if (versions.length === 0) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      'configureIndexKeys() needs at least one key, e.g. { "01": "<64 hex chars>" }',
    );
  }
  const entries = {};
  for (const version of versions) {
    checkVersion(version, 'configureIndexKeys()');
    const hex = keys[version];
    if (typeof hex !== 'string') {
      throw new FieldCryptError(
        codes.INVALID_KEY,
        `Invalid index key for index key version ${version}: expected a string of 64 hex characters, got ${describeType(hex)}`,
      );
    }
    entries[version] = hex.trim();
  }
  const current =
    options.current === undefined
      ? versions.sort().at(-1)
      : checkVersion(options.current, 'configureIndexKeys() option current');
  if (!Object.hasOwn(entries, current)) {
    const err = notFound(current);
    err.message = `Index key not found for index key version ${current}: configureIndexKeys() was told to write with version ${current} but was given no key for it`;
    throw err;
  }
  install(entries);
  state.mode = 'configured';
  state.current = current;
  state.loaded = true;
}

/**
 * Forgets every index key, returns to environment mode and reads process.env
 * again. Throws (and installs nothing) if a key set there is invalid; with
 * none set, the index keys stay empty until one is.
 */
function reloadIndexKeys() {
  loadFromEnv();
  state.mode = 'env';
}

/**
 * `{ current, live }`: the version new index values are written with and
 * every version installed, ascending (no key material). `current` is null
 * while no index key is set.
 */
function indexKeyVersions() {
  if (!state.loaded) loadFromEnv();
  return { current: state.loaded ? state.current : null, live: native.indexKeyVersions() };
}

/**
 * Writes new index values with `version` (a key vault's newest active index
 * key, or its currentIndexVersion option) from now on; undefined when the
 * vault has none any more, and the environment or configureIndexKeys() choose
 * again.
 */
function useIndexVersion(version) {
  if (version === undefined) {
    if (state.vaultCurrent !== undefined && state.mode === 'env') state.loaded = false;
    state.vaultCurrent = undefined;
    return;
  }
  state.vaultCurrent = checkVersion(version);
  if (state.mode === 'env' && !state.loaded) {
    loadFromEnv(); // the environment's keys too; vaultCurrent is the current version
    return;
  }
  state.current = version;
  state.loaded = true;
}

/** Whether the environment (in environment mode) sets an index key for `version`. */
function envDefinesIndex(version) {
  return state.mode === 'env' && envIndexKey(version) !== undefined;
}

/** `{ collection, path, version }` of a call, checked; `version` is the current one unless given. */
function scopeOptions(options, fn, withVersion) {
  if (options === undefined || options === null) {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `${fn}() needs options { collection, path }`);
  }
  const { collection, path, version } = checkOptions(options, fn);
  for (const [name, value] of [
    ['collection', collection],
    ['path', path],
  ]) {
    if (typeof value !== 'string' || value === '' || value.includes('\0')) {
      throw new FieldCryptError(
        codes.INVALID_ARGUMENT,
        `${fn}(): options.${name} must be a non-empty string without NUL characters, got ${
          typeof value === 'string' ? 'a string that is empty or holds a NUL' : describeType(value)
        }`,
      );
    }
  }
  if (!withVersion) return { collection, path };
  return {
    collection,
    path,
    version: version === undefined ? currentIndexVersion() : checkVersion(version, `${fn}() options.version`),
  };
}

function checkInput(input, fn, index) {
  if (typeof input !== 'string' && !types.isUint8Array(input)) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `${fn}() expects a string or a Uint8Array${index === undefined ? '' : ` at index ${index}`}, got ${describeType(
        input,
      )}`,
    );
  }
}

/**
 * The index value ("VV:" + 64 hex) of `input` (a string, MACed as UTF-8, or
 * bytes) for `collection` and `path`, under `version` (default: the current
 * index key version). Normalise values first with indexInput().
 */
function blindIndex(input, options) {
  checkInput(input, 'blindIndex');
  const { collection, path, version } = scopeOptions(options, 'blindIndex', true);
  return withIndexKeys(native.blindIndex, input, version, collection, path);
}

/** blindIndex() of every input, in one native call (the path key is derived once). */
function blindIndexMany(inputs, options) {
  if (!Array.isArray(inputs)) {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `blindIndexMany() expects an array, got ${describeType(inputs)}`);
  }
  // A plain copy, read (and checked) here: no accessor of the caller's array
  // runs inside the native call.
  const list = Array.prototype.slice.call(inputs);
  for (let i = 0; i < list.length; i++) checkInput(list[i], 'blindIndexMany', i);
  const { collection, path, version } = scopeOptions(options, 'blindIndexMany', true);
  return withIndexKeys(native.blindIndexMany, list, version, collection, path);
}

/**
 * The index values of `input` under every installed index key version, the
 * current one first: what a query matches while values are moved to a new
 * version (rotation).
 */
function blindIndexAll(input, options) {
  checkInput(input, 'blindIndexAll');
  const { collection, path } = scopeOptions(options, 'blindIndexAll', false);
  const current = currentIndexVersion();
  const versions = [current, ...native.indexKeyVersions().filter((v) => v !== current)];
  return versions.map((version) => withIndexKeys(native.blindIndex, input, version, collection, path));
}

module.exports = {
  configureIndexKeys,
  reloadIndexKeys,
  indexKeyVersions,
  blindIndex,
  blindIndexMany,
  blindIndexAll,
  indexInput,
  useIndexVersion,
  envDefinesIndex,
};
