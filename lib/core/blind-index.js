'use strict';

/**
 * TEMP shim (issue 20, search-cli): the blind-index JS API of the shared
 * contract implemented with node:crypto, so the CLI can be built before
 * search-core (Rust-backed) lands. The lead drops this file at merge.
 */

const crypto = require('node:crypto');
const { codes, FieldCryptError } = require('./errors');
const { indexInput } = require('./index-input');

const SALT = Buffer.from('fieldcrypt/blind-index/v1', 'utf8');
const VERSION_RE = /^\d\d$/;
const INDEX_KEY_NOT_FOUND = 'ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND';

const state = { mode: 'env', keys: null, current: undefined };

function parseKey(version, hex) {
  if (typeof hex !== 'string' || !/^[0-9a-fA-F]{64}$/.test(hex.trim())) {
    throw new FieldCryptError(
      codes.INVALID_KEY,
      `Invalid index key for index-key version ${version}: expected 64 hex characters`,
    );
  }
  return Buffer.from(hex.trim(), 'hex');
}

function envKeys() {
  const keys = new Map();
  const plain = process.env.ENCRYPTION_INDEX_KEY && process.env.ENCRYPTION_INDEX_KEY.trim();
  if (plain) keys.set('01', parseKey('01', plain));
  for (const [name, value] of Object.entries(process.env)) {
    const m = /^ENCRYPTION_INDEX_KEY_V(\d\d)$/.exec(name);
    if (m && value && value.trim()) keys.set(m[1], parseKey(m[1], value));
  }
  return keys;
}

function load() {
  if (state.keys === null) {
    state.keys = envKeys();
    const v = process.env.ENCRYPTION_INDEX_KEY_VERSION && process.env.ENCRYPTION_INDEX_KEY_VERSION.trim();
    state.current = v || [...state.keys.keys()].sort().at(-1);
  }
  return state;
}

function configureIndexKeys(keys, options = {}) {
  const entries = new Map();
  for (const [version, hex] of Object.entries(keys || {})) {
    if (!VERSION_RE.test(version)) throw new FieldCryptError(codes.INVALID_KEY_VERSION, 'Invalid index-key version');
    entries.set(version, parseKey(version, hex));
  }
  if (entries.size === 0)
    throw new FieldCryptError(codes.INVALID_ARGUMENT, 'configureIndexKeys() needs at least one key');
  state.mode = 'configured';
  state.keys = entries;
  state.current = (options && options.current) || [...entries.keys()].sort().at(-1);
}

function reloadIndexKeys() {
  state.mode = 'env';
  state.keys = null;
  load();
}

function indexKeyVersions() {
  const s = load();
  return { current: s.current, live: [...s.keys.keys()].sort() };
}

function keyFor(version) {
  const s = load();
  const key = s.keys.get(version);
  if (!key) {
    if (version === undefined) {
      const err = new FieldCryptError(codes.KEY_NOT_FOUND, 'No index key configured: set ENCRYPTION_INDEX_KEY');
      err.code = INDEX_KEY_NOT_FOUND;
      throw err;
    }
    const err = new FieldCryptError(
      codes.KEY_NOT_FOUND,
      `Index key not found for index-key version ${version}: set ${version === '01' ? 'ENCRYPTION_INDEX_KEY or ' : ''}ENCRYPTION_INDEX_KEY_V${version}`,
    );
    err.code = INDEX_KEY_NOT_FOUND;
    throw err;
  }
  return key;
}

function checkWhere(where) {
  if (!where || typeof where.collection !== 'string' || typeof where.path !== 'string') {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, 'blindIndex() needs { collection, path }');
  }
}

function pathKey(version, { collection, path }) {
  const info = Buffer.concat([Buffer.from(collection, 'utf8'), Buffer.from([0]), Buffer.from(path, 'utf8')]);
  return Buffer.from(crypto.hkdfSync('sha256', keyFor(version), SALT, info, 32));
}

function mac(k, input) {
  if (typeof input !== 'string' && !(input instanceof Uint8Array)) {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, 'blindIndex() input must be a string or a Uint8Array');
  }
  return crypto.createHmac('sha256', k).update(input).digest('hex');
}

function blindIndex(input, where) {
  checkWhere(where);
  const version = where.version || load().current;
  return `${version}:${mac(pathKey(version, where), input)}`;
}

function blindIndexMany(inputs, where) {
  checkWhere(where);
  const version = where.version || load().current;
  const k = pathKey(version, where);
  return inputs.map((input) => `${version}:${mac(k, input)}`);
}

function blindIndexAll(input, where) {
  const { current, live } = indexKeyVersions();
  return [current, ...live.filter((v) => v !== current)].map((version) => blindIndex(input, { ...where, version }));
}

module.exports = {
  blindIndex,
  blindIndexMany,
  blindIndexAll,
  indexInput,
  configureIndexKeys,
  reloadIndexKeys,
  indexKeyVersions,
};
