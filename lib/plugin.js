'use strict';

/**
 * fieldEncryption: a Mongoose plugin that encrypts chosen paths on every
 * write path Mongoose has and decrypts them on every read path.
 *
 *   schema.plugin(fieldEncryption, { fields: ['ssn', 'patientRecord.billing'] });
 *   // or, per path: new Schema({ ssn: { type: String, encrypted: true } })
 *
 * How it is put together (each part is a section below):
 *
 * 1. The path index. From the schema (recursing into single nested
 *    subdocuments, document arrays, Maps and discriminators) the plugin knows
 *    the encrypted leaves ("raw" dotted paths: `ids.idNumber` for every
 *    element of `ids`, `tags` for every element of an array of primitives,
 *    `secrets.$*` for every value of a Map) and the containers above them.
 * 2. Schema types that hold ciphertext. Every encrypted path stores a
 *    `VV:IV:TAG:CT` string whatever its declared type, so a Number path holds
 *    a string in the database (and, between encryption and the write, in the
 *    document). Rather than re-declaring those paths as String (which would
 *    lose casting and validation of the plaintext), each encrypted SchemaType
 *    instance lets a well-formed ciphertext string through `cast`,
 *    `applySetters` and `castForQuery` unchanged, and validates the
 *    decrypted value. That is the same on Mongoose 8 and 9 (public
 *    SchemaType methods, patched per instance; the schema stays as
 *    declared, and Mongoose's own casting of the plaintext still applies).
 * 3. Writes. `save`/`create`/`insertOne`/`bulkSave`: a pre('save') hook
 *    replaces each plaintext in the document's own storage with its
 *    ciphertext (no setter, no change tracking), so whatever Mongoose then
 *    sends (the whole document or its delta) is ciphertext; post('save')
 *    puts the plaintext back. A value assigned while the write is under way
 *    (a later hook) is encrypted as it is assigned.
 *    `insertMany`: the inputs become documents (defaults applied), encrypted
 *    the same way. `bulkWrite`: inserted and replacement documents are built,
 *    encrypted and handed on as plain objects; update ops are rewritten like
 *    query updates. Query updates (`updateOne`, `updateMany`,
 *    `findOneAndUpdate`, `findByIdAndUpdate`, `doc.updateOne()`,
 *    `replaceOne`, `findOneAndReplace`, upserts): the update is rewritten
 *    key by key before Mongoose casts it; operators that cannot work on
 *    ciphertext throw before anything is sent.
 * 4. Filters. A filter that compares an encrypted path with anything but
 *    null or a ciphertext would send the plaintext to the server and never
 *    match (encryption is randomized); it is refused. An upsert would also
 *    copy such an equality into the inserted document.
 * 5. Reads. pre('init') decrypts the raw document before Mongoose hydrates
 *    it (find, findOne, findById, findOneAndUpdate results, cursors,
 *    populate, Model.hydrate); lean queries decrypt through Query#transform;
 *    `decryptDocument(Model, raw)` for aggregate and driver results.
 * 6. Output. toJSON()/toObject() of documents and subdocuments omit
 *    encrypted paths unless asked for them.
 *
 * The hooks are registered in fieldEncryption() at the end (named functions,
 * one per operation).
 *
 * Values are encoded by lib/core/codec.js: strings exactly as the foundation's
 * encrypt(), other types as BSON inside the same envelope.
 */

const { isEncrypted } = require('./core');
const { encodeValue, decodeValue, fingerprint, sameFingerprint, encryptFingerprint } = require('./core/codec');
const { forEachAtPath, splitPath } = require('./paths');
const { codes, FieldCryptError, describeType } = require('./core/errors');
const { mongooseHook, named } = require('./mongoose/compat');

// ---------------------------------------------------------------------------
// Options

const DECRYPT_MODES = ['auto', 'explicit'];
const OPTION_NAMES = ['fields', 'decrypt', 'includeDecrypted', 'allowUnencrypted', 'onEncrypt', 'onDecrypt'];

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
  const { fields = [], decrypt = 'auto', includeDecrypted = false, allowUnencrypted = false, onEncrypt, onDecrypt } = options;
  if (!Array.isArray(fields) || fields.some((f) => typeof f !== 'string' || f === '')) {
    throw invalidOption("fields must be an array of schema paths such as ['ssn', 'ids.idNumber']");
  }
  if (!DECRYPT_MODES.includes(decrypt)) throw invalidOption("decrypt must be 'auto' or 'explicit'");
  if (typeof includeDecrypted !== 'boolean') throw invalidOption('includeDecrypted must be a boolean');
  if (typeof allowUnencrypted !== 'boolean') throw invalidOption('allowUnencrypted must be a boolean');
  for (const [name, fn] of [['onEncrypt', onEncrypt], ['onDecrypt', onDecrypt]]) {
    if (fn !== undefined && typeof fn !== 'function') throw invalidOption(`${name} must be a function`);
  }
  return Object.freeze({ fields: Object.freeze([...fields]), decrypt, includeDecrypted, allowUnencrypted, onEncrypt, onDecrypt });
}

const OPTIONS = new WeakMap(); // schema -> normalized plugin options

/**
 * The plugin options a schema was given: recorded when the plugin ran, or
 * found in `schema.plugins` (a discriminator's schema is a merged copy that
 * lists its base schema's plugins).
 */
function pluginOptionsOf(schema) {
  if (!schema || typeof schema !== 'object') return undefined;
  let options = OPTIONS.get(schema);
  if (options === undefined) {
    const entry = Array.isArray(schema.plugins) && schema.plugins.find((p) => p.fn === fieldEncryption);
    if (!entry) return undefined;
    options = normalizeOptions(entry.opts);
    OPTIONS.set(schema, options);
  }
  return options;
}

// ---------------------------------------------------------------------------
// 1. The path index

/** Paths never encrypted: Mongoose needs them as they are. */
function isProtectedPath(schema, relativePath) {
  const last = relativePath.slice(relativePath.lastIndexOf('.') + 1);
  return (
    last === '_id' ||
    relativePath === schema.options.versionKey ||
    relativePath === schema.options.discriminatorKey
  );
}

/** The type of an array's elements: `embeddedSchemaType` on Mongoose 9, `caster` on 8. */
function elementTypeOf(schemaType) {
  return schemaType.embeddedSchemaType || schemaType.$embeddedSchemaType || schemaType.caster;
}

/** The constructor of a subdocument path's documents: `Constructor` (9), `casterConstructor`/`caster` (8). */
function subdocConstructorOf(schemaType) {
  return schemaType.Constructor || schemaType.casterConstructor || schemaType.caster;
}

const INDEXES = new WeakMap(); // schema -> index

/**
 * The encrypted paths of `schema`:
 *   leaves:     raw path -> { path, schemaType, element, buffer }
 *   containers: raw path -> { path, kind: 'nested'|'single'|'docarray'|'map', schemaType }
 *               (every path above a leaf)
 *   arrays:     paths whose value is an array (document arrays, arrays of primitives)
 *   maps:       paths whose value is a Map
 *   under:      container path -> the leaves below it
 */
function indexOf(schema) {
  let index = INDEXES.get(schema);
  if (index === undefined) {
    index = buildIndex(schema);
    INDEXES.set(schema, index);
  }
  return index;
}

function buildIndex(schema) {
  const leaves = new Map();
  const kinds = new Map(); // path -> container kind or 'array'
  const types = new Map(); // container path -> SchemaType
  const listed = new Set(); // which `fields` entries matched something
  const aliases = new Map(); // raw alias path -> raw path (Mongoose `alias` options)

  function scopeMatches(full, scopes) {
    for (const scope of scopes) {
      if (scope.base && !full.startsWith(scope.base)) continue;
      const parts = splitPath(full.slice(scope.base.length));
      let prefix = '';
      for (const part of parts) {
        prefix = prefix ? `${prefix}.${part}` : part;
        if (scope.fields.has(prefix)) {
          listed.add(scope.base + prefix);
          return true;
        }
      }
    }
    return false;
  }

  function visitSchema(s, prefix, scopes, inherited) {
    const own = pluginOptionsOf(s);
    if (own && own.fields.length) scopes = [...scopes, { base: prefix, fields: new Set(own.fields) }];
    for (const [alias, real] of Object.entries(s.aliases || {})) aliases.set(prefix + alias, prefix + real);
    s.eachPath((path, schemaType) => {
      if (path.includes('$*')) return; // a Map's value type: reached from the Map path
      visitType(s, schemaType, prefix, path, scopes, inherited);
    });
  }

  function visitType(owner, schemaType, prefix, relative, scopes, inherited) {
    const full = prefix + relative;
    const explicit = schemaType.options && schemaType.options.encrypted === true;
    const marked = inherited || explicit || scopeMatches(full, scopes);
    if (isProtectedPath(owner, relative)) {
      if (explicit || (!inherited && marked)) {
        throw invalidOption(`'${full}' cannot be encrypted: Mongoose needs _id, the version key and the discriminator key as they are`);
      }
      return;
    }
    if (schemaType.$isSingleNested) {
      kinds.set(full, 'single');
      types.set(full, schemaType);
      visitSchema(schemaType.schema, `${full}.`, scopes, marked);
    } else if (schemaType.$isMongooseDocumentArray) {
      kinds.set(full, 'docarray');
      types.set(full, schemaType);
      visitSchema(schemaType.schema, `${full}.`, scopes, marked);
    } else if (schemaType.$isSchemaMap) {
      kinds.set(full, 'map');
      types.set(full, schemaType);
      const valueType = schemaType.$__schemaType;
      if (valueType) visitType(owner, valueType, `${full}.`, '$*', scopes, marked);
    } else if (schemaType.$isMongooseArray) {
      kinds.set(full, 'array');
      const elementType = elementTypeOf(schemaType);
      const elementMarked = elementType && elementType.options && elementType.options.encrypted === true;
      if (marked || elementMarked) addLeaf(full, elementType || schemaType, true);
    } else if (marked) {
      addLeaf(full, schemaType, false);
    }
  }

  // `element`: the leaf is an array whose elements are encrypted one by one
  // (an element that is itself an array, in an array of arrays, is one value,
  // as lib/paths.js visits it); `schemaType` is then the element type.
  function addLeaf(path, schemaType, element) {
    leaves.set(path, { path, schemaType, element, buffer: schemaType.instance === 'Buffer' });
  }

  visitSchema(schema, '', [], false);

  const own = pluginOptionsOf(schema);
  if (own) {
    for (const field of own.fields) {
      const normalized = field.endsWith('.$*') ? field.slice(0, -3) : field;
      if (!listed.has(field) && !listed.has(normalized)) {
        throw invalidOption(`fields: '${field}' is not a path of the schema (apply the plugin after defining the paths)`);
      }
    }
  }
  return finishIndex(schema, leaves, kinds, types, aliases);
}

function finishIndex(schema, leaves, kinds, types, aliases) {
  const containers = new Map();
  const under = new Map();
  for (const leaf of leaves.values()) {
    const parts = splitPath(leaf.path);
    let prefix = '';
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = prefix ? `${prefix}.${parts[i]}` : parts[i];
      if (!containers.has(prefix)) {
        containers.set(prefix, { path: prefix, kind: kinds.get(prefix) || 'nested', schemaType: types.get(prefix) });
        under.set(prefix, []);
      }
      under.get(prefix).push(leaf);
    }
  }
  const arrays = new Set();
  const maps = new Set();
  for (const [path, kind] of kinds) {
    if (!containers.has(path) && !leaves.has(path)) continue;
    if (kind === 'docarray' || kind === 'array') arrays.add(path);
    if (kind === 'map') maps.add(path);
  }
  return { schema, leaves, leafList: [...leaves.values()], containers, under, arrays, maps, aliases };
}

/** The union of several indexes (a base model and its discriminators). */
function unionIndex(indexes) {
  if (indexes.length === 1) return indexes[0];
  const leaves = new Map();
  const containers = new Map();
  const arrays = new Set();
  const maps = new Set();
  const aliases = new Map();
  for (const index of indexes) {
    for (const [k, v] of index.leaves) if (!leaves.has(k)) leaves.set(k, v);
    for (const [k, v] of index.containers) if (!containers.has(k)) containers.set(k, v);
    for (const p of index.arrays) arrays.add(p);
    for (const p of index.maps) maps.add(p);
    for (const [k, v] of index.aliases) if (!aliases.has(k)) aliases.set(k, v);
  }
  const under = new Map();
  for (const path of containers.keys()) {
    under.set(path, [...leaves.values()].filter((leaf) => leaf.path.startsWith(`${path}.`)));
  }
  return { schema: indexes[0].schema, leaves, leafList: [...leaves.values()], containers, under, arrays, maps, aliases };
}

function discriminatorsOf(model) {
  return model && model.discriminators ? Object.values(model.discriminators) : [];
}

/** The model a raw document belongs to: a discriminator when its key says so (as Mongoose decides). */
function modelForObject(model, object) {
  const key = model.schema.options.discriminatorKey;
  if (object && typeof object === 'object' && Object.hasOwn(object, key)) {
    const value = object[key];
    for (const d of discriminatorsOf(model)) {
      if (d.modelName === value || (d.schema.discriminatorMapping && d.schema.discriminatorMapping.value === value)) return d;
    }
  }
  return model;
}

const UNIONS = new WeakMap(); // model -> { count, index }

/**
 * The paths an update or filter on `model` may touch: the model's own, or,
 * on a base model with discriminators and no discriminator key in the filter,
 * the union of all of them (fail closed: a path encrypted in any
 * discriminator is treated as encrypted).
 */
function queryIndex(model, filter) {
  const chosen = modelForObject(model, filter);
  if (chosen !== model) return indexOf(chosen.schema);
  const discriminators = discriminatorsOf(model);
  if (discriminators.length === 0) return indexOf(model.schema);
  const cached = UNIONS.get(model);
  if (cached && cached.count === discriminators.length) return cached.index;
  const index = unionIndex([indexOf(model.schema), ...discriminators.map((d) => indexOf(d.schema))]);
  UNIONS.set(model, { count: discriminators.length, index });
  return index;
}

/**
 * The raw dotted paths the plugin encrypts in a schema or model (through
 * arrays; every value of a Map as `$*`), including a model's discriminators.
 */
function encryptedPaths(schemaOrModel) {
  const isModel = typeof schemaOrModel === 'function' && schemaOrModel.schema;
  const schema = isModel ? schemaOrModel.schema : schemaOrModel;
  if (!schema || typeof schema.eachPath !== 'function') {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `encryptedPaths() expects a Mongoose schema or model, got ${describeType(schemaOrModel)}`);
  }
  const paths = new Set(indexOf(schema).leaves.keys());
  const more = isModel ? discriminatorsOf(schemaOrModel).map((d) => d.schema) : Object.values(schema.discriminators || {});
  for (const s of more) for (const p of indexOf(s).leaves.keys()) paths.add(p);
  return [...paths];
}

// ---------------------------------------------------------------------------
// 2. Schema types that hold ciphertext

const PATCHED = Symbol('fieldcrypt.ciphertextAware');

/**
 * Lets `schemaType` hold a ciphertext string: `cast`, `applySetters` and
 * `castForQuery` pass a well-formed `VV:IV:TAG:CT` string through unchanged (everything else is
 * cast as declared), and validators see the decrypted value. Validation of
 * ciphertext happens where Mongoose validates after the plugin encrypted:
 * insertMany, bulkWrite inserts, update validators (`runValidators`).
 */
function acceptCiphertext(schemaType, getBson) {
  if (schemaType[PATCHED]) return;
  const { cast, applySetters, castForQuery, doValidate, doValidateSync } = schemaType;
  const buffer = schemaType.instance === 'Buffer';
  const plain = (value) => decodeValue(value, getBson(), { buffer });
  Object.defineProperty(schemaType, PATCHED, { value: true });
  schemaType.cast = function castKeepingCiphertext(value, scope, ...rest) {
    return isEncrypted(value) ? value : sealDuringWrite(this, cast.call(this, value, scope, ...rest), scope);
  };
  schemaType.applySetters = function applySettersKeepingCiphertext(value, scope, ...rest) {
    return isEncrypted(value) ? value : sealDuringWrite(this, applySetters.call(this, value, scope, ...rest), scope);
  };
  // Some types post-process what applySetters returns (Buffer calls toObject()).
  schemaType.castForQuery = function castForQueryKeepingCiphertext($conditional, value, ...rest) {
    if (($conditional === null || $conditional === undefined) && isEncrypted(value)) return value;
    return castForQuery.call(this, $conditional, value, ...rest);
  };
  // Mongoose 8: doValidate(value, callback, scope, options); 9: async doValidate(value, scope, options).
  schemaType.doValidate = function doValidateDecrypted(value, ...rest) {
    if (!isEncrypted(value)) return doValidate.call(this, value, ...rest);
    let decrypted;
    try {
      decrypted = plain(value);
    } catch (err) {
      if (typeof rest[0] === 'function') return rest[0](err);
      return Promise.reject(err);
    }
    return doValidate.call(this, decrypted, ...rest);
  };
  if (typeof doValidateSync === 'function') {
    schemaType.doValidateSync = function doValidateSyncDecrypted(value, ...rest) {
      return doValidateSync.call(this, isEncrypted(value) ? plain(value) : value, ...rest);
    };
  }
}

const WRITING = new WeakMap(); // document -> { ctx, late: Map(ciphertext -> plaintext) } while it is being written
const LEAF_PATHS = new WeakMap(); // SchemaType -> raw path (for audit records)

/**
 * A value assigned to an encrypted path of a document while the plugin is
 * writing it (after the plugin's pre('save') hook: another pre('save')
 * hook registered after the plugin, a pre('validate') hook during
 * insertMany) is encrypted as it is assigned. Hooks run in registration
 * order and the plugin cannot make its own hook the last one, so this keeps
 * such a late plaintext from being stored in clear; settleLive() puts the
 * plaintext back after the write.
 */
function sealDuringWrite(schemaType, value, scope) {
  if (value === null || value === undefined || isEncrypted(value) || !isDocument(scope)) return value;
  const root = scope.$isSubdocument && typeof scope.ownerDocument === 'function' ? scope.ownerDocument() : scope;
  const state = WRITING.get(root);
  if (!state) return value;
  const stored = encodeValue(value, state.ctx.bson);
  audit(state.ctx, 'onEncrypt', LEAF_PATHS.get(schemaType) || schemaType.path, stored);
  state.late.set(stored, value);
  return stored;
}

const PREPARED = new WeakSet(); // indexes whose encrypted types are patched

/** Patches the encrypted SchemaTypes of an index (once); `getBson` is called when a validator needs to decrypt. */
function prepareSchema(index, getBson) {
  if (PREPARED.has(index)) return;
  for (const leaf of index.leafList) {
    acceptCiphertext(leaf.schemaType, getBson);
    if (!LEAF_PATHS.has(leaf.schemaType)) LEAF_PATHS.set(leaf.schemaType, leaf.path);
  }
  registerSubdocumentLeaves(index);
  PREPARED.add(index);
}

// ---------------------------------------------------------------------------
// Encrypting and decrypting one value

function bsonOf(schema, model) {
  const base = (model && model.base) || (schema && schema.base);
  const bson = base && base.mongo && base.mongo.BSON;
  if (!bson) {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, 'fieldEncryption: cannot find the BSON library of the Mongoose instance this schema belongs to');
  }
  return bson;
}

/**
 * Everything a hook needs: the plugin options, the model (for messages and
 * audit records), BSON, the document id when one is known, and the index.
 */
function contextFor(options, model, schema, documentId, index) {
  const bson = bsonOf(schema, model);
  const idx = index || indexOf(schema);
  prepareSchema(idx, () => bson);
  return { options, modelName: (model && model.modelName) || undefined, bson, documentId, index: idx };
}

function audit(ctx, hook, path, stored) {
  const fn = ctx.options[hook];
  if (fn) fn({ modelName: ctx.modelName, path, documentId: ctx.documentId, keyVersion: stored.slice(0, 2) });
}

function where(ctx, path) {
  return ctx.modelName ? `${ctx.modelName}.${path}` : path;
}

function unsupportedOperator(ctx, operator, path, why) {
  return new FieldCryptError(
    codes.UNSUPPORTED_OPERATOR,
    `${operator} on ${where(ctx, path)}: ${why}. Nothing was sent to the database.`,
    { modelName: ctx.modelName, path, operator },
  );
}

function unsupportedQuery(ctx, path) {
  return new FieldCryptError(
    codes.UNSUPPORTED_QUERY,
    `The filter compares ${where(ctx, path)}, an encrypted path, with a value other than null or a stored ciphertext: ` +
      'encryption is randomized, so it could never match, and the value would be sent in clear. ' +
      'Filter on a separate keyed hash (HMAC) of the value instead. Nothing was sent to the database.',
    { modelName: ctx.modelName, path },
  );
}

/**
 * Encrypts one plaintext value of `leaf`. null/undefined stay as they are;
 * a value already in the stored format is kept (ciphertext copied from
 * elsewhere, or encrypted earlier in the same operation).
 *
 * `raw: true` says the value comes straight from the application (an update
 * or a replacement Mongoose has not cast yet): it goes through the path's
 * setters and cast first, as Mongoose would do while casting, so `'42'` on a
 * Number path is stored, and comes back, as the number 42, and `lowercase`
 * applies to the plaintext. Values Mongoose already cast (documents,
 * subdocuments it built) are not cast again, so setters run once.
 */
function encryptLeaf(ctx, leaf, value, raw) {
  if (value === null || value === undefined || isEncrypted(value)) return value;
  let plain = value;
  if (raw) {
    try {
      plain = leaf.schemaType.applySetters(value, ctx.scope === undefined ? null : ctx.scope);
    } catch {
      throw new FieldCryptError(
        codes.UNSUPPORTED_TYPE,
        `${where(ctx, leaf.path)}: the value (${describeType(value)}) cannot be cast to ${leaf.schemaType.instance}. Nothing was sent to the database.`,
        { modelName: ctx.modelName, path: leaf.path },
      );
    }
    if (plain === null || plain === undefined || isEncrypted(plain)) return plain;
  }
  const stored = encodeValue(plain, ctx.bson);
  audit(ctx, 'onEncrypt', leaf.path, stored);
  return stored;
}

/**
 * Decrypts one stored value of `leaf`. null, undefined and '' are returned
 * as they are ('' is what the foundation's helpers left for empty values).
 * Anything else that is not a ciphertext is plaintext stored before the
 * path was encrypted: an error in strict mode, returned as it is with
 * `allowUnencrypted`. With `prints`, records the value's fingerprint.
 */
function decryptLeaf(ctx, leaf, stored, concretePath, prints) {
  if (stored === null || stored === undefined || stored === '') return stored;
  const schemaPath = leaf.schemaPath || leaf.path;
  if (!isEncrypted(stored)) {
    if (ctx.options.allowUnencrypted) return stored;
    throw new FieldCryptError(
      codes.UNENCRYPTED_VALUE,
      `${where(ctx, schemaPath)} holds ${describeType(stored)} that is not encrypted. ` +
        'Encrypt existing data first, or set allowUnencrypted: true for a migration window.',
      { modelName: ctx.modelName, path: schemaPath },
    );
  }
  let value;
  if (prints) {
    const decoded = decodeValue(stored, ctx.bson, { buffer: leaf.buffer, withFingerprint: true });
    value = decoded.value;
    prints.set(concretePath, { stored, print: decoded.fingerprint });
  } else {
    value = decodeValue(stored, ctx.bson, { buffer: leaf.buffer });
  }
  audit(ctx, 'onDecrypt', schemaPath, stored);
  return value;
}

// ---------------------------------------------------------------------------
// Plain documents (raw driver documents, lean results, toObject() output)

/** Decrypts every encrypted path of a plain document in place. */
function decryptPlain(ctx, index, doc, prints) {
  for (const leaf of index.leafList) {
    forEachAtPath(doc, leaf.path, (stored, set, concretePath) => {
      set(decryptLeaf(ctx, leaf, stored, concretePath, prints));
    });
  }
  return doc;
}

/**
 * Encrypts every encrypted path of a plain document in place. `raw`: the
 * values are the application's, not cast by Mongoose yet (see encryptLeaf).
 */
function encryptPlain(ctx, index, doc, raw) {
  for (const leaf of index.leafList) {
    forEachAtPath(doc, leaf.path, (value, set) => set(encryptLeaf(ctx, leaf, value, raw)));
  }
  return doc;
}

/** Removes every encrypted path from a plain document (toJSON/toObject output). */
function omitPlain(index, doc) {
  for (const leaf of index.leafList) {
    // An encrypted array or Map disappears as a whole.
    const parts = splitPath(leaf.path).slice();
    while (parts.length > 1 && parts[parts.length - 1] === '$*') parts.pop();
    const key = parts.pop();
    const remove = (container) => {
      if (container instanceof Map) container.delete(key);
      else if (container && typeof container === 'object') delete container[key];
    };
    if (parts.length === 0) remove(doc);
    else forEachAtPath(doc, parts.join('.'), remove);
  }
  return doc;
}

/** A deep copy of plain objects, arrays and Maps; every other value is shared. */
function clonePlain(value) {
  if (Array.isArray(value)) return value.map(clonePlain);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [k, clonePlain(v)]));
  if (value !== null && typeof value === 'object' && isPlainObject(value)) {
    const out = {};
    for (const key of Object.keys(value)) out[key] = clonePlain(value[key]);
    return out;
  }
  return value;
}

function isPlainObject(value) {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isDocument(value) {
  return value !== null && typeof value === 'object' && value.$__ !== undefined && typeof value.toObject === 'function';
}

/**
 * toObject() options for a copy of exactly what Mongoose would store: no
 * transforms (so no output filtering), getters or virtuals.
 */
const STORED_OBJECT = Object.freeze({
  transform: false,
  virtuals: false,
  getters: false,
  depopulate: true,
  flattenMaps: false,
  flattenObjectIds: false,
  versionKey: true,
  useProjection: false,
});

// ---------------------------------------------------------------------------
// Live documents

/**
 * Like paths.forEachAtPath, over a live Mongoose document. forEachAtPath
 * reads and writes through property accessors, which on a document are
 * Mongoose's getters and setters: they cast, run user setters and mark
 * paths modified. Here values are read and written in the document's own
 * storage (a document's `_doc`, the array inside a MongooseArray, a Map's
 * entries), so changing a plaintext into its ciphertext changes neither
 * what Mongoose thinks was modified nor how it builds the write.
 * `onArray(array, concretePath, isLeaf)` sees every MongooseArray passed.
 */
function forEachStored(doc, path, visit, onArray) {
  walkStored(doc, splitPath(path), 0, '', visit, onArray);
}

function walkStored(node, parts, i, at, visit, onArray) {
  if (node === null || typeof node !== 'object') return;
  if (isDocument(node) && node._doc) node = node._doc;
  if (Array.isArray(node)) {
    const raw = node.isMongooseArray && node.__array ? node.__array : node;
    if (onArray && node.isMongooseArray) onArray(node, at, i === parts.length);
    for (let k = 0; k < raw.length; k++) {
      const concrete = `${at}.${k}`;
      if (i === parts.length) {
        if (raw[k] !== null && raw[k] !== undefined) visit(raw[k], (v) => { raw[k] = v; }, concrete);
      } else {
        walkStored(raw[k], parts, i, concrete, visit, onArray);
      }
    }
    return;
  }
  if (i === parts.length) return;
  const isMap = node instanceof Map;
  const part = parts[i];
  const keys = part === '$*' ? (isMap ? [...Map.prototype.keys.call(node)] : Object.keys(node)) : [part];
  for (const key of keys) {
    const value = isMap ? Map.prototype.get.call(node, key) : node[key];
    if (value === null || value === undefined) continue;
    const concrete = at ? `${at}.${key}` : key;
    if (i + 1 === parts.length && !Array.isArray(value)) {
      visit(value, isMap ? (v) => Map.prototype.set.call(node, key, v) : (v) => { node[key] = v; }, concrete);
    } else {
      walkStored(value, parts, i + 1, concrete, visit, onArray);
    }
  }
}

const PRINTS = new WeakMap(); // document -> Map(concrete path -> { stored, print }) of decrypted values
const PENDING = new WeakMap(); // document -> [{ set, value, ... }] plaintexts replaced for a write

/**
 * The change operators a MongooseArray may record that carry no copy of a
 * plaintext: for an encrypted array ($push/$addToSet/$pull… hold copies of
 * the values), only $set (the array itself) and $pop; for an array of
 * subdocuments, also $push and $addToSet (they hold the subdocuments, whose
 * storage is encrypted); $pull and $pullAll of subdocuments hold copies.
 */
const SAFE_ATOMICS_OF_ENCRYPTED_ARRAYS = new Set(['$set', '$pop']);
const SAFE_ATOMICS_OF_SUBDOCUMENT_ARRAYS = new Set(['$set', '$pop', '$push', '$addToSet']);

/**
 * Replaces every plaintext on an encrypted path of a live document with its
 * ciphertext, in the document's own storage. A value unchanged since it was
 * decrypted keeps its stored ciphertext (so it is byte-identical when written
 * again). Returns nothing; PENDING remembers what to put back.
 */
function encryptLive(ctx, doc) {
  const prints = PRINTS.get(doc);
  const pending = PENDING.get(doc) || [];
  for (const leaf of ctx.index.leafList) {
    forEachStored(
      doc,
      leaf.path,
      (value, set, concretePath) => {
        if (isEncrypted(value)) return;
        const print = fingerprint(value, ctx.bson);
        const known = prints && prints.get(concretePath);
        let stored;
        if (known && sameFingerprint(known.print, print)) {
          stored = known.stored;
        } else {
          stored = encryptFingerprint(print);
          audit(ctx, 'onEncrypt', leaf.path, stored);
        }
        set(stored);
        pending.push({ set, value, concretePath, stored, print });
      },
      (array, concretePath, isLeafArray) => {
        // Change operators that would carry a copy of a plaintext become a
        // $set of the whole (encrypted) array.
        const safe = isLeafArray ? SAFE_ATOMICS_OF_ENCRYPTED_ARRAYS : SAFE_ATOMICS_OF_SUBDOCUMENT_ARRAYS;
        const atomics = typeof array.$atomics === 'function' ? array.$atomics() || {} : {};
        if (Object.keys(atomics).some((op) => !safe.has(op))) array._registerAtomic('$set', array);
      },
    );
  }
  refuseIncrements(ctx, doc);
  PENDING.set(doc, pending);
  if (!WRITING.has(doc)) WRITING.set(doc, { ctx, late: new Map() });
}

/** `doc.$inc()` on an encrypted path would send an increment for a ciphertext. */
function refuseIncrements(ctx, doc) {
  const docs = [doc, ...(typeof doc.$getAllSubdocs === 'function' ? doc.$getAllSubdocs() : [])];
  for (const d of docs) {
    const atomics = d.$__ && d.$__.primitiveAtomics;
    if (!atomics) continue;
    for (const path of Object.keys(atomics)) {
      const full = typeof d.$__fullPath === 'function' ? d.$__fullPath(path) : path;
      const normalized = normalizeKey(ctx.index, full).path;
      if (ctx.index.leaves.has(normalized)) {
        throw unsupportedOperator(ctx, Object.keys(atomics[path])[0] || '$inc', normalized, 'an encrypted value cannot be incremented on the server');
      }
    }
  }
}

/**
 * After a write: puts the plaintexts back (`restore`), or keeps the
 * ciphertexts (explicit mode after a successful write), and remembers the
 * stored ciphertext of each plaintext for the next write.
 */
function settleLive(doc, restore) {
  const pending = PENDING.get(doc);
  const writing = WRITING.get(doc);
  PENDING.delete(doc);
  WRITING.delete(doc);
  if (!restore) return;
  let prints = PRINTS.get(doc);
  if (!prints) PRINTS.set(doc, (prints = new Map()));
  for (const entry of pending || []) {
    entry.set(entry.value);
    prints.set(entry.concretePath, { stored: entry.stored, print: entry.print });
  }
  // Values encrypted as they were assigned during the write (sealDuringWrite).
  if (writing && writing.late.size) {
    for (const leaf of writing.ctx.index.leafList) {
      forEachStored(doc, leaf.path, (value, set) => {
        if (typeof value === 'string' && writing.late.has(value)) set(writing.late.get(value));
      });
    }
  }
}

// ---------------------------------------------------------------------------
// 3. Updates

const ARRAY_SELECTOR = /^(\d+|\$|\$\[\]|\$\[[A-Za-z0-9_]*\])$/;
const ARRAY_FILTER_ID = /^\$\[([A-Za-z0-9_]+)\]$/;

/**
 * The raw schema path an update or filter key refers to: array indexes and
 * positional operators (`$`, `$[]`, `$[name]`) after an array are dropped,
 * a Map key becomes `$*`, an alias becomes its path (Mongoose translates
 * aliases after the hooks ran, with `translateAliases`). `element` says the
 * key names one element of an array. `$[name]` identifiers are recorded with
 * their array's path.
 */
function normalizeKey(index, key, arrayFilterIds) {
  let path = '';
  let element = false;
  for (const segment of key.split('.')) {
    if (path && index.arrays.has(path) && ARRAY_SELECTOR.test(segment)) {
      element = true;
      const id = ARRAY_FILTER_ID.exec(segment);
      if (id && arrayFilterIds) arrayFilterIds.set(id[1], path);
      continue;
    }
    element = false;
    if (path && index.maps.has(path)) {
      path += '.$*';
      continue;
    }
    path = path ? `${path}.${segment}` : segment;
    const aliased = index.aliases.get(path);
    if (aliased !== undefined) path = aliased;
  }
  return { path, element };
}

/**
 * How a normalized path relates to the encrypted paths: the path of a leaf,
 * a container above leaves, inside a leaf's value, or unrelated (null).
 */
function relate(index, path) {
  const leaf = index.leaves.get(path);
  if (leaf) return { kind: 'leaf', leaf };
  const container = index.containers.get(path);
  if (container) return { kind: 'container', container };
  const parts = splitPath(path);
  let prefix = '';
  for (let i = 0; i < parts.length - 1; i++) {
    prefix = prefix ? `${prefix}.${parts[i]}` : parts[i];
    const outer = index.leaves.get(prefix);
    if (outer) return { kind: 'inside', leaf: outer };
  }
  return null;
}

/**
 * Encrypts a value the application assigns to a leaf: one value, or an
 * array element by element (one level, as lib/paths.js visits stored
 * values). `element`: the value is one element of the leaf's array.
 */
function encryptLeafValue(ctx, leaf, value, element) {
  if (!element && Array.isArray(value)) return value.map((v) => encryptLeaf(ctx, leaf, v, true));
  return encryptLeaf(ctx, leaf, value, true);
}

/**
 * Encrypts a value the application assigns to a container (a nested
 * object, a subdocument, a document array or one of its elements, a Map),
 * returning a new plain value. Subdocuments are built the way Mongoose
 * builds them while casting the update, so that defaults inside them are
 * there now (Mongoose would add them in clear) and setters run once; their
 * stored form is then encrypted. A value that does not build is copied and
 * its leaves encrypted as given: Mongoose reports the cast error itself.
 */
function encryptContainerValue(ctx, container, value, element) {
  if (value === null || value === undefined || typeof value !== 'object') return value;
  const { kind, schemaType } = container;
  if (kind === 'docarray' && !element) {
    return Array.isArray(value) ? value.map((el) => encryptContainerValue(ctx, container, el, true)) : encryptUnbuilt(ctx, container, value);
  }
  if (kind === 'docarray' || kind === 'single') {
    let doc = isDocument(value) ? value : null;
    if (!doc && isPlainObject(value)) {
      try {
        doc = kind === 'single' ? schemaType.cast(value) : new (subdocConstructorOf(schemaType))(value);
      } catch {
        doc = null;
      }
    }
    // A cast error inside a subdocument is recorded on it (Mongoose's own
    // `$__` state), not thrown.
    if (!isDocument(doc) || (doc.$__ && doc.$__.validationError)) return encryptUnbuilt(ctx, container, value);
    return encryptBelow(ctx, container, doc.toObject(STORED_OBJECT), false);
  }
  // A nested object or a Map: each entry is a leaf, a container, or unrelated.
  const isMap = value instanceof Map;
  const copy = isMap ? new Map() : {};
  for (const [key, v] of isMap ? value : Object.entries(value)) {
    const childPath = kind === 'map' ? `${container.path}.$*` : `${container.path}.${key}`;
    const leaf = ctx.index.leaves.get(childPath);
    const child = ctx.index.containers.get(childPath);
    const encrypted = leaf ? encryptLeafValue(ctx, leaf, v, false) : child ? encryptContainerValue(ctx, child, v, false) : clonePlain(v);
    if (isMap) copy.set(key, encrypted);
    else copy[key] = encrypted;
  }
  return copy;
}

function encryptUnbuilt(ctx, container, value) {
  return encryptBelow(ctx, container, clonePlain(value), true);
}

/** Encrypts, in place, every leaf below `container` in a plain value of it. */
function encryptBelow(ctx, container, plain, raw) {
  for (const leaf of ctx.index.under.get(container.path)) {
    forEachAtPath(plain, leaf.path.slice(container.path.length + 1), (v, set) => set(encryptLeaf(ctx, leaf, v, raw)));
  }
  return plain;
}

/** `$set`, `$setOnInsert` and top-level keys: `key` is assigned `value`. */
function encryptAssignment(ctx, operator, key, value, ids) {
  const { path, element } = normalizeKey(ctx.index, key, ids);
  const relation = relate(ctx.index, path);
  if (!relation) return value;
  if (relation.kind === 'inside') {
    throw unsupportedOperator(ctx, operator, relation.leaf.path, `'${key}' is inside an encrypted value, which can only be replaced as a whole`);
  }
  if (relation.kind === 'leaf') return encryptLeafValue(ctx, relation.leaf, value, element);
  return encryptContainerValue(ctx, relation.container, value, element);
}

/** `$push` and `$addToSet` (with or without `$each`): the new elements are encrypted. */
function encryptAppend(ctx, operator, key, value, ids) {
  const { path } = normalizeKey(ctx.index, key, ids);
  const relation = relate(ctx.index, path);
  if (!relation) return value;
  if (relation.kind === 'inside') {
    throw unsupportedOperator(ctx, operator, relation.leaf.path, `'${key}' is inside an encrypted value`);
  }
  const one = (el) =>
    relation.kind === 'leaf' ? encryptLeafValue(ctx, relation.leaf, el, true) : encryptContainerValue(ctx, relation.container, el, true);
  if (value !== null && typeof value === 'object' && !Array.isArray(value) && isPlainObject(value) && Object.hasOwn(value, '$each')) {
    if (value.$sort !== undefined && sortTouchesEncrypted(ctx, relation, value.$sort)) {
      throw unsupportedOperator(ctx, `${operator} with $sort`, relation.kind === 'leaf' ? relation.leaf.path : path, 'ciphertexts cannot be sorted by their plaintext');
    }
    return { ...value, $each: Array.isArray(value.$each) ? value.$each.map(one) : one(value.$each) };
  }
  return one(value);
}

function sortTouchesEncrypted(ctx, relation, sort) {
  if (relation.kind === 'leaf') return true;
  if (sort === null || typeof sort !== 'object') return false;
  return Object.keys(sort).some((field) => relate(ctx.index, `${relation.container.path}.${field}`) !== null);
}

/** Update operators whose values would have to be compared with or computed from a plaintext. */
const REFUSED_WHY = {
  $inc: 'an encrypted value cannot be incremented on the server',
  $mul: 'an encrypted value cannot be multiplied on the server',
  $min: 'the server cannot compare ciphertexts by their plaintext',
  $max: 'the server cannot compare ciphertexts by their plaintext',
  $bit: 'the server cannot do bitwise operations on a ciphertext',
  $currentDate: 'the server would store the date in clear',
  $rename: 'renaming would move a ciphertext out of, or a plaintext into, an encrypted path',
  $pullAll: 'ciphertexts are randomized, so elements cannot be matched by value',
};

/**
 * Rewrites an update document so that every value written to an encrypted
 * path is ciphertext, and refuses what cannot be done on ciphertext.
 * Returns a new update; the caller's objects are not changed.
 */
function encryptUpdate(ctx, update, { filter, upsert, setDefaultsOnInsert, arrayFilters } = {}) {
  if (update === null || update === undefined || typeof update !== 'object') return update;
  if (Array.isArray(update)) {
    refusePipeline(ctx, update);
    return update;
  }
  const ids = new Map(); // $[name] -> array path
  const out = {};
  for (const [key, value] of Object.entries(update)) {
    if (key[0] !== '$') {
      out[key] = encryptAssignment(ctx, '$set', key, value, ids);
      continue;
    }
    if (value === null || typeof value !== 'object') {
      out[key] = value;
      continue;
    }
    switch (key) {
      case '$set':
      case '$setOnInsert':
        out[key] = mapEntries(value, (k, v) => encryptAssignment(ctx, key, k, v, ids));
        break;
      case '$push':
      case '$addToSet':
        out[key] = mapEntries(value, (k, v) => encryptAppend(ctx, key, k, v, ids));
        break;
      case '$unset':
      case '$pop':
        // Remove values; nothing of a plaintext is sent.
        for (const k of Object.keys(value)) normalizeKey(ctx.index, k, ids);
        out[key] = value;
        break;
      case '$pull':
        for (const [k, condition] of Object.entries(value)) checkPull(ctx, k, condition, ids);
        out[key] = value;
        break;
      default:
        for (const [k, v] of Object.entries(value)) {
          for (const target of key === '$rename' && typeof v === 'string' ? [k, v] : [k]) {
            const relation = relate(ctx.index, normalizeKey(ctx.index, target, ids).path);
            if (relation) {
              const path = relation.kind === 'container' ? firstLeafUnder(ctx, relation.container) : relation.leaf.path;
              throw unsupportedOperator(ctx, key, path, REFUSED_WHY[key] || 'the operator cannot be applied to a ciphertext');
            }
          }
        }
        out[key] = value;
    }
  }
  checkArrayFilters(ctx, arrayFilters, ids);
  if (upsert && setDefaultsOnInsert !== false) addEncryptedDefaults(ctx, out, filter);
  return out;
}

function mapEntries(object, fn) {
  const out = {};
  for (const [k, v] of Object.entries(object)) out[k] = fn(k, v);
  return out;
}

function firstLeafUnder(ctx, container) {
  return ctx.index.under.get(container.path)[0].path;
}

/** `$pull` by value on encrypted elements cannot match; on a document array, by a condition on its other fields, it can. */
function checkPull(ctx, key, condition, ids) {
  const { path } = normalizeKey(ctx.index, key, ids);
  const relation = relate(ctx.index, path);
  if (!relation) return;
  if (relation.kind !== 'container') {
    throw unsupportedOperator(ctx, '$pull', relation.leaf.path, 'ciphertexts are randomized, so elements cannot be matched by value');
  }
  try {
    checkCondition(ctx, relation.container.path, condition, true);
  } catch (err) {
    if (err.code !== codes.UNSUPPORTED_QUERY) throw err;
    throw unsupportedOperator(ctx, '$pull', err.path, 'the condition tests an encrypted field, which cannot match a ciphertext');
  }
}

/**
 * An update pipeline can compute anything from anything, so a stage that
 * writes an encrypted path (or may rewrite the whole document) is refused.
 */
function refusePipeline(ctx, pipeline) {
  if (ctx.index.leafList.length === 0) return;
  for (const stage of pipeline) {
    for (const [name, spec] of Object.entries(stage || {})) {
      if ((name === '$set' || name === '$addFields') && spec && typeof spec === 'object') {
        for (const key of Object.keys(spec)) {
          const relation = relate(ctx.index, normalizeKey(ctx.index, key).path);
          if (relation) {
            const path = relation.kind === 'container' ? firstLeafUnder(ctx, relation.container) : relation.leaf.path;
            throw unsupportedOperator(ctx, `update pipeline ${name}`, path, 'an aggregation pipeline would write the value in clear');
          }
        }
      } else if (name !== '$unset') {
        throw unsupportedOperator(ctx, `update pipeline ${name}`, ctx.index.leafList[0].path, 'this stage can rewrite encrypted paths with values computed in clear');
      }
    }
  }
}

/** `arrayFilters` conditions on an encrypted element field would send the plaintext. */
function checkArrayFilters(ctx, arrayFilters, ids) {
  if (!Array.isArray(arrayFilters)) return;
  const check = (filter) => {
    if (!filter || typeof filter !== 'object') return;
    for (const [key, condition] of Object.entries(filter)) {
      if (key === '$and' || key === '$or' || key === '$nor') {
        if (Array.isArray(condition)) condition.forEach(check);
        continue;
      }
      const [id, ...rest] = key.split('.');
      const base = ids.get(id);
      if (base === undefined) continue;
      checkFilter(ctx, { [rest.length ? `${base}.${rest.join('.')}` : base]: condition });
    }
  };
  arrayFilters.forEach(check);
}

/**
 * Mongoose's setDefaultsOnInsert adds `$setOnInsert` for schema defaults
 * after the hooks ran and after casting, in clear. For encrypted paths (and
 * containers holding them) the plugin adds them first, encrypted; Mongoose
 * then sees the path set and leaves it. Mirrors Mongoose's rules: top-level
 * schema paths not under a Map, not set by the update or by an equality in
 * the filter.
 */
function addEncryptedDefaults(ctx, update, filter) {
  const touched = [];
  for (const [key, value] of Object.entries(update)) {
    if (key[0] !== '$') touched.push(key);
    else if (value && typeof value === 'object') touched.push(...Object.keys(value));
  }
  for (const [key, condition] of Object.entries(filter || {})) {
    if (key[0] === '$') continue;
    if (condition && typeof condition === 'object' && !isDocument(condition) && Object.keys(condition).some((k) => k[0] === '$')) continue;
    touched.push(key);
  }
  const isTouched = (path) => touched.some((t) => t === path || t.startsWith(`${path}.`) || path.startsWith(`${t}.`));
  const schema = ctx.index.schema;
  schema.eachPath((path, schemaType) => {
    if (path.includes('$*') || !relate(ctx.index, path) || isTouched(path)) return;
    const def = schemaType.getDefault(null, true);
    if (def === undefined) return;
    update.$setOnInsert = update.$setOnInsert || {};
    update.$setOnInsert[path] = encryptAssignment(ctx, '$setOnInsert', path, def);
  });
}

/**
 * A replacement document (replaceOne, findOneAndReplace, bulkWrite
 * replaceOne) or an inserted one (bulkWrite insertOne): built as a document
 * of `model` (as Mongoose will, so defaults are there), then encrypted as a
 * plain object.
 */
function encryptWholeDocument(ctx, model, input, { skipId }) {
  if (input === null || input === undefined || typeof input !== 'object') return input;
  let doc = input;
  if (!isDocument(input)) {
    try {
      doc = new model(input, null, skipId ? { skipId: true } : undefined);
    } catch {
      doc = null;
    }
  }
  // A cast error is recorded on the document (Mongoose's own `$__` state),
  // not thrown; Mongoose reports it when it builds the document again, so
  // encrypt the input as given.
  if (!doc || (doc.$__ && doc.$__.validationError)) return encryptPlain(ctx, ctx.index, clonePlain(input), true);
  return encryptPlain(ctx, ctx.index, doc.toObject(STORED_OBJECT), false);
}

// ---------------------------------------------------------------------------
// 4. Filters

const SAFE_CONDITION_OPERATORS = new Set(['$exists', '$type', '$size']);

function isSafeValue(value) {
  return value === null || value === undefined || value === '' || isEncrypted(value);
}

/** A condition on an encrypted leaf that sends nothing of a plaintext. */
function isSafeLeafCondition(condition) {
  if (isSafeValue(condition)) return true;
  if (condition === null || typeof condition !== 'object' || Array.isArray(condition) || !isPlainObject(condition)) return false;
  const keys = Object.keys(condition);
  if (keys.length === 0 || keys.some((k) => k[0] !== '$')) return false;
  return keys.every((op) => {
    const v = condition[op];
    if (SAFE_CONDITION_OPERATORS.has(op)) return true;
    if (op === '$eq' || op === '$ne') return isSafeValue(v);
    if (op === '$in' || op === '$nin' || op === '$all') return Array.isArray(v) && v.every(isSafeValue);
    if (op === '$not' || op === '$elemMatch') return isSafeLeafCondition(v);
    return false;
  });
}

/**
 * Refuses a filter that would send the plaintext of an encrypted path.
 * `base` is the path the filter's keys are relative to ($elemMatch, $pull).
 */
function checkFilter(ctx, filter, base = '') {
  if (filter === null || typeof filter !== 'object' || ctx.index.leafList.length === 0) return;
  for (const [key, condition] of Object.entries(filter)) {
    if (key === '$and' || key === '$or' || key === '$nor') {
      if (Array.isArray(condition)) for (const sub of condition) checkFilter(ctx, sub, base);
      continue;
    }
    if (key === '$expr') {
      checkExpression(ctx, condition);
      continue;
    }
    if (key[0] === '$') continue;
    checkCondition(ctx, base ? `${base}.${key}` : key, condition, false);
  }
}

function checkCondition(ctx, key, condition, isPullOnDocuments) {
  const { path } = normalizeKey(ctx.index, key);
  const relation = relate(ctx.index, path);
  if (!relation) return;
  if (relation.kind === 'inside') throw unsupportedQuery(ctx, relation.leaf.path);
  if (relation.kind === 'leaf') {
    if (!isSafeLeafCondition(condition)) throw unsupportedQuery(ctx, relation.leaf.path);
    return;
  }
  // A container: operators, $elemMatch on a document array, or a whole
  // subdocument to compare with.
  const container = relation.container;
  if (condition === null || typeof condition !== 'object') return;
  const entries = condition instanceof Map ? [...condition] : Object.entries(condition);
  const operators = entries.length > 0 && entries.every(([k]) => typeof k === 'string' && k[0] === '$');
  if (!operators) {
    if (isPullOnDocuments && container.kind === 'docarray') {
      // $pull: { ids: { idType: 'x' } } is a condition on each element.
      checkFilter(ctx, condition, container.path);
      return;
    }
    refuseEmbeddedPlaintext(ctx, container, condition);
    return;
  }
  for (const [op, operand] of entries) {
    if (op === '$elemMatch') checkFilter(ctx, operand, container.path);
    else if (op === '$not') checkCondition(ctx, key, operand, isPullOnDocuments);
    else if (SAFE_CONDITION_OPERATORS.has(op)) continue;
    else for (const v of Array.isArray(operand) ? operand : [operand]) refuseEmbeddedPlaintext(ctx, container, v);
  }
}

/** A whole subdocument (or Map) in a filter: any plaintext at an encrypted path in it is refused. */
function refuseEmbeddedPlaintext(ctx, container, value) {
  if (value === null || typeof value !== 'object') return;
  for (const leaf of ctx.index.under.get(container.path)) {
    forEachAtPath(value, leaf.path.slice(container.path.length + 1), (v) => {
      if (!isSafeValue(v)) throw unsupportedQuery(ctx, leaf.path);
    });
  }
}

/** `$expr` can compare an encrypted path with anything; refuse one that names one. */
function checkExpression(ctx, expression) {
  const visit = (node) => {
    if (typeof node === 'string') {
      if (node.startsWith('$') && !node.startsWith('$$')) {
        const relation = relate(ctx.index, normalizeKey(ctx.index, node.slice(1)).path);
        if (relation) throw unsupportedQuery(ctx, relation.kind === 'container' ? firstLeafUnder(ctx, relation.container) : relation.leaf.path);
      }
    } else if (Array.isArray(node)) {
      node.forEach(visit);
    } else if (node !== null && typeof node === 'object' && isPlainObject(node)) {
      Object.values(node).forEach(visit);
    }
  };
  visit(expression);
}

// ---------------------------------------------------------------------------
// 5. Reads

const DECRYPTED_LEAN = new WeakSet(); // lean documents already decrypted

/**
 * Decrypts a lean result in place: one document, an array of them, or a
 * driver ModifyResult. Idempotent: Mongoose applies query transforms to a
 * findOneAnd* result twice (to the driver's result, then to the query's).
 */
function decryptLeanResult(ctx, model, result) {
  if (result === null || typeof result !== 'object' || DECRYPTED_LEAN.has(result)) return result;
  if (Array.isArray(result)) {
    for (const doc of result) decryptLeanResult(ctx, model, doc);
    return result;
  }
  if (isDocument(result)) return result;
  if (Object.hasOwn(result, 'value') && Object.hasOwn(result, 'ok') && !Object.hasOwn(result, '_id')) {
    decryptLeanResult(ctx, model, result.value);
    return result;
  }
  // Each document with the paths of its own model (a discriminator's, when its key says so).
  const owner = modelForObject(model, result);
  const index = indexOf(owner.schema);
  prepareSchema(index, () => ctx.bson);
  decryptPlain({ ...ctx, documentId: result._id, modelName: owner.modelName, index }, index, result);
  DECRYPTED_LEAN.add(result);
  return result;
}

/**
 * Decrypts a raw document of `Model` (from an aggregation, `Model.collection`
 * or the driver) in place and returns it (once: a second call on the same
 * object returns it unchanged). Uses the options the model's
 * schema was given (allowUnencrypted, onDecrypt); a discriminator key picks
 * the discriminator's paths.
 */
function decryptDocument(Model, raw) {
  if (typeof Model !== 'function' || !Model.schema) {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `decryptDocument() expects a Mongoose model, got ${describeType(Model)}`);
  }
  if (raw === null || raw === undefined) return raw;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new FieldCryptError(codes.INVALID_ARGUMENT, `decryptDocument() expects a document, got ${describeType(raw)}`);
  }
  if (DECRYPTED_LEAN.has(raw)) return raw;
  const owner = modelForObject(Model, raw);
  const options = pluginOptionsOf(owner.schema) || normalizeOptions({});
  const ctx = contextFor(options, owner, owner.schema, raw._id);
  decryptPlain(ctx, ctx.index, raw);
  DECRYPTED_LEAN.add(raw);
  return raw;
}

// ---------------------------------------------------------------------------
// The plugin

const APPLIED = new WeakSet(); // schemas the plugin was applied to

/** Aggregation stages before which a `$match` still filters the model's own documents. */
const DOCUMENT_PRESERVING_STAGES = new Set(['$match', '$sort', '$limit', '$skip', '$sample']);

const QUERY_WRITES = ['updateOne', 'updateMany', 'findOneAndUpdate', 'replaceOne', 'findOneAndReplace'];
const QUERY_READS = ['find', 'findOne', 'findOneAndDelete', 'countDocuments', 'deleteOne', 'deleteMany', 'distinct'];
const RETURNS_DOCUMENTS = new Set(['find', 'findOne', 'findOneAndDelete', 'findOneAndUpdate', 'findOneAndReplace']);
const QUERY_ONLY = { document: false, query: true };

/** `_id` when a filter names exactly one document by it. */
function idFromFilter(filter) {
  if (!filter || typeof filter !== 'object' || !Object.hasOwn(filter, '_id')) return undefined;
  const id = filter._id;
  if (id !== null && typeof id === 'object' && isPlainObject(id)) return undefined;
  return id;
}

function rootHasPlugin(doc) {
  const root = typeof doc.ownerDocument === 'function' ? doc.ownerDocument() : doc;
  return Boolean(root && root.$__schema && pluginOptionsOf(root.$__schema));
}

/**
 * The plugin works from the top-level document: encrypted paths of child
 * schemas are found from there. Applied only to a child schema, it cannot
 * cover the parent model's queries, so it refuses to save rather than
 * store plaintext.
 */
function requireRootPlugin(doc) {
  if (rootHasPlugin(doc)) return;
  throw new FieldCryptError(
    codes.INVALID_ARGUMENT,
    'fieldEncryption is applied to a subdocument schema but not to the schema of its top-level model; ' +
      "apply it to the model's schema (paths marked in child schemas are found from there).",
  );
}

/**
 * `schema.plugin(fieldEncryption, options)`. See README "The fieldEncryption plugin".
 *
 * options: fields (paths to encrypt, besides those marked `encrypted: true`),
 * decrypt ('auto' | 'explicit'), includeDecrypted (toJSON/toObject default),
 * allowUnencrypted (read legacy plaintext), onEncrypt/onDecrypt (audit).
 */
function fieldEncryption(schema, rawOptions) {
  if (!schema || typeof schema.pre !== 'function' || typeof schema.eachPath !== 'function') {
    throw invalidOption(`expected a Mongoose schema, got ${describeType(schema)}`);
  }
  const options = normalizeOptions(rawOptions);
  // Once per schema: a second application (typically a global plugin, which
  // Mongoose applies when it compiles the model, after the schema's own) is
  // ignored; the first options count. Two sets of hooks would decrypt twice.
  if (APPLIED.has(schema)) return;
  APPLIED.add(schema);
  OPTIONS.set(schema, options);
  // Validates `fields` now, while the mistake is easy to find, and lets the
  // encrypted SchemaTypes hold ciphertext from the start. The index is built
  // again (and cached) when first used, from the schema as it is then.
  prepareSchema(buildIndex(schema), () => bsonOf(schema));

  const auto = options.decrypt === 'auto';
  const docContext = (doc, id) => contextFor(options, doc.constructor, doc.$__schema, id === undefined ? doc._id : id);
  const queryContext = (query, filter) => {
    const model = query.model;
    // Setters run with the query as `this`, as when Mongoose casts an update.
    return { ...contextFor(options, model, model.schema, idFromFilter(filter), queryIndex(model, filter)), scope: query };
  };

  // --- save(), create(), bulkSave() ------------------------------------------

  schema.pre(
    'save',
    mongooseHook('fieldcryptEncryptBeforeSave', (doc) => {
      if (doc.$isSubdocument) return requireRootPlugin(doc);
      encryptLive(docContext(doc), doc);
    }),
  );
  // After a write the document shows plaintext again (auto), or keeps the
  // ciphertext (explicit). Unshifted, so the application's own post('save')
  // hooks see the document as the application uses it.
  schema.post('save', named('fieldcryptAfterSave', function (doc) {
    if (!this.$isSubdocument) settleLive(this, auto);
  }), true);
  schema.post('save', { errorHandler: true }, named('fieldcryptAfterFailedSave', function (err, doc, next) {
    if (!this.$isSubdocument) settleLive(this, true);
    if (typeof next === 'function') next();
  }));

  // --- insertMany() --------------------------------------------------------------

  schema.pre(
    'insertMany',
    mongooseHook('fieldcryptEncryptInsertMany', (model, [docs]) => {
      // Each input becomes a document (defaults applied, as Mongoose would),
      // encrypted in its own storage; Mongoose uses documents of the model
      // as they are. A lone object (not an array) is changed in place.
      const list = Array.isArray(docs) ? docs : [docs];
      for (let i = 0; i < list.length; i++) {
        const input = list[i];
        if (input === null || typeof input !== 'object') continue;
        const owner = modelForObject(model, input);
        const doc = input instanceof owner ? input : new owner(input);
        encryptLive(docContext(doc), doc);
        if (Array.isArray(docs)) {
          docs[i] = doc;
        } else {
          for (const key of Object.keys(input)) delete input[key];
          Object.assign(input, doc.toObject(STORED_OBJECT));
        }
      }
    }),
  );
  schema.post('insertMany', named('fieldcryptAfterInsertMany', function (docs) {
    for (const doc of Array.isArray(docs) ? docs : [docs]) if (isDocument(doc)) settleLive(doc, auto);
  }));
  schema.post('insertMany', { errorHandler: true }, named('fieldcryptAfterFailedInsertMany', function (err, docs, next) {
    for (const doc of Array.isArray(docs) ? docs : []) if (isDocument(doc)) settleLive(doc, true);
    if (err && Array.isArray(err.insertedDocs)) for (const doc of err.insertedDocs) if (isDocument(doc)) settleLive(doc, true);
    if (typeof next === 'function') next();
  }));

  // --- bulkWrite() (also what bulkSave() sends) ------------------------------

  schema.pre(
    'bulkWrite',
    mongooseHook('fieldcryptEncryptBulkWrite', (model, [ops]) => {
      if (!Array.isArray(ops)) return;
      // Every op is rewritten (or refused) before Mongoose sends any of them.
      for (const op of ops) {
        if (!op || typeof op !== 'object') continue;
        if (op.insertOne) {
          const owner = modelForObject(model, op.insertOne.document);
          const ctx = contextFor(options, owner, owner.schema, op.insertOne.document && op.insertOne.document._id);
          op.insertOne.document = encryptWholeDocument(ctx, owner, op.insertOne.document, { skipId: false });
        } else if (op.replaceOne) {
          const owner = modelForObject(model, op.replaceOne.filter);
          const ctx = contextFor(options, owner, owner.schema, idFromFilter(op.replaceOne.filter), queryIndex(model, op.replaceOne.filter));
          checkFilter(ctx, op.replaceOne.filter);
          op.replaceOne.replacement = encryptWholeDocument(ctx, owner, op.replaceOne.replacement, { skipId: true });
        } else if (op.updateOne || op.updateMany) {
          const spec = op.updateOne || op.updateMany;
          const ctx = contextFor(options, model, model.schema, op.updateOne ? idFromFilter(spec.filter) : undefined, queryIndex(model, spec.filter));
          checkFilter(ctx, spec.filter);
          spec.update = encryptUpdate(ctx, spec.update, {
            filter: spec.filter,
            upsert: spec.upsert,
            setDefaultsOnInsert: spec.setDefaultsOnInsert ?? model.base.options.setDefaultsOnInsert,
            arrayFilters: spec.arrayFilters,
          });
        } else if (op.deleteOne || op.deleteMany) {
          const spec = op.deleteOne || op.deleteMany;
          checkFilter(contextFor(options, model, model.schema, undefined, queryIndex(model, spec.filter)), spec.filter);
        }
      }
    }),
  );

  // --- Query updates: updateOne, updateMany, findOneAndUpdate (findByIdAndUpdate),
  //     replaceOne, findOneAndReplace, doc.updateOne(), upserts ----------------

  schema.pre(
    QUERY_WRITES,
    QUERY_ONLY,
    mongooseHook('fieldcryptEncryptUpdate', (query) => {
      const filter = query.getFilter();
      const ctx = queryContext(query, filter);
      checkFilter(ctx, filter);
      const update = query.getUpdate();
      const queryOptions = query.getOptions();
      if (query.op === 'replaceOne' || query.op === 'findOneAndReplace') {
        const owner = modelForObject(query.model, filter);
        query.setUpdate(encryptWholeDocument(ctx, owner, update, { skipId: true }));
      } else {
        const mongooseOptions = query.mongooseOptions();
        query.setUpdate(
          encryptUpdate(ctx, update, {
            filter,
            upsert: queryOptions.upsert,
            setDefaultsOnInsert:
              queryOptions.setDefaultsOnInsert ?? mongooseOptions.setDefaultsOnInsert ?? query.model.base.options.setDefaultsOnInsert,
            arrayFilters: queryOptions.arrayFilters,
          }),
        );
      }
      decryptLeanResults(query, ctx);
    }),
  );

  // --- Query reads -----------------------------------------------------------------

  schema.pre(
    QUERY_READS,
    QUERY_ONLY,
    mongooseHook('fieldcryptCheckFilter', (query) => {
      const filter = query.getFilter();
      const ctx = queryContext(query, filter);
      checkFilter(ctx, filter);
      decryptLeanResults(query, ctx);
    }),
  );

  // Aggregations: a `$match` on the model's documents (before any stage that
  // reshapes them) is a filter like any other. Results are not decrypted:
  // their shape is the pipeline's (decryptDocument() for whole documents).
  schema.pre(
    'aggregate',
    mongooseHook('fieldcryptCheckAggregateMatch', (aggregate) => {
      const model = aggregate.model();
      if (!model) return;
      for (const stage of aggregate.pipeline()) {
        const [name] = Object.keys(stage || {});
        if (!DOCUMENT_PRESERVING_STAGES.has(name)) break;
        if (name === '$match') checkFilter(contextFor(options, model, model.schema, undefined, queryIndex(model, stage.$match)), stage.$match);
      }
    }),
  );

  /** Lean results (also lean cursors) are decrypted by a query transform. */
  function decryptLeanResults(query, ctx) {
    if (!auto || !RETURNS_DOCUMENTS.has(query.op) || !query.mongooseOptions().lean) return;
    const model = query.model;
    query.transform(named('fieldcryptDecryptLean', (result) => decryptLeanResult({ ...ctx, documentId: undefined }, model, result)));
  }

  // Hydrated documents: the raw document is decrypted before Mongoose casts
  // it into the document (find, findOne, findById, findOneAnd* results,
  // cursors, populate, Model.hydrate()).
  schema.pre('init', named('fieldcryptDecryptOnInit', function (raw) {
    if (this.$isSubdocument || !raw || typeof raw !== 'object') return;
    const ctx = docContext(this, raw._id);
    if (!auto) return;
    const prints = new Map();
    decryptPlain(ctx, ctx.index, raw, prints);
    PRINTS.set(this, prints);
  }));

  // --- Output --------------------------------------------------------------------

  // toJSON()/toObject() omit encrypted paths unless `includeDecrypted` (see
  // outputFilter). If the application sets toJSON/toObject options after the
  // plugin, the filter is put back in front of its transform when the model
  // is compiled.
  installOutputFilter(schema);
  schema.on('init', () => installOutputFilter(schema));

  // --- Methods -------------------------------------------------------------------

  /**
   * doc.decryptField(path): the plaintext of one encrypted path (a concrete
   * path such as 'ids.0.idNumber' works); in explicit mode the way to read.
   */
  if (schema.methods.decryptField) return; // the application's own method of that name wins
  schema.method('decryptField', function decryptField(path) {
    if (typeof path !== 'string' || path === '') {
      throw new FieldCryptError(codes.INVALID_ARGUMENT, `decryptField() expects a path such as 'ssn', got ${describeType(path)}`);
    }
    const ctx = docContext(this);
    const leaf = ctx.index.leaves.get(normalizeKey(ctx.index, path).path);
    if (!leaf) throw new FieldCryptError(codes.INVALID_ARGUMENT, `decryptField('${path}'): not an encrypted path of ${ctx.modelName || 'this schema'}`);
    const value = this.get(path, null, { getters: false });
    const decrypt = (v) => (isEncrypted(v) || !auto ? decryptLeaf(ctx, leaf, v) : v);
    return Array.isArray(value) ? value.map(decrypt) : decrypt(value);
  });
}

// ---------------------------------------------------------------------------
// 6. Output: toJSON() and toObject()

const SUBDOCUMENT_LEAVES = new WeakMap(); // child schema -> { leafList } relative to its subdocuments

/**
 * A subdocument's own toJSON()/toObject() (`res.json(doc.identifications)`)
 * must omit its encrypted fields too, including those the top-level schema
 * names (`fields: ['identifications.idNumber']`). Each child schema under a
 * container gets the relative leaves (from every place it is used: fail
 * closed) and the output filter.
 */
function registerSubdocumentLeaves(index) {
  for (const container of index.containers.values()) {
    if (container.kind !== 'single' && container.kind !== 'docarray') continue;
    const child = container.schemaType && container.schemaType.schema;
    if (!child) continue;
    const entry = SUBDOCUMENT_LEAVES.get(child) || { leafList: [] };
    for (const leaf of index.under.get(container.path)) {
      const path = leaf.path.slice(container.path.length + 1);
      if (!entry.leafList.some((l) => l.path === path)) entry.leafList.push({ ...leaf, path, schemaPath: leaf.path });
    }
    SUBDOCUMENT_LEAVES.set(child, entry);
    installOutputFilter(child);
  }
}

/**
 * The transform behind toJSON()/toObject() of documents and subdocuments of
 * schemas using the plugin: encrypted paths are omitted unless
 * `includeDecrypted` (per call, or the plugin option of the top-level
 * schema). Included, they are decrypted where they still hold ciphertext
 * (explicit mode, or during a save); in auto mode the document holds
 * plaintext already.
 */
function outputFilter(doc, ret, callOptions) {
  if (!isDocument(doc) || ret === null || typeof ret !== 'object') return ret;
  const root = doc.$isSubdocument && typeof doc.ownerDocument === 'function' ? doc.ownerDocument() : doc;
  const rootSchema = root && root.$__schema;
  const options = (rootSchema && pluginOptionsOf(rootSchema)) || normalizeOptions({});
  const index = doc.$isSubdocument ? SUBDOCUMENT_LEAVES.get(doc.$__schema) : rootSchema && indexOf(rootSchema);
  if (!index) return ret;
  const include = callOptions && typeof callOptions.includeDecrypted === 'boolean' ? callOptions.includeDecrypted : options.includeDecrypted;
  if (!doc.$isSubdocument) plainMapValues(index, ret, callOptions);
  if (!include) return omitPlain(index, ret);
  const model = root && !root.$isSubdocument ? root.constructor : undefined;
  const ctx = { options: { ...options, allowUnencrypted: true }, modelName: model && model.modelName, bson: bsonOf(rootSchema, model), documentId: root && root._id };
  return decryptPlain(ctx, index, ret);
}

/**
 * toObject() leaves the values of a Map of subdocuments as documents; the
 * output filter works on plain objects, so those become their own
 * toObject()/toJSON() output (what JSON.stringify would make of them).
 */
function plainMapValues(index, ret, callOptions) {
  for (const container of index.containers.values()) {
    if (container.kind !== 'map') continue;
    forEachAtPath(ret, container.path, (map) => {
      if (map === null || typeof map !== 'object') return;
      const entries = map instanceof Map ? [...map] : Object.entries(map);
      for (const [key, value] of entries) {
        if (!isDocument(value)) continue;
        const plain = value.toObject(callOptions);
        if (map instanceof Map) map.set(key, plain);
        else map[key] = plain;
      }
    });
  }
}

const OUTPUT_FILTER = Symbol('fieldcrypt.outputFilter');

/** Puts outputFilter in front of the schema's toJSON and toObject transforms (once). */
function installOutputFilter(schema) {
  for (const kind of ['toJSON', 'toObject']) {
    const current = schema.get(kind) || {};
    if (current.transform && current.transform[OUTPUT_FILTER]) continue;
    const inner = current.transform;
    const transform = named(`fieldcrypt${kind.slice(2)}Filter`, function (doc, ret, callOptions) {
      const filtered = outputFilter(doc, ret, callOptions);
      return typeof inner === 'function' ? inner.call(this, doc, filtered, callOptions) : filtered;
    });
    Object.defineProperty(transform, OUTPUT_FILTER, { value: true });
    schema.set(kind, { ...current, transform });
  }
}

module.exports = {
  fieldEncryption,
  decryptDocument,
  encryptedPaths,
  // For tests and the CLI:
  normalizeOptions,
  pluginOptionsOf,
};
