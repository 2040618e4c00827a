'use strict';

/**
 * Fixtures for test/plugin-search-*.test.js (issue 20, blind indexes): the
 * seed's Patient and Learner schemas with searchable paths, and the index
 * values they must store, computed here independently of fieldcrypt with
 * node:crypto, exactly as the contract defines them:
 *
 *   k_path = HKDF-SHA256(ikm = index key, salt = "fieldcrypt/blind-index/v1",
 *                        info = collection || 0x00 || path, L = 32)
 *   value  = "VV:" + hex(HMAC-SHA256(k_path, input))
 *
 * Strings in the fixtures are chosen so that their index input is the
 * string itself (after the path's normalisers, applied here by hand); the
 * container's input is its canonical JSON (sorted keys, no whitespace).
 */

const assert = require('node:assert/strict');
const crypto = require('node:crypto');

// Fixed test keys, set before fieldcrypt first needs them (keys load lazily).
for (const name of Object.keys(process.env)) if (name.startsWith('ENCRYPTION_INDEX_KEY')) delete process.env[name];
const INDEX_KEY = '5d3b1f2e4a6c8e0f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d8c6f2a1e0d9b4c7a';
process.env.ENCRYPTION_INDEX_KEY = INDEX_KEY;

const helpers = require('./plugin-helpers'); // sets ENCRYPTION_KEY
const { fieldEncryption, decrypt } = require('..');
const { STORED_VALUE } = require('./harness');

const INDEX_VALUE = /^\d\d:[0-9a-f]{64}$/;

/** The reference index value (version 01) of `input` at `path` of `collection`. */
function refIndex(collection, path, input) {
  const info = Buffer.concat([Buffer.from(collection), Buffer.from([0]), Buffer.from(path)]);
  const key = Buffer.from(
    crypto.hkdfSync('sha256', Buffer.from(INDEX_KEY, 'hex'), Buffer.from('fieldcrypt/blind-index/v1'), info, 32),
  );
  return `01:${crypto.createHmac('sha256', key).update(Buffer.from(input, 'utf8')).digest('hex')}`;
}

/** Canonical JSON of a plain object of strings (the container's index input): keys sorted, no whitespace. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * Patient: `patientRecord.ssn` (searchable, trim, unique), `patientRecord.billing`
 * (an object encrypted as a whole, searchable), `medications` (an encrypted
 * array of strings, searchable, lowercase).
 */
function definePatient(mongoose, connection, name = 'Patient', afterPlugin = () => {}) {
  const { Schema } = mongoose;
  const schema = new Schema({
    name: String,
    patientRecord: {
      ssn: { type: String, encrypted: true, searchable: { trim: true, unique: true } },
      billing: { type: Schema.Types.Mixed, encrypted: true, searchable: true },
      ward: String,
    },
    medications: [{ type: String, encrypted: true, searchable: { lowercase: true } }],
  });
  schema.plugin(fieldEncryption);
  afterPlugin(schema);
  return connection.model(name, schema);
}

/** Learner: `personExtended.identifications.idNumber` in a document array, searchable through the plugin option. */
function defineLearner(mongoose, connection, name = 'Learner') {
  const { Schema } = mongoose;
  const Identification = new Schema({ type: { type: String }, idNumber: { type: String, encrypted: true } });
  const schema = new Schema({ name: String, personExtended: { identifications: [Identification] } });
  schema.plugin(fieldEncryption, { searchable: ['personExtended.identifications.idNumber'] });
  return connection.model(name, schema);
}

let counter = 0;

/** Distinct plaintexts (each contains 'zz', never in hex) for a patient. */
function patientValues(tag = `p${++counter}`) {
  return {
    ssn: `ssn-${tag}-zz`,
    billing: { type: 'Visa', number: `4111-${tag}-zz` },
    medications: [`med-a-${tag}-zz`, `med-b-${tag}-zz`],
    more: { ssn: `ssn2-${tag}-zz`, med: `med-c-${tag}-zz`, med2: `med-d-${tag}-zz`, number: `5500-${tag}-zz` },
  };
}

function learnerValues(tag = `l${++counter}`) {
  return {
    identifications: [
      { type: 'passport', idNumber: `P-${tag}-zz` },
      { type: 'license', idNumber: `L-${tag}-zz` },
    ],
    more: { idNumber: `V-${tag}-zz`, idNumber2: `W-${tag}-zz` },
  };
}

/** Every plaintext of `values` (for scanning commands and raw documents). */
function plaintextsOf(...sets) {
  const out = [];
  const add = (v) => {
    if (v === null || v === undefined) return;
    if (Array.isArray(v)) return v.forEach(add);
    if (typeof v === 'object') return Object.values(v).forEach(add);
    if (typeof v === 'string' && v.includes('zz')) out.push(v, v.toLowerCase(), v.toUpperCase());
  };
  sets.forEach(add);
  return [...new Set(out)];
}

/** Asserts that `stored` holds a ciphertext of `plain` (or nothing when plain is undefined). */
function assertCipherOf(stored, plain, where) {
  if (plain === undefined || plain === null) {
    assert.ok(stored === undefined || stored === null, `${where} holds nothing`);
    return;
  }
  assert.match(stored, STORED_VALUE, `${where} is a ciphertext`);
  const text = typeof plain === 'string' ? decrypt(stored) : null;
  if (typeof plain === 'string') assert.equal(text, plain, `${where} decrypts to its value`);
}

/**
 * The raw patient holds exactly the expected state: ciphertexts of each
 * value, and the reference index value beside each (none beside a missing
 * value); `medications_bidx` in element order.
 */
function assertPatientStored(raw, expected, collection) {
  assert.ok(raw, 'the patient is stored');
  const record = raw.patientRecord || {};
  assertCipherOf(record.ssn, expected.ssn, 'patientRecord.ssn');
  assert.equal(
    record.ssn_bidx,
    expected.ssn === undefined ? undefined : refIndex(collection, 'patientRecord.ssn', expected.ssn.trim()),
    'patientRecord.ssn_bidx is the index of the stored ssn',
  );
  if (expected.billing === undefined) {
    assert.equal(record.billing, undefined);
    assert.equal(record.billing_bidx, undefined, 'no billing_bidx without billing');
  } else {
    assert.match(record.billing, STORED_VALUE, 'billing is a ciphertext');
    assert.equal(record.billing_bidx, refIndex(collection, 'patientRecord.billing', canonical(expected.billing)));
  }
  const meds = expected.medications;
  if (meds === undefined) {
    // (Mongoose stores an empty array for a missing array path on inserts; its index is empty too.)
    assert.ok(!raw.medications || raw.medications.length === 0, 'no medications');
    assert.deepEqual(raw.medications_bidx, raw.medications, 'medications_bidx as medications (none or empty)');
  } else {
    assert.equal(raw.medications.length, meds.length, 'medications length');
    meds.forEach((m, i) => assertCipherOf(raw.medications[i], m, `medications.${i}`));
    assert.deepEqual(
      raw.medications_bidx,
      meds.map((m) => refIndex(collection, 'medications', m.toLowerCase())),
      'medications_bidx: the index of each element, in order',
    );
  }
}

/** The stored indexes follow the stored values (whatever the server made of an update). */
function assertPatientConsistent(raw, collection) {
  const record = raw.patientRecord || {};
  assert.equal(
    record.ssn_bidx,
    record.ssn ? refIndex(collection, 'patientRecord.ssn', decrypt(record.ssn).trim()) : undefined,
    'ssn_bidx follows ssn',
  );
  const meds = raw.medications || [];
  assert.deepEqual(
    raw.medications_bidx || [],
    meds.map((m) => refIndex(collection, 'medications', decrypt(m).toLowerCase())),
    'medications_bidx follows medications',
  );
}

function assertLearnerConsistent(raw, collection) {
  const ids = (raw.personExtended && raw.personExtended.identifications) || [];
  ids.forEach((id, i) =>
    assert.equal(
      id.idNumber_bidx,
      id.idNumber ? refIndex(collection, 'personExtended.identifications.idNumber', decrypt(id.idNumber)) : undefined,
      `identifications.${i}.idNumber_bidx follows its idNumber`,
    ),
  );
}

/** The raw learner's identifications: each idNumber a ciphertext with its index beside it. */
function assertLearnerStored(raw, expected, collection) {
  assert.ok(raw, 'the learner is stored');
  const ids = (raw.personExtended && raw.personExtended.identifications) || [];
  assert.equal(ids.length, expected.length, 'identifications length');
  expected.forEach((e, i) => {
    assert.equal(ids[i].type, e.type, `identifications.${i}.type`);
    assertCipherOf(ids[i].idNumber, e.idNumber, `identifications.${i}.idNumber`);
    assert.equal(
      ids[i].idNumber_bidx,
      e.idNumber === undefined
        ? undefined
        : refIndex(collection, 'personExtended.identifications.idNumber', e.idNumber),
      `identifications.${i}.idNumber_bidx is the index of its idNumber`,
    );
  });
}

/** No key ending in `_bidx` anywhere in an output object (toJSON, toObject, lean). */
function assertNoIndexValues(value, where) {
  const found = [];
  const visit = (v, at) => {
    if (v === null || typeof v !== 'object') return;
    for (const [k, x] of Object.entries(v)) {
      if (k.endsWith('_bidx')) found.push(`${at}${k}`);
      visit(x, `${at}${k}.`);
    }
  };
  visit(value, '');
  assert.deepEqual(found, [], `${where} shows no index value`);
}

module.exports = {
  ...helpers,
  INDEX_KEY,
  INDEX_VALUE,
  refIndex,
  canonical,
  definePatient,
  defineLearner,
  patientValues,
  learnerValues,
  searchPlaintexts: plaintextsOf,
  assertPatientStored,
  assertLearnerStored,
  assertPatientConsistent,
  assertLearnerConsistent,
  assertNoIndexValues,
};
