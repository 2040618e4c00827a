'use strict';

/**
 * What to work on: [{ collection, fields, bindings }], from --collection/--field
 * (and --bind) or from a config file (fieldcrypt.config.js):
 *
 *   module.exports = {
 *     uri: process.env.MONGODB_URI,   // optional; --uri and MONGODB_URI win
 *     db: 'app',                      // optional; --db wins
 *     targets: [
 *       { collection: 'learners', fields: ['ssn', 'personExtended.identifications.idNumber'] },
 *       { collection: 'patients', fields: ['ssn'], bind: 'document' },   // or { ssn: 'document' }
 *       { model: require('./models/invoice') },   // a Mongoose model using fieldEncryption
 *       { collection: 'people', fields: ['ssn', 'email'],  // blind indexes (reindex, status)
 *         searchable: ['ssn', { path: 'email', trim: true, lowercase: true }] },
 *     ],
 *   };
 *
 * The config may also export a function (sync or async) returning that object.
 * A target naming a Mongoose model takes its collection from the model and its
 * fields from `encryptedPaths(model)` of the fieldEncryption plugin, and the
 * fields' context binding from its schema (`bind`); it may also list `fields`.
 * `bindings` maps each bound field to 'collection' or 'document'
 * (lib/cli/binding.js). `searchable` lists the fields with a blind index
 * (docs/search.md) as { path, kind, normalize }: from `searchablePaths(model)`
 * for a model, from `searchable` for a collection target, every --field with
 * --searchable (Unicode NFC only); kind 'auto' means the stored shape decides
 * (an array: one index value per element; otherwise one for the whole value).
 */

const fs = require('node:fs');
const path = require('node:path');
const { UsageError, BIND_MODES } = require('./args');
const plugin = require('../mongoose/plugin');

/** Throws a UsageError unless `field` is a dotted path the CLI can work on. */
function checkField(field, where) {
  if (typeof field !== 'string' || field === '')
    throw new UsageError(`${where}: a field must be a non-empty dotted path`);
  for (const part of field.split('.')) {
    if (part === '') throw new UsageError(`${where}: field "${field}" has an empty path segment`);
    if (part.startsWith('$') && part !== '$*')
      throw new UsageError(`${where}: field "${field}": "${part}" is not a field name ($* means every value of a map)`);
  }
  if (field === '_id' || field.startsWith('_id.')) throw new UsageError(`${where}: _id cannot be encrypted`);
}

/** Removes duplicates; throws if one field is a prefix of another (one $set cannot write both). */
function normalizeFields(fields, where) {
  const unique = [...new Set(fields)];
  for (const f of unique) checkField(f, where);
  for (const a of unique) {
    for (const b of unique) {
      if (a !== b && b.startsWith(`${a}.`))
        throw new UsageError(`${where}: fields "${a}" and "${b}" overlap; list only one of them`);
    }
  }
  if (unique.length === 0) throw new UsageError(`${where}: no fields to work on (use --field PATH, repeatable)`);
  return unique;
}

/** `bind` of a config target or --bind: a mode for every field, or a mode per field. */
function bindingsFrom(bind, fields, where) {
  if (bind === undefined || bind === null || bind === false) return {};
  const modes = typeof bind === 'string' ? Object.fromEntries(fields.map((f) => [f, bind])) : bind;
  if (typeof modes !== 'object' || Array.isArray(modes)) {
    throw new UsageError(`${where}: "bind" must be ${BIND_MODES.join(' or ')}, or an object of them by field`);
  }
  for (const [field, mode] of Object.entries(modes)) {
    if (!fields.includes(field))
      throw new UsageError(`${where}: "bind" names "${field}", which is not among the fields`);
    if (!BIND_MODES.includes(mode)) {
      throw new UsageError(`${where}: field "${field}": bind must be ${BIND_MODES.join(' or ')}, got "${mode}"`);
    }
  }
  return { ...modes };
}

/** The bound paths of a model's schema (the fieldEncryption plugin's `bind` options). */
function modelBindings(model, fields) {
  if (typeof plugin.pathBindings !== 'function') return {};
  const out = {};
  for (const { path: field, bind } of plugin.pathBindings(model).paths) {
    if (fields.includes(field)) out[field] = bind;
  }
  return out;
}

const NORMALISERS = ['trim', 'lowercase', 'collapseWhitespace', 'normalize'];

/** A searchable path's normalisers for indexInput(), checked. */
function normaliserOptions(entry, where) {
  const out = {};
  for (const [key, value] of Object.entries(entry)) {
    if (key === 'path' || key === 'unique') continue;
    if (!NORMALISERS.includes(key)) throw new UsageError(`${where}: unknown searchable option "${key}"`);
    if (key === 'normalize' ? typeof value !== 'function' : typeof value !== 'boolean')
      throw new UsageError(
        `${where}: searchable option "${key}" must be a ${key === 'normalize' ? 'function' : 'boolean'}`,
      );
    out[key] = value;
  }
  return out;
}

/** `searchable` of a config target: paths, or { path, ...normalisers }; each among the fields. */
function searchableFrom(list, fields, where) {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new UsageError(`${where}: "searchable" must be an array of paths or { path, ... }`);
  return list.map((entry) => {
    const spec = typeof entry === 'string' ? { path: entry } : entry;
    if (spec === null || typeof spec !== 'object' || typeof spec.path !== 'string')
      throw new UsageError(`${where}: a "searchable" entry must be a path or { path, ... }`);
    if (!fields.includes(spec.path))
      throw new UsageError(`${where}: searchable "${spec.path}" is not among the fields`);
    return checkSearchable({ path: spec.path, kind: 'auto', normalize: normaliserOptions(spec, where) }, where);
  });
}

/** Throws for a searchable path the sibling layout cannot hold (a Map's values). */
function checkSearchable(spec, where) {
  if (spec.path.split('.').includes('$*'))
    throw new UsageError(`${where}: "${spec.path}": the values of a map cannot have a blind index`);
  return spec;
}

function modelSearchable(model, fields, where) {
  if (typeof plugin.searchablePaths !== 'function') return [];
  return plugin
    .searchablePaths(model)
    .filter((s) => fields.includes(s.path))
    .map((s) => checkSearchable({ path: s.path, kind: s.kind, normalize: s.normalize || {} }, where));
}

function modelTarget(model, explicitFields, where) {
  const collection = model.collection && model.collection.collectionName;
  if (typeof collection !== 'string') throw new UsageError(`${where}: "model" must be a Mongoose model`);
  const fields = normalizeFields(explicitFields || plugin.encryptedPaths(model), `${where} (${collection})`);
  return {
    collection,
    fields,
    bindings: modelBindings(model, fields),
    searchable: modelSearchable(model, fields, where),
  };
}

/** The target of --collection, --field, --bind and --searchable. */
function flagTarget(opts) {
  const fields = normalizeFields(opts.fields, '--field');
  const searchable = opts.searchable
    ? fields.map((path) => checkSearchable({ path, kind: 'auto', normalize: {} }, '--searchable'))
    : [];
  return { collection: opts.collection, fields, bindings: bindingsFrom(opts.bind, fields, '--bind'), searchable };
}

/** Config files loaded, by path: a config that exports a function is called once per process. */
const configs = new Map();

async function loadConfig(file) {
  const resolved = path.resolve(file);
  if (!configs.has(resolved)) configs.set(resolved, readConfig(file, resolved));
  return configs.get(resolved);
}

async function readConfig(file, resolved) {
  if (!fs.existsSync(resolved)) throw new UsageError(`--config: ${file} does not exist`);
  let config = require(resolved);
  if (typeof config === 'function') config = await config();
  if (config === null || typeof config !== 'object')
    throw new UsageError(`--config: ${file} must export an object (or a function returning one)`);
  return config;
}

/** The database URI: --uri, then MONGODB_URI, then the config's. */
function configUri(opts, config) {
  const uri = opts.uri || process.env.MONGODB_URI || config.uri;
  if (!uri) throw new UsageError('no database: pass --uri, set MONGODB_URI, or set uri in the config');
  return uri;
}

/**
 * Resolves { uri, db, targets } from the options and, when given, the config
 * file. Flags win over the config; --collection filters the config's targets.
 */
async function resolveTargets(opts) {
  let config = {};
  let targets;
  if (opts.bind && !opts.fields.length) throw new UsageError('--bind goes with the --field paths it binds');
  if (opts.searchable && !opts.fields.length)
    throw new UsageError('--searchable goes with the --field paths that have a blind index');
  if (opts.config) {
    config = await loadConfig(opts.config);
    const list = config.targets || [];
    if (!Array.isArray(list)) throw new UsageError('--config: "targets" must be an array');
    targets = list.map((t, i) => {
      const where = `--config targets[${i}]`;
      if (t === null || typeof t !== 'object') throw new UsageError(`${where} must be an object`);
      if (t.model) return modelTarget(t.model, t.fields, where);
      if (typeof t.collection !== 'string' || !t.collection)
        throw new UsageError(`${where} needs "collection" (or "model")`);
      const searchPaths = Array.isArray(t.searchable) ? t.searchable.map((e) => (e && e.path) || e) : [];
      const fields = normalizeFields(t.fields || searchPaths, `${where} (${t.collection})`);
      return {
        collection: t.collection,
        fields,
        bindings: bindingsFrom(t.bind, fields, where),
        searchable: searchableFrom(t.searchable, fields, where),
      };
    });
    if (opts.fields.length) {
      if (!opts.collection) throw new UsageError('--field with --config needs --collection');
      targets = targets.filter((t) => t.collection !== opts.collection);
      targets.push(flagTarget(opts));
    } else if (opts.collection) {
      targets = targets.filter((t) => t.collection === opts.collection);
      if (!targets.length) throw new UsageError(`--collection ${opts.collection}: not among the config's targets`);
    }
    if (!targets.length) throw new UsageError('--config: no targets');
  } else {
    if (!opts.collection) throw new UsageError('name a --collection and its --field paths, or a --config file');
    targets = [flagTarget(opts)];
  }
  const uri = configUri(opts, config);
  const { dbNameFromUri } = require('./driver');
  const db = opts.db || config.db || dbNameFromUri(uri);
  if (!db) throw new UsageError('no database name: pass --db, or name it in the URI (mongodb://host/NAME)');
  return { uri, db, targets };
}

module.exports = { resolveTargets, normalizeFields, loadConfig, configUri };
