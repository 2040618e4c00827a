'use strict';

/**
 * The plugin's options: validation and normalisation, and the options a
 * schema was given. Invariants: normalized options are frozen; an unknown
 * option or a wrong type throws INVALID_ARGUMENT when the plugin is applied.
 */

const { codes, FieldCryptError, describeType } = require('../../core/errors');
const { pluginEntryOf } = require('../compat');
const { OPTIONS, PLUGIN } = require('./state');

const DECRYPT_MODES = ['auto', 'explicit'];
/** What `bind` may be, as a plugin option and as a path's schema option (binding.js). */
const BIND_MODES = [false, 'collection', 'document'];
const OPTION_NAMES = [
  'fields',
  'decrypt',
  'includeDecrypted',
  'allowUnencrypted',
  'bind',
  'allowUnbound',
  'onEncrypt',
  'onDecrypt',
  'searchable',
];
/** A searchable path's normalisers (lib/core/index-input.js) and the other options of `searchable`. */
const NORMALIZERS = ['trim', 'lowercase', 'collapseWhitespace'];
const SEARCH_OPTION_NAMES = [...NORMALIZERS, 'normalize', 'unique'];

function invalidOption(message) {
  return new FieldCryptError(codes.INVALID_ARGUMENT, `fieldEncryption: ${message}`);
}

/**
 * A path's `searchable` option (`true` or `{ trim, lowercase,
 * collapseWhitespace, normalize, unique }`), validated: the frozen search
 * options, or undefined when the option is absent or false.
 */
function searchOptionsOf(raw, where) {
  if (raw === undefined || raw === false || raw === null) return undefined;
  if (raw === true) raw = {};
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw invalidOption(`'${where}': searchable must be true or an object of options, got ${describeType(raw)}`);
  }
  for (const key of Object.keys(raw)) {
    if (key === 'path') continue;
    if (!SEARCH_OPTION_NAMES.includes(key)) {
      throw invalidOption(`'${where}': unknown searchable option '${key}' (${SEARCH_OPTION_NAMES.join(', ')})`);
    }
  }
  const normalize = {};
  for (const name of NORMALIZERS) {
    if (raw[name] === undefined) continue;
    if (typeof raw[name] !== 'boolean') throw invalidOption(`'${where}': searchable.${name} must be a boolean`);
    if (raw[name]) normalize[name] = true;
  }
  if (raw.normalize !== undefined) {
    if (typeof raw.normalize !== 'function') throw invalidOption(`'${where}': searchable.normalize must be a function`);
    normalize.normalize = raw.normalize;
  }
  if (raw.unique !== undefined && typeof raw.unique !== 'boolean') {
    throw invalidOption(`'${where}': searchable.unique must be a boolean`);
  }
  return Object.freeze({ unique: raw.unique === true, normalize: Object.freeze(normalize) });
}

/** The plugin option `searchable: [path | { path, ...options }]`, validated: Map(path -> raw options). */
function normalizeSearchableOption(list) {
  if (list === undefined) return new Map();
  if (!Array.isArray(list)) {
    throw invalidOption("searchable must be an array of schema paths or { path, ...options } objects such as ['ssn']");
  }
  const out = new Map();
  for (const entry of list) {
    const path = typeof entry === 'string' ? entry : entry && typeof entry === 'object' ? entry.path : undefined;
    if (typeof path !== 'string' || path === '') {
      throw invalidOption(`searchable: each entry is a path or { path, ...options }, got ${describeType(entry)}`);
    }
    const options = typeof entry === 'string' ? true : entry;
    searchOptionsOf(options, path);
    out.set(path, options);
  }
  return out;
}

function normalizeOptions(options) {
  if (options === undefined || options === null) options = {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalidOption(`options must be an object, got ${describeType(options)}`);
  }
  for (const key of Object.keys(options)) {
    // `deduplicate` is Mongoose's own plugin option.
    if (!OPTION_NAMES.includes(key) && key !== 'deduplicate') throw invalidOption(`unknown option '${key}'`);
  }
  const {
    fields = [],
    decrypt = 'auto',
    includeDecrypted = false,
    allowUnencrypted = false,
    bind = false,
    allowUnbound = false,
    onEncrypt,
    onDecrypt,
    searchable,
  } = options;
  if (!Array.isArray(fields) || fields.some((f) => typeof f !== 'string' || f === '')) {
    throw invalidOption("fields must be an array of schema paths such as ['ssn', 'ids.idNumber']");
  }
  if (!DECRYPT_MODES.includes(decrypt)) throw invalidOption("decrypt must be 'auto' or 'explicit'");
  if (typeof includeDecrypted !== 'boolean') throw invalidOption('includeDecrypted must be a boolean');
  if (typeof allowUnencrypted !== 'boolean') throw invalidOption('allowUnencrypted must be a boolean');
  if (!BIND_MODES.includes(bind)) throw invalidOption("bind must be false, 'collection' or 'document'");
  if (typeof allowUnbound !== 'boolean') throw invalidOption('allowUnbound must be a boolean');
  for (const [name, fn] of [
    ['onEncrypt', onEncrypt],
    ['onDecrypt', onDecrypt],
  ]) {
    if (fn !== undefined && typeof fn !== 'function') throw invalidOption(`${name} must be a function`);
  }
  return Object.freeze({
    fields: Object.freeze([...fields]),
    decrypt,
    includeDecrypted,
    allowUnencrypted,
    bind,
    allowUnbound,
    onEncrypt,
    onDecrypt,
    searchable: normalizeSearchableOption(searchable),
  });
}

/**
 * The plugin options a schema was given: recorded when the plugin ran, or
 * found in the schema's plugin list (a discriminator's schema is a merged copy that
 * lists its base schema's plugins).
 */
function pluginOptionsOf(schema) {
  if (!schema || typeof schema !== 'object') return undefined;
  let options = OPTIONS.get(schema);
  if (options === undefined) {
    const entry = pluginEntryOf(schema, (fn) => typeof fn === 'function' && fn[PLUGIN] === true);
    if (!entry) return undefined;
    options = normalizeOptions(entry.opts);
    OPTIONS.set(schema, options);
  }
  return options;
}

module.exports = { BIND_MODES, invalidOption, normalizeOptions, pluginOptionsOf, searchOptionsOf };
