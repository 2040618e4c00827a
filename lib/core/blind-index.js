'use strict';

/**
 * TEMPORARY SHIM (search-writes branch): the blind-index API of the issue 20
 * contract implemented with node:crypto, so the plugin's write side can be
 * built and tested before the Rust-backed module lands. The lead drops this
 * file at merge and takes search-core's; nothing but the contract's API is
 * used by the plugin.
 *
 * k_path = HKDF-SHA256(ikm = index key VV, salt = "fieldcrypt/blind-index/v1",
 *                      info = collection || 0x00 || path, L = 32)
 * value  = "VV:" + hex(HMAC-SHA256(k_path, input))
 */

const crypto = require('node:crypto');
const { codes, FieldCryptError, describeType } = require('./errors');

const SALT = Buffer.from('fieldcrypt/blind-index/v1', 'utf8');
const VERSION_RE = /^\d\d$/;
const HEX_KEY_RE = /^[0-9a-fA-F]{64}$/;
const INDEX_KEY_NOT_FOUND = 'ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND';

const state = { mode: 'env', keys: null, current: undefined, derived: new Map() };

function invalid(message) {
  return new FieldCryptError(codes.INVALID_ARGUMENT, message);
}

function checkHex(version, hex) {
  if (typeof hex !== 'string' || !HEX_KEY_RE.test(hex.trim())) {
    throw new FieldCryptError(codes.INVALID_KEY, `Index key version ${version} must be 64 hex characters`);
  }
  return Buffer.from(hex.trim(), 'hex');
}

function loadEnv() {
  const keys = new Map();
  const plain = (process.env.ENCRYPTION_INDEX_KEY || '').trim();
  if (plain) keys.set('01', checkHex('01', plain));
  for (const [name, value] of Object.entries(process.env)) {
    const m = /^ENCRYPTION_INDEX_KEY_V(\d\d)$/.exec(name);
    if (m && value && value.trim()) keys.set(m[1], checkHex(m[1], value));
  }
  const chosen = (process.env.ENCRYPTION_INDEX_KEY_VERSION || '').trim();
  state.keys = keys;
  state.current = chosen || [...keys.keys()].sort().pop();
}

function ensureKeys() {
  if (state.keys === null) loadEnv();
  return state.keys;
}

function keyOf(version) {
  const key = ensureKeys().get(version);
  if (!key) {
    const err = new FieldCryptError(
      INDEX_KEY_NOT_FOUND,
      `Index key not found for index key version ${version}: set ENCRYPTION_INDEX_KEY` +
        `${version === '01' ? '' : `_V${version}`} to 64 hex characters, or pass it to configureIndexKeys()`,
    );
    throw err;
  }
  return key;
}

function configureIndexKeys(keys, { current } = {}) {
  if (!keys || typeof keys !== 'object')
    throw invalid(`configureIndexKeys() expects an object, got ${describeType(keys)}`);
  const map = new Map();
  for (const [version, hex] of Object.entries(keys)) {
    if (!VERSION_RE.test(version)) throw new FieldCryptError(codes.INVALID_KEY_VERSION, 'Invalid index key version');
    map.set(version, checkHex(version, hex));
  }
  state.mode = 'configured';
  state.keys = map;
  state.current = current || [...map.keys()].sort().pop();
  state.derived.clear();
}

function reloadIndexKeys() {
  state.mode = 'env';
  state.keys = null;
  state.current = undefined;
  state.derived.clear();
}

function indexKeyVersions() {
  const keys = ensureKeys();
  return { current: state.current, live: [...keys.keys()].sort() };
}

function pathKey(version, collection, path) {
  const id = `${version}\u0000${collection}\u0000${path}`;
  let key = state.derived.get(id);
  if (key === undefined) {
    const info = Buffer.concat([Buffer.from(collection, 'utf8'), Buffer.from([0]), Buffer.from(path, 'utf8')]);
    key = Buffer.from(crypto.hkdfSync('sha256', keyOf(version), SALT, info, 32));
    state.derived.set(id, key);
  }
  return key;
}

function checkWhere(where) {
  if (!where || typeof where.collection !== 'string' || typeof where.path !== 'string') {
    throw invalid('blindIndex() expects { collection, path } strings');
  }
}

function mac(version, where, input) {
  let bytes;
  if (typeof input === 'string') bytes = Buffer.from(input, 'utf8');
  else if (input instanceof Uint8Array) bytes = input;
  else throw invalid(`blindIndex() expects a string or a Uint8Array, got ${describeType(input)}`);
  const hex = crypto
    .createHmac('sha256', pathKey(version, where.collection, where.path))
    .update(bytes)
    .digest('hex');
  return `${version}:${hex}`;
}

function currentVersion() {
  ensureKeys();
  if (!state.current) keyOf('01');
  return state.current;
}

function blindIndex(input, where) {
  checkWhere(where);
  return mac(where.version || currentVersion(), where, input);
}

function blindIndexMany(inputs, where) {
  checkWhere(where);
  if (!Array.isArray(inputs)) throw invalid('blindIndexMany() expects an array');
  const version = where.version || currentVersion();
  return inputs.map((input) => mac(version, where, input));
}

function blindIndexAll(input, where) {
  checkWhere(where);
  const current = currentVersion();
  const live = [...ensureKeys().keys()].sort();
  return [current, ...live.filter((v) => v !== current)].map((v) => mac(v, where, input));
}

module.exports = { blindIndex, blindIndexMany, blindIndexAll, configureIndexKeys, reloadIndexKeys, indexKeyVersions };
