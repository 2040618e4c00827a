'use strict';

/**
 * Fixtures for the searchable paths (issue 20): the seed's Patient and
 * Learner schemas with searchable encrypted paths of every kind, their
 * stored documents built directly (ciphertexts from the core, index values
 * from the contract's derivation in node:crypto, independent of
 * lib/core/blind-index.js), and the plaintexts to look for in commands.
 *
 *   k_path = HKDF-SHA256(index key, salt "fieldcrypt/blind-index/v1",
 *                        info collection 0x00 path, 32)
 *   value  = VV ":" hex(HMAC-SHA256(k_path, input))
 *
 * Two index-key versions are live (02 current): some documents are indexed
 * under 01, others under 02, so every lookup must find both.
 */

const crypto = require('node:crypto');

require('./plugin-helpers'); // sets the test encryption key first
const { fieldEncryption, encrypt } = require('..');
const { encodeValue } = require('../lib/core/codec');
const { configureIndexKeys } = require('../lib/core/blind-index');

const INDEX_KEYS = {
  '01': '3a1f5c7e9b2d4f6a8c0e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f2a4c6e8b0d1f3a',
  '02': '7d2e4f6a8b0c1d3e5f7a9b2c4d6e8f0a2b4c6d8e0f1a3b5c7d9e2f4a6b8c0d1e',
};
configureIndexKeys(INDEX_KEYS, { current: '02' });

/** The contract's index value, in node:crypto. */
function indexValue(version, collection, path, input) {
  const info = Buffer.concat([Buffer.from(collection, 'utf8'), Buffer.from([0]), Buffer.from(path, 'utf8')]);
  const key = crypto.hkdfSync('sha256', Buffer.from(INDEX_KEYS[version], 'hex'), 'fieldcrypt/blind-index/v1', info, 32);
  return `${version}:${crypto.createHmac('sha256', Buffer.from(key)).update(input, 'utf8').digest('hex')}`;
}

/** Both live versions' index values of one input. */
function indexValues(collection, path, input) {
  return ['02', '01'].map((version) => indexValue(version, collection, path, input));
}

function patientSchema(mongoose) {
  const { Schema } = mongoose;
  const schema = new Schema({
    name: String,
    tag: String,
    patientRecord: {
      ssn: { type: String, encrypted: true, searchable: true },
      // Compared as a whole: its canonical encoding (sorted keys) is indexed.
      billing: { type: Schema.Types.Mixed, encrypted: true, searchable: true },
    },
    medications: [{ type: String, encrypted: true, searchable: true }],
    age: { type: Number, encrypted: true, searchable: true },
    email: { type: String, encrypted: true, searchable: { trim: true, lowercase: true } },
    notes: { type: String, encrypted: true },
  });
  schema.plugin(fieldEncryption);
  return schema;
}

function learnerSchema(mongoose) {
  const { Schema } = mongoose;
  const Identification = new Schema({ idType: String, idNumber: { type: String, encrypted: true } });
  const schema = new Schema({ name: String, tag: String, personExtended: { identifications: [Identification] } });
  // The plugin option form of `searchable`.
  schema.plugin(fieldEncryption, { searchable: ['personExtended.identifications.idNumber'] });
  return schema;
}

const PATIENTS = [
  {
    name: 'p1',
    version: '01',
    ssn: '987-65-4320',
    billing: { type: 'Visa', number: '4111111111111111' },
    medications: ['Atorvastatin', 'Metformin'],
    age: 42.0625,
    email: 'alice@example.com',
  },
  {
    name: 'p2',
    version: '02',
    ssn: '987-65-4321',
    billing: { type: 'Amex', number: '378282246310005' },
    medications: ['Lisinopril', 'Atorvastatin'],
    age: 57.5,
    email: 'bob@example.com',
  },
  { name: 'p3', version: '02', ssn: '123-45-6789', medications: ['Metformin'], notes: 'notes-zz' },
];

const LEARNERS = [
  {
    name: 'l1',
    version: '01',
    ids: [
      { idType: 'passport', idNumber: 'P1234567' },
      { idType: 'license', idNumber: 'D7654321' },
    ],
  },
  { name: 'l2', version: '02', ids: [{ idType: 'passport', idNumber: 'P7777777' }] },
];

/** The canonical encoding of a billing object (keys sorted), as indexInput() gives it. */
function canonicalBilling(billing) {
  return JSON.stringify(
    Object.fromEntries(
      Object.keys(billing)
        .sort()
        .map((k) => [k, billing[k]]),
    ),
  );
}

/** The stored form of a patient, exactly as the plugin's write side stores it (per the contract). */
function storedPatient(mongoose, p) {
  const { BSON, ObjectId } = mongoose.mongo;
  const idx = (path, input) => indexValue(p.version, 'patients', path, input);
  const doc = { _id: new ObjectId(), name: p.name, patientRecord: {} };
  doc.patientRecord.ssn = encrypt(p.ssn);
  doc.patientRecord.ssn_bidx = idx('patientRecord.ssn', p.ssn);
  if (p.billing) {
    doc.patientRecord.billing = encodeValue(p.billing, BSON);
    doc.patientRecord.billing_bidx = idx('patientRecord.billing', canonicalBilling(p.billing));
  }
  doc.medications = p.medications.map((m) => encrypt(m));
  doc.medications_bidx = p.medications.map((m) => idx('medications', m));
  if (p.age !== undefined) {
    doc.age = encodeValue(p.age, BSON);
    doc.age_bidx = idx('age', String(p.age));
  }
  if (p.email) {
    doc.email = encrypt(p.email);
    doc.email_bidx = idx('email', p.email);
  }
  if (p.notes) doc.notes = encrypt(p.notes);
  return doc;
}

function storedLearner(mongoose, l) {
  const { ObjectId } = mongoose.mongo;
  const path = 'personExtended.identifications.idNumber';
  return {
    _id: new ObjectId(),
    name: l.name,
    personExtended: {
      identifications: l.ids.map((id) => ({
        _id: new ObjectId(),
        idType: id.idType,
        idNumber: encrypt(id.idNumber),
        idNumber_bidx: indexValue(l.version, 'learners', path, id.idNumber),
      })),
    },
  };
}

/** Every plaintext of the fixtures: none may appear in a command. */
const PLAINTEXTS = [
  ...PATIENTS.flatMap((p) => [
    p.ssn,
    ...p.medications,
    ...(p.billing ? [p.billing.number, p.billing.type] : []),
    ...(p.age !== undefined ? [p.age, String(p.age)] : []),
    ...(p.email ? [p.email] : []),
    ...(p.notes ? [p.notes] : []),
  ]),
  ...LEARNERS.flatMap((l) => l.ids.map((id) => id.idNumber)),
  // Plaintexts only queried for (found nowhere).
  '000-00-0000',
  'Ibuprofen',
  'ALICE@EXAMPLE.COM',
];

module.exports = {
  INDEX_KEYS,
  indexValue,
  indexValues,
  patientSchema,
  learnerSchema,
  PATIENTS,
  LEARNERS,
  canonicalBilling,
  storedPatient,
  storedLearner,
  PLAINTEXTS,
};
