'use strict';

/**
 * Fixtures for test/plugin-binding*.test.js: a schema whose encrypted paths
 * are bound in every way (the plugin's `bind: 'document'` default, a path
 * overriding it with 'collection', one with `bind: false`, through document
 * arrays, arrays of primitives and Maps), and the checks on raw documents:
 * each bound value decrypts with storedValueContext(collection, path, id)
 * and with nothing else.
 */

const assert = require('node:assert/strict');

const fieldcrypt = require('..');
const { storedValueContext } = require('../lib/core/context');
const { pathBindings } = require('../lib/mongoose/plugin');
const { forEachAtPath } = require('../lib/paths');
const { STORED_VALUE } = require('./harness');
// Whether the server is FerretDB (which rejects positional updates), checked against the run's settings.
const { isFerretDB } = require('./plugin-helpers');

/** The raw path -> bind mode the fixture declares (pathBindings() must agree). */
const BINDINGS = {
  ssn: 'document',
  age: 'collection',
  'identifications.idNumber': 'document',
  aliases: 'document',
  'secrets.$*': 'document',
};
const UNBOUND_PATHS = ['note'];

function boundSchema(mongoose, pluginOptions = {}) {
  const { Schema } = mongoose;
  const Identification = new Schema({ idType: String, idNumber: { type: String, encrypted: true } });
  const schema = new Schema({
    name: String,
    ssn: { type: String, encrypted: true },
    age: { type: Number, encrypted: true, bind: 'collection' },
    note: { type: String, encrypted: true, bind: false },
    identifications: [Identification],
    aliases: [{ type: String, encrypted: true }],
    secrets: { type: Map, of: { type: String, encrypted: true } },
  });
  schema.plugin(fieldcrypt.fieldEncryption, { bind: 'document', ...pluginOptions });
  return schema;
}

let counter = 0;

/** Distinct plaintexts ('zz' never occurs in hex; the number has an unusual fraction). */
function boundValues(tag = `b${++counter}`) {
  const n = ++counter;
  return {
    name: `name-${tag}`,
    ssn: `ssn-${tag}-zz`,
    age: 2000 + n + 0.0625,
    note: `note-${tag}-zz`,
    identifications: [
      { idType: 'passport', idNumber: `pass-${tag}-zz` },
      { idType: 'license', idNumber: `lic-${tag}-zz` },
    ],
    aliases: [`aliasA-${tag}-zz`, `aliasB-${tag}-zz`],
    secrets: { k1: `secret1-${tag}-zz` },
  };
}

/** Every plaintext of boundValues() (for command monitoring and raw scans). */
function plaintextsOfBound(...sets) {
  const out = [];
  for (const v of sets) {
    out.push(v.ssn, v.age, v.note, ...v.aliases, ...Object.values(v.secrets));
    for (const id of v.identifications) out.push(id.idNumber);
  }
  return out;
}

/** The concrete paths of a raw document holding encrypted values: [{ raw path, concrete, stored }]. */
function storedValues(raw) {
  const out = [];
  for (const path of [...Object.keys(BINDINGS), ...UNBOUND_PATHS]) {
    forEachAtPath(raw, path, (stored, set, concrete) => out.push({ path, concrete, stored }));
  }
  return out;
}

/** The plaintext of a stored value (strings as text, numbers through decodeValue). */
function opened(stored, options) {
  const bytes = fieldcrypt.decryptBuffer(stored, options);
  return bytes[0] === 0xff ? bytes : bytes.toString('utf8');
}

/**
 * Every encrypted value of a raw document is bound as the schema says: it
 * decrypts with storedValueContext(collection, raw path, EJSON _id) to
 * `expected[concrete path]` (when given), and not without a context, nor at
 * another document, path or collection. Unbound paths decrypt without one.
 * Returns the number of values checked.
 */
function assertBound(mongoose, Model, raw, expected = {}) {
  assert.ok(raw, 'the document is stored');
  const { BSON } = mongoose.mongo;
  const collection = Model.collection.collectionName;
  const id = BSON.EJSON.stringify(raw._id, { relaxed: false });
  const otherId = BSON.EJSON.stringify(new mongoose.Types.ObjectId(), { relaxed: false });
  const values = storedValues(raw);
  for (const { path, concrete, stored } of values) {
    assert.match(stored, STORED_VALUE, `${concrete} holds a well-formed value`);
    const bind = BINDINGS[path];
    if (!bind) {
      const text = fieldcrypt.decrypt(stored);
      if (expected[concrete] !== undefined) assert.equal(text, expected[concrete], concrete);
      continue;
    }
    const here = storedValueContext(collection, path, bind === 'document' ? id : undefined);
    const plain = opened(stored, { context: here });
    if (typeof expected[concrete] === 'string') assert.equal(plain, expected[concrete], concrete);
    const code = (options, want) =>
      assert.throws(
        () => fieldcrypt.decryptBuffer(stored, options),
        (err) => err.code === want,
        `${concrete} must not decrypt with ${JSON.stringify(options && options.context)}`,
      );
    code(undefined, fieldcrypt.errorCodes.AUTH_FAILED);
    code({ context: { ...here, path: `${path}x` } }, fieldcrypt.errorCodes.CONTEXT_MISMATCH);
    code({ context: { ...here, collection: `${collection}x` } }, fieldcrypt.errorCodes.CONTEXT_MISMATCH);
    if (bind === 'document') {
      code({ context: { ...here, id: otherId } }, fieldcrypt.errorCodes.CONTEXT_MISMATCH);
      code({ context: storedValueContext(collection, path) }, fieldcrypt.errorCodes.CONTEXT_MISMATCH);
    } else {
      code({ context: storedValueContext(collection, path, id) }, fieldcrypt.errorCodes.CONTEXT_MISMATCH);
    }
  }
  return values.length;
}

/** The expected plaintexts of a document made from boundValues(), by concrete path. */
function expectedBound(v) {
  const out = { ssn: v.ssn, note: v.note };
  v.identifications.forEach((x, i) => {
    out[`identifications.${i}.idNumber`] = x.idNumber;
  });
  v.aliases.forEach((a, i) => {
    out[`aliases.${i}`] = a;
  });
  for (const [k, s] of Object.entries(v.secrets)) out[`secrets.${k}`] = s;
  return out;
}

module.exports = {
  BINDINGS,
  boundSchema,
  boundValues,
  plaintextsOfBound,
  storedValues,
  assertBound,
  expectedBound,
  isFerretDB,
  pathBindings,
};
