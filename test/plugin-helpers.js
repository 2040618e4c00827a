'use strict';

/**
 * Fixtures for test/plugin-*.test.js: the fieldEncryption plugin against a
 * real server (FerretDB, mongo-java-server, or MONGODB_URI), on Mongoose 9
 * and Mongoose 8.
 *
 * - defineRecord(): a schema with an encrypted path of every kind (top-level,
 *   nested, single nested, document array, array of primitives, Map of
 *   primitives, Map of subdocuments, a default) and of every type (String,
 *   Number, Date, Boolean, Buffer, Decimal128, ObjectId, Mixed).
 * - recordValues(): distinct plaintexts for one test. Strings contain 'zz'
 *   (never in hex), numbers have unusual fractions, so finding one in a
 *   command or a raw document cannot be a coincidence.
 * - monitor(): the driver's command monitoring; every command is snapshotted
 *   (BSON round trip) when it starts, i.e. exactly as it is sent.
 * - findPlaintexts(): where any of the plaintexts occurs in a value (a
 *   command, a raw document), typed: strings and Buffers by content, numbers,
 *   Dates, Decimal128 and ObjectIds by value, booleans by the path they are at.
 */

const assert = require('node:assert/strict');
const test = require('node:test');

// A fixed test key, set before fieldcrypt first needs one (keys load lazily).
for (const name of Object.keys(process.env)) if (name.startsWith('ENCRYPTION_KEY')) delete process.env[name];
process.env.ENCRYPTION_KEY = '8c6f2a1e0d9b4c7a5e3f1b2d4a6c8e0f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d';

const { fieldEncryption, encryptedPaths } = require('..');
const { forEachAtPath } = require('../lib/paths');
const { STORED_VALUE, withTimeout } = require('./harness');
const path = require('node:path');

/**
 * The server the tests run on, as test/run.js names it: 'ferretdb' or
 * 'mongo-java-server' (empty with an outside MONGODB_URI, unless set too).
 */
const TEST_SERVER = process.env.FIELDCRYPT_TEST_SERVER || '';

/**
 * Whether the server executes every update shape MongoDB does, positional
 * updates ($, $[], $[name] with arrayFilters) included: shapes FerretDB v1
 * rejects must then succeed, and their stored documents are checked too.
 * True on mongo-java-server (test/run.js's second server), and with
 * FIELDCRYPT_REAL_MONGODB=1, to set together with MONGODB_URI when that
 * server is MongoDB itself.
 */
const REAL_MONGODB =
  /^(1|true|yes)$/i.test(process.env.FIELDCRYPT_REAL_MONGODB || '') || TEST_SERVER === 'mongo-java-server';

/** Why positional checks are skipped on FerretDB. */
const FERRETDB_POSITIONAL =
  'FerretDB v1 does not implement positional updates ($, $[], $[name] with arrayFilters); ' +
  'they run on mongo-java-server (the second server of npm run test:mongoose) or MongoDB (MONGODB_URI)';

/**
 * Whether the server is FerretDB (which rejects positional updates), from
 * buildInfo; throws when that contradicts FIELDCRYPT_TEST_SERVER or
 * REAL_MONGODB, so that a misdirected run cannot skip checks it must run.
 */
async function isFerretDB(connection) {
  const info = await connection.db.admin().command({ buildInfo: 1 });
  const ferret = Boolean(info.ferretdbVersion || info.ferretdb || /ferretdb/i.test(JSON.stringify(info)));
  if (ferret && REAL_MONGODB) {
    throw new Error(
      `the run says the server executes positional updates (FIELDCRYPT_TEST_SERVER=${TEST_SERVER || '(unset)'}, ` +
        `FIELDCRYPT_REAL_MONGODB=${process.env.FIELDCRYPT_REAL_MONGODB || '(unset)'}), but buildInfo reports FerretDB`,
    );
  }
  if (!ferret && TEST_SERVER === 'ferretdb') {
    throw new Error(`FIELDCRYPT_TEST_SERVER=ferretdb, but buildInfo reports another server: ${JSON.stringify(info)}`);
  }
  return ferret;
}

/** A test with a timeout, so that a hang fails that test instead of stalling the run. */
const it = (name, fn) => test.it(name, (t) => withTimeout(fn(t), 30_000));

/** The paths the fixture encrypts through the plugin's `fields` option (the rest are marked `encrypted: true`). */
const FIELDS = [
  'ssn',
  'age',
  'born',
  'active',
  'photo',
  'balance',
  'ownerId',
  'count',
  'profile',
  'patientRecord.billing',
];
const STATUS_DEFAULT = 'status-default-zz';

function recordSchema(mongoose, pluginOptions = {}) {
  const { Schema } = mongoose;
  const Identification = new Schema({ idType: String, idNumber: { type: String, encrypted: true } });
  const Demographics = new Schema({ alienRegistrationNumber: { type: String, encrypted: true }, country: String });
  const Contact = new Schema({ phone: { type: String, encrypted: true }, label: String }, { _id: false });
  const schema = new Schema({
    name: String,
    ssn: String,
    age: Number,
    born: Date,
    active: Boolean,
    photo: Buffer,
    balance: Schema.Types.Decimal128,
    ownerId: Schema.Types.ObjectId,
    count: Schema.Types.BigInt,
    profile: Schema.Types.Mixed,
    patientRecord: { billing: { cardNumber: String, amount: Number }, ward: String },
    demographics: Demographics,
    identifications: [Identification],
    aliases: [{ type: String, encrypted: true }],
    scores: { type: [Number], encrypted: true },
    secrets: { type: Map, of: { type: String, encrypted: true } },
    contacts: { type: Map, of: Contact },
    status: { type: String, encrypted: true, default: STATUS_DEFAULT },
  });
  schema.plugin(fieldEncryption, { fields: FIELDS, ...pluginOptions });
  return schema;
}

function defineRecord(mongoose, connection, { name = 'Record', pluginOptions } = {}) {
  return connection.model(name, recordSchema(mongoose, pluginOptions));
}

/**
 * Like harness.openTestDatabase (this test file's own database, dropped
 * first), with the driver's command monitoring on.
 */
async function openMonitoredDatabase(mongoose, uri, testFile) {
  const file = path.basename(testFile, '.test.js').replace(/[^a-zA-Z0-9]/g, '_');
  const dbName = `fieldcrypt_test_${file}_${mongoose.version.split('.')[0]}`;
  const connection = await mongoose
    .createConnection(uri, { dbName, serverSelectionTimeoutMS: 15_000, monitorCommands: true })
    .asPromise();
  await connection.dropDatabase();
  return connection;
}

let counter = 0;

/** Distinct plaintexts for every encrypted path of the fixture. */
function recordValues(mongoose, tag = `v${++counter}`) {
  const n = ++counter;
  const { Decimal128, ObjectId } = mongoose.Types;
  return {
    name: `name-${tag}`,
    ssn: `ssn-${tag}-zz`,
    age: 1000 + n + 0.0625,
    born: new Date(Date.UTC(1970, 0, 1) + n * 86_400_000 + 123),
    active: n % 2 === 0,
    photo: Buffer.from(`photo-${tag}-zz`),
    balance: Decimal128.fromString(`${n}.4321`),
    ownerId: new ObjectId(),
    count: 9007199254740993n + BigInt(n),
    profile: { note: `profile-${tag}-zz`, level: n + 0.5, list: [`plist-${tag}-zz`, n + 0.75] },
    patientRecord: { billing: { cardNumber: `card-${tag}-zz`, amount: n + 0.3125 }, ward: 'east' },
    demographics: { alienRegistrationNumber: `arn-${tag}-zz`, country: 'UT' },
    identifications: [
      { idType: 'passport', idNumber: `pass-${tag}-zz` },
      { idType: 'license', idNumber: `lic-${tag}-zz` },
    ],
    aliases: [`aliasA-${tag}-zz`, `aliasB-${tag}-zz`],
    scores: [n + 0.125, n + 0.375],
    secrets: { k1: `secret1-${tag}-zz`, k2: `secret2-${tag}-zz` },
    contacts: { home: { phone: `phone-${tag}-zz`, label: 'home' } },
    // More plaintexts of the same kinds, for updates that add to the above.
    more: {
      alias: `aliasC-${tag}-zz`,
      score: n + 0.875,
      idNumber: `passC-${tag}-zz`,
      phone: `phoneW-${tag}-zz`,
      secret: `secret3-${tag}-zz`,
    },
  };
}

/** A record's values without `more` (what a document is created from). */
function docOf(values) {
  const { more, ...doc } = values;
  return doc;
}

/** The encrypted paths of a full record and their plaintexts, as concrete paths. */
function expectedOf(values) {
  const out = {};
  for (const key of ['ssn', 'age', 'born', 'active', 'photo', 'balance', 'ownerId', 'count', 'profile', 'status']) {
    if (values[key] !== undefined) out[key] = values[key];
  }
  if (values.patientRecord) {
    out['patientRecord.billing.cardNumber'] = values.patientRecord.billing.cardNumber;
    out['patientRecord.billing.amount'] = values.patientRecord.billing.amount;
  }
  if (values.demographics) out['demographics.alienRegistrationNumber'] = values.demographics.alienRegistrationNumber;
  (values.identifications || []).forEach((id, i) => {
    out[`identifications.${i}.idNumber`] = id.idNumber;
  });
  (values.aliases || []).forEach((a, i) => {
    out[`aliases.${i}`] = a;
  });
  (values.scores || []).forEach((s, i) => {
    out[`scores.${i}`] = s;
  });
  for (const [k, v] of Object.entries(values.secrets || {})) out[`secrets.${k}`] = v;
  for (const [k, v] of Object.entries(values.contacts || {})) out[`contacts.${k}.phone`] = v.phone;
  return out;
}

/** Every plaintext in `values` (recursively), for scanning. */
function plaintextsOf(...valueSets) {
  const out = [];
  const add = (v) => {
    if (v === null || v === undefined) return;
    if (Array.isArray(v)) return v.forEach(add);
    if (typeof v === 'object' && !Buffer.isBuffer(v) && !(v instanceof Date) && !v._bsontype)
      return Object.values(v).forEach(add);
    out.push(v);
  };
  for (const values of valueSets) {
    const { name, ...rest } = values; // name is not encrypted
    for (const [key, v] of Object.entries(rest)) {
      if (key === 'active') continue; // booleans are checked by path
      if (key === 'patientRecord') add(v.billing);
      else if (key === 'demographics') add(v.alienRegistrationNumber);
      else if (key === 'identifications') add(v.map((id) => id.idNumber));
      else if (key === 'contacts') add(Object.values(v).map((c) => c.phone));
      else add(v);
    }
  }
  out.push(STATUS_DEFAULT);
  return out;
}

const BOOLEAN_KEYS = new Set(['active']);

/**
 * Where any plaintext occurs in `value`; returns descriptions ([] when none).
 * Booleans are found as a boolean under a key named like an encrypted Boolean path.
 */
function findPlaintexts(value, plaintexts) {
  const strings = plaintexts.filter((p) => typeof p === 'string');
  const buffers = plaintexts.filter((p) => Buffer.isBuffer(p));
  const numbers = new Set(plaintexts.filter((p) => typeof p === 'number'));
  const bigints = new Set(plaintexts.filter((p) => typeof p === 'bigint').map(String));
  const dates = new Set(plaintexts.filter((p) => p instanceof Date).map((d) => d.getTime()));
  const bsons = plaintexts.filter((p) => p && p._bsontype).map((p) => `${p._bsontype}:${p.toString()}`);
  const found = [];
  const visit = (v, key, at) => {
    if (v === null || v === undefined) return;
    if (typeof v === 'string') {
      for (const s of strings) if (v.includes(s)) found.push(`${at}: "${s}"`);
      return;
    }
    if (typeof v === 'number') {
      if (numbers.has(v)) found.push(`${at}: ${v}`);
      return;
    }
    if (typeof v === 'bigint' || (v && v._bsontype === 'Long')) {
      if (bigints.has(v.toString())) found.push(`${at}: ${v}`);
      return;
    }
    if (typeof v === 'boolean') {
      const last = String(key)
        .split('.')
        .filter((p) => !/^(\d+|\$.*)$/.test(p))
        .pop();
      if (BOOLEAN_KEYS.has(last)) found.push(`${at}: boolean at an encrypted Boolean path`);
      return;
    }
    if (v instanceof Date) {
      if (dates.has(v.getTime())) found.push(`${at}: ${v.toISOString()}`);
      return;
    }
    if (Buffer.isBuffer(v) || v._bsontype === 'Binary') {
      const bytes = Buffer.isBuffer(v) ? v : Buffer.from(v.buffer);
      for (const b of buffers) if (bytes.includes(b)) found.push(`${at}: bytes ${b.toString('latin1')}`);
      for (const s of strings) if (bytes.includes(Buffer.from(s))) found.push(`${at}: "${s}" in binary`);
      return;
    }
    if (v._bsontype) {
      const id = `${v._bsontype}:${v.toString()}`;
      if (bsons.includes(id)) found.push(`${at}: ${id}`);
      return;
    }
    if (v instanceof Map) {
      for (const [k, x] of v) visit(x, k, `${at}.${k}`);
      return;
    }
    if (typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) visit(x, k, at ? `${at}.${k}` : k);
    }
  };
  visit(value, '', '');
  return found;
}

/**
 * Command monitoring on a connection opened with `monitorCommands: true`.
 * `during(fn)` runs fn and returns { result, error, commands }.
 */
function monitor(connection, mongoose) {
  const { BSON } = mongoose.mongo;
  let commands = null;
  connection.getClient().on('commandStarted', (event) => {
    if (commands === null) return;
    // Snapshot now: the command's objects may be changed after it is sent
    // (a saved document shows its plaintext again).
    const snapshot = BSON.deserialize(BSON.serialize(event.command), { promoteBuffers: true });
    commands.push({ name: event.commandName, command: snapshot });
  });
  return {
    async during(fn) {
      commands = [];
      let result;
      let error;
      try {
        result = await fn();
      } catch (err) {
        error = err;
      }
      const sent = commands;
      commands = null;
      return { result, error, commands: sent };
    },
  };
}

/** Check 1: no command contains a plaintext. */
function assertNothingInClear(commands, plaintexts) {
  for (const { name, command } of commands) {
    const found = findPlaintexts(command, plaintexts);
    assert.deepEqual(found, [], `the ${name} command sent a plaintext: ${found.join(', ')}`);
  }
}

/** The error a server gives for an update shape it does not implement (FerretDB v1). */
function isServerRejection(err) {
  return (
    Boolean(err) && (err.name === 'MongoServerError' || err.name === 'MongoBulkWriteError') && err.code !== undefined
  );
}

/**
 * Check 2 on a raw document: no plaintext anywhere, every encrypted path of
 * the model holds a well-formed ciphertext.
 */
function assertStoredEncrypted(Model, raw, plaintexts) {
  assert.ok(raw, 'the document is stored');
  const found = findPlaintexts(raw, plaintexts);
  assert.deepEqual(found, [], `the stored document contains a plaintext: ${found.join(', ')}`);
  let count = 0;
  for (const path of encryptedPaths(Model)) {
    forEachAtPath(raw, path, (value, set, where) => {
      count++;
      assert.equal(typeof value, 'string', `${where} holds a string`);
      assert.match(value, STORED_VALUE, `${where} holds a well-formed VV:IV:TAG:CT value`);
    });
  }
  return count;
}

/** The value at a concrete dotted path of a plain object or a document (Maps too). */
function valueAt(obj, path) {
  let v = obj;
  for (const part of path.split('.')) {
    if (v === null || v === undefined) return undefined;
    v = v instanceof Map ? v.get(part) : v[part];
  }
  return v;
}

/** Typed equality: the value and its type (Date, Buffer, Decimal128, ObjectId, number, boolean, string, objects). */
function assertSameTyped(actual, expected, where) {
  if (expected instanceof Date) {
    assert.ok(
      actual instanceof Date,
      `${where} is a Date (got ${actual && actual.constructor && actual.constructor.name})`,
    );
    assert.equal(actual.getTime(), expected.getTime(), where);
  } else if (Buffer.isBuffer(expected)) {
    assert.ok(
      Buffer.isBuffer(actual),
      `${where} is a Buffer (got ${actual && actual.constructor && actual.constructor.name})`,
    );
    assert.ok(Buffer.from(actual).equals(expected), `${where} has the same bytes`);
  } else if (expected && expected._bsontype) {
    assert.equal(actual && actual._bsontype, expected._bsontype, `${where} is a ${expected._bsontype}`);
    assert.equal(actual.toString(), expected.toString(), where);
  } else if (Array.isArray(expected)) {
    assert.ok(Array.isArray(actual), `${where} is an array`);
    assert.equal(actual.length, expected.length, `${where} length`);
    expected.forEach((e, i) => assertSameTyped(actual[i], e, `${where}.${i}`));
  } else if (expected !== null && typeof expected === 'object') {
    assert.equal(typeof actual, 'object', `${where} is an object`);
    assert.deepEqual(Object.keys(actual).sort(), Object.keys(expected).sort(), `${where} keys`);
    for (const k of Object.keys(expected)) assertSameTyped(actual[k], expected[k], `${where}.${k}`);
  } else {
    // (typeof covers bigint: a BigInt path comes back as a bigint, not a number or Long)
    assert.equal(typeof actual, typeof expected, `${where} is a ${typeof expected}`);
    assert.equal(actual, expected, where);
  }
}

/** Reads the document back hydrated and lean; every expected path has its value and type. */
async function assertReadBack(Model, _id, expected) {
  const hydrated = await Model.findById(_id);
  const lean = await Model.findById(_id).lean();
  assert.ok(hydrated && lean, 'the document reads back');
  for (const [path, value] of Object.entries(expected)) {
    assertSameTyped(hydrated.get(path), value, `hydrated ${path}`);
    assertSameTyped(valueAt(lean, path), value, `lean ${path}`);
  }
  return { hydrated, lean };
}

module.exports = {
  TEST_SERVER,
  REAL_MONGODB,
  FERRETDB_POSITIONAL,
  isFerretDB,
  it,
  openMonitoredDatabase,
  docOf,
  FIELDS,
  STATUS_DEFAULT,
  recordSchema,
  defineRecord,
  recordValues,
  expectedOf,
  plaintextsOf,
  findPlaintexts,
  monitor,
  assertNothingInClear,
  isServerRejection,
  assertStoredEncrypted,
  assertSameTyped,
  assertReadBack,
  valueAt,
};
