'use strict';

/**
 * Where keys come from.
 *
 * Environment mode (the default): version 01 is ENCRYPTION_KEY or
 * ENCRYPTION_KEY_V01, version NN is ENCRYPTION_KEY_VNN, and
 * ENCRYPTION_KEY_VERSION (default 01) is the version new values are written
 * with. Nothing is read at import: a version is read from process.env the
 * first time it is needed, so apps that load dotenv after their imports work.
 * reloadKeys() forgets everything and re-reads.
 *
 * Configured mode: configureKeys({ '01': hex, '02': hex }, { current: '02' })
 * replaces the keyring with exactly those keys, for apps that fetch keys from
 * a secrets manager; process.env is then not consulted until reloadKeys().
 *
 * Key bytes go straight into the native keyring and are never kept in JS.
 *
 * Keys from a key vault (lib/vault/) sit in the same native keyring beside
 * these; the addon keeps them through configureKeys()/reloadKeys() and
 * refuses a version defined both there and here.
 */

const native = require('./native').load();
const { codes, FieldCryptError, adopt, describeType } = require('./errors');

const VERSION_RE = /^\d\d$/;

const state = {
  mode: 'env',
  /** The version new values are written with; undefined until first needed. */
  current: undefined,
};

function checkVersion(version, what) {
  if (typeof version !== 'string' || !VERSION_RE.test(version)) {
    throw new FieldCryptError(
      codes.INVALID_KEY_VERSION,
      `Invalid key version${what ? ` in ${what}` : ''}: key versions are two-digit strings such as "01" or "02", got ${
        typeof version === 'string' ? `a string of length ${version.length}` : describeType(version)
      }`,
    );
  }
  return version;
}

function envValue(name) {
  const v = process.env[name];
  return v === undefined ? undefined : v.trim() || undefined;
}

/** The hex key for `version` from process.env, or undefined. */
function envKey(version) {
  const specific = envValue(`ENCRYPTION_KEY_V${version}`);
  if (version !== '01') return specific;
  const plain = envValue('ENCRYPTION_KEY');
  if (specific && plain && specific !== plain) {
    throw new FieldCryptError(
      codes.KEY_CONFLICT,
      'Conflicting keys for key version 01: ENCRYPTION_KEY and ENCRYPTION_KEY_V01 are both set and differ; unset one of them',
    );
  }
  return specific || plain;
}

function addKey(version, hex) {
  try {
    native.addKey(version, hex);
  } catch (err) {
    throw adopt(err);
  }
}

/** Installs exactly these keys ({ version: hex }); all or nothing. */
function replaceKeys(entries) {
  try {
    native.replaceKeys(Object.keys(entries), Object.values(entries));
  } catch (err) {
    throw adopt(err);
  }
}

/**
 * Called after the keyring reported that `version` is missing: in environment
 * mode, loads it from process.env. Returns true when a key was loaded (the
 * caller then retries), false when there is nothing to load.
 */
function loadMissing(version) {
  if (state.mode !== 'env' || typeof version !== 'string' || !VERSION_RE.test(version) || native.hasKey(version))
    return false;
  const hex = envKey(version);
  if (hex === undefined) return false;
  addKey(version, hex);
  return true;
}

/** An options argument: undefined, null or a plain object. */
function checkOptions(options, fn) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `${fn}() expects an options object, got ${describeType(options)}`,
    );
  }
  return options;
}

/** ENCRYPTION_KEY_VERSION, validated; 01 when unset. */
function envCurrentVersion() {
  const v = envValue('ENCRYPTION_KEY_VERSION') || '01';
  if (!VERSION_RE.test(v)) {
    throw new FieldCryptError(
      codes.INVALID_KEY_VERSION,
      'Invalid ENCRYPTION_KEY_VERSION: it must be two digits, such as 01 or 02',
    );
  }
  return v;
}

/** The version new values are written with. */
function currentVersion() {
  if (state.current === undefined) state.current = envCurrentVersion();
  return state.current;
}

/**
 * Uses exactly these keys from now on. Validates every version and key first;
 * on any error the previous keys stay in force.
 */
function configureKeys(keys, options) {
  options = checkOptions(options, 'configureKeys');
  if (keys === null || typeof keys !== 'object' || Array.isArray(keys)) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `configureKeys() expects an object of { version: hexKey }, got ${describeType(keys)}`,
    );
  }
  const versions = Object.keys(keys);
  if (versions.length === 0) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      'configureKeys() needs at least one key, e.g. { "01": "<64 hex chars>" }',
    );
  }
  const entries = {};
  for (const version of versions) {
    checkVersion(version, 'configureKeys()');
    const hex = keys[version];
    if (typeof hex !== 'string') {
      throw new FieldCryptError(
        codes.INVALID_KEY,
        `Invalid encryption key for key version ${version}: expected a string of 64 hex characters, got ${describeType(hex)}`,
      );
    }
    entries[version] = hex.trim();
  }
  const current =
    options.current === undefined
      ? versions.sort().at(-1)
      : checkVersion(options.current, 'configureKeys() option current');
  if (!Object.hasOwn(entries, current)) {
    throw new FieldCryptError(
      codes.KEY_NOT_FOUND,
      `Encryption key not found for key version ${current}: configureKeys() was told to write with version ${current} but was given no key for it`,
    );
  }
  replaceKeys(entries);
  state.mode = 'configured';
  state.current = current;
}

/**
 * Forgets every key and the current version, returns to environment mode and
 * re-reads process.env: ENCRYPTION_KEY_VERSION, its key, and every other
 * ENCRYPTION_KEY_VNN that is set. Throws (and loads nothing) if any is invalid.
 */
function reloadKeys() {
  const current = envCurrentVersion();
  const entries = {};
  const v01 = envKey('01');
  if (v01 !== undefined) entries['01'] = v01;
  for (const name of Object.keys(process.env)) {
    const m = /^ENCRYPTION_KEY_V(\d\d)$/.exec(name);
    if (m && m[1] !== '01') {
      const hex = envValue(name);
      if (hex !== undefined) entries[m[1]] = hex;
    }
  }
  replaceKeys(entries);
  state.mode = 'env';
  state.current = current;
}

/**
 * Writes new values with `version` from now on (a key vault's newest active
 * key, see lib/vault/load.js); configureKeys() and reloadKeys() choose again.
 */
function useVersion(version) {
  state.current = checkVersion(version);
}

/** Whether the environment (in environment mode) defines a key for `version`. */
function envDefines(version) {
  return state.mode === 'env' && envKey(version) !== undefined;
}

/** Versions currently loaded, ascending; for diagnostics (no key material). */
function loadedKeyVersions() {
  return native.keyVersions();
}

module.exports = {
  checkOptions,
  currentVersion,
  loadMissing,
  configureKeys,
  reloadKeys,
  loadedKeyVersions,
  checkVersion,
  useVersion,
  envDefines,
};
