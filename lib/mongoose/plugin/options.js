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
  'searchable', // TEMP shim
];

function invalidOption(message) {
  return new FieldCryptError(codes.INVALID_ARGUMENT, `fieldEncryption: ${message}`);
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
    searchable = [],
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
    searchable,
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

module.exports = { BIND_MODES, invalidOption, normalizeOptions, pluginOptionsOf };
