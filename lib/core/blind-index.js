'use strict';

/**
 * TEMP shim (search-queries branch only; the lead replaces it with the
 * Rust-backed module of the search-core branch): the blind-index JS API of
 * the issue-20 contract, in node:crypto.
 *
 *   k_path = HKDF-SHA256(index key VV, salt "fieldcrypt/blind-index/v1",
 *                        info collection 0x00 path, 32)
 *   value  = "VV:" + hex(HMAC-SHA256(k_path, input))
 */

const crypto = require('node:crypto');
const { types } = require('node:util');
const { FieldCryptError, codes, describeType } = require('./errors');

const INDEX_KEY_NOT_FOUND = 'ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND';
const SALT = Buffer.from('fieldcrypt/blind-index/v1', 'utf8');
const VERSION_RE = /^\d\d$/;

const state = { mode: 'env', keys: null, current: undefined };

function parseKey(version, hex) {
  if (typeof hex !== 'string') {
    throw new FieldCryptError(
      codes.INVALID_KEY,
      `Invalid index key for version ${version}: expected 64 hex characters`,
    );
  }
  const text = hex.trim();
  if (text.length !== 64) {
    throw new FieldCryptError(
      codes.INVALID_KEY_LENGTH,
      `Invalid index key length for version ${version}: expected 64 hex characters`,
    );
  }
  if (!/^[0-9a-fA-F]{64}$/.test(text)) {
    throw new FieldCryptError(codes.INVALID_KEY, `Invalid index key for version ${version}: not hex`);
  }
  return Buffer.from(text, 'hex');
}

function envKeys() {
  const out = new Map();
  const plain = (process.env.ENCRYPTION_INDEX_KEY || '').trim();
  if (plain) out.set('01', parseKey('01', plain));
  for (const [name, value] of Object.entries(process.env)) {
    const m = /^ENCRYPTION_INDEX_KEY_V(\d\d)$/.exec(name);
    if (m && value && value.trim()) out.set(m[1], parseKey(m[1], value));
  }
  return out;
}

function loaded() {
  if (state.keys === null) {
    state.keys = envKeys();
    const wanted = (process.env.ENCRYPTION_INDEX_KEY_VERSION || '').trim();
    state.current = wanted || [...state.keys.keys()].sort().at(-1);
  }
  return state;
}

function configureIndexKeys(keys, options = {}) {
  if (keys === null || typeof keys !== 'object' || Array.isArray(keys) || Object.keys(keys).length === 0) {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, 'configureIndexKeys() expects { version: hexKey }');
  }
  const map = new Map();
  for (const [version, hex] of Object.entries(keys)) {
    if (!VERSION_RE.test(version)) throw new FieldCryptError(codes.INVALID_KEY_VERSION, 'Invalid index key version');
    map.set(version, parseKey(version, hex));
  }
  const current = options.current === undefined ? [...map.keys()].sort().at(-1) : options.current;
  if (!map.has(current)) {
    throw new FieldCryptError(INDEX_KEY_NOT_FOUND, `Index key not found for version ${current}`);
  }
  state.mode = 'configured';
  state.keys = map;
  state.current = current;
}

function reloadIndexKeys() {
  state.mode = 'env';
  state.keys = null;
  state.current = undefined;
  loaded();
}

function indexKeyVersions() {
  const { keys, current } = loaded();
  return { current, live: [...keys.keys()].sort() };
}

function keyOf(version) {
  const key = loaded().keys.get(version);
  if (key === undefined) {
    const name =
      version === '01' ? 'ENCRYPTION_INDEX_KEY (or ENCRYPTION_INDEX_KEY_V01)' : `ENCRYPTION_INDEX_KEY_V${version}`;
    throw new FieldCryptError(
      INDEX_KEY_NOT_FOUND,
      `Index key not found for index key version ${version || '(none)'}: set ${name}`,
    );
  }
  return key;
}

function checkTarget(options, fn) {
  if (!options || typeof options.collection !== 'string' || typeof options.path !== 'string') {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `${fn}() expects { collection, path }`);
  }
}

function mac(input, { collection, path }, version) {
  if (typeof input !== 'string' && !types.isUint8Array(input)) {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `blind index input must be a string or bytes, got ${describeType(input)}`,
    );
  }
  const info = Buffer.concat([Buffer.from(collection, 'utf8'), Buffer.from([0]), Buffer.from(path, 'utf8')]);
  const kPath = Buffer.from(crypto.hkdfSync('sha256', keyOf(version), SALT, info, 32));
  const h = crypto.createHmac('sha256', kPath).update(typeof input === 'string' ? Buffer.from(input, 'utf8') : input);
  return `${version}:${h.digest('hex')}`;
}

function blindIndex(input, options) {
  checkTarget(options, 'blindIndex');
  return mac(input, options, options.version || loaded().current);
}

function blindIndexMany(inputs, options) {
  checkTarget(options, 'blindIndexMany');
  if (!Array.isArray(inputs)) throw new FieldCryptError(codes.INVALID_ARGUMENT, 'blindIndexMany() expects an array');
  const version = options.version || loaded().current;
  return inputs.map((input) => mac(input, options, version));
}

function blindIndexAll(input, options) {
  checkTarget(options, 'blindIndexAll');
  const { current, live } = indexKeyVersions();
  if (live.length === 0) keyOf(current);
  return [current, ...live.filter((v) => v !== current)].map((version) => mac(input, options, version));
}

module.exports = { configureIndexKeys, reloadIndexKeys, indexKeyVersions, blindIndex, blindIndexMany, blindIndexAll };
