'use strict';

// The README's fieldEncryption example runs, as written, on Mongoose 9 and
// Mongoose 8, and does what its comments say. The block is the ```js fence
// after the "run by test/plugin-readme.test.js" marker; its `import` lines are
// replaced by the names they import, `model` by this file's connection.

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const { it, openMonitoredDatabase, monitor, assertNothingInClear, assertStoredEncrypted } = require('./plugin-helpers');
const { startServer, mongooseVersions, closeTestDatabase } = require('./harness');
const fieldcrypt = require('..');

const README = fs.readFileSync(path.join(__dirname, '..', 'README.md'), 'utf8');
const MARKER = 'run by test/plugin-readme.test.js';

function readmeExample() {
  const at = README.indexOf(MARKER);
  assert.ok(at > 0, 'the README marks its plugin example');
  const match = /```js\n([\s\S]*?)```/.exec(README.slice(at));
  assert.ok(match, 'a js block follows the marker');
  const code = match[1];
  assert.match(code, /^import \{ Schema, model \} from 'mongoose';\nimport \{ fieldEncryption \} from 'fieldcrypt';\n/);
  return code.replace(/^import .*\n/gm, '');
}

const PLAINTEXTS = [
  '123-45-6789',
  '4111-1111-1111-1111',
  120.5,
  99.5,
  'X1234567',
  'penicillin',
  'latex',
  new Date('1815-12-10'),
];

describe('README: the fieldEncryption example', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { mongoose, label } of mongooseVersions()) {
    it(`runs as written on ${label}`, async () => {
      const connection = await openMonitoredDatabase(mongoose, server.uri, __filename);
      try {
        const watch = monitor(connection, mongoose);
        const AsyncFunction = (async () => {}).constructor;
        const run = new AsyncFunction(
          'Schema',
          'model',
          'fieldEncryption',
          `${readmeExample()}\nreturn { Patient, patient, found, lean, refused };`,
        );
        const { result, error, commands } = await watch.during(() =>
          run(mongoose.Schema, (name, schema) => connection.model(name, schema), fieldcrypt.fieldEncryption),
        );
        assert.ifError(error);
        const { Patient, patient, found, lean, refused } = result;
        assertNothingInClear(commands, PLAINTEXTS);

        // What the comments say.
        assert.equal(patient.ssn, '123-45-6789');
        assert.ok(found.birthDate instanceof Date);
        assert.equal(found.patientRecord.billing.balance, 99.5);
        assert.deepEqual(lean.allergies, ['penicillin', 'latex']);
        const json = found.toJSON();
        assert.equal(json.name, 'Ada');
        assert.equal(json.patientRecord.ward, 'east');
        assert.deepEqual(json.patientRecord.billing, {});
        assert.equal(json.identifications[0].idType, 'passport');
        for (const key of ['ssn', 'birthDate', 'allergies']) assert.ok(!(key in json), `${key} is omitted`);
        assert.ok(!('idNumber' in json.identifications[0]));
        assert.equal(found.toJSON({ includeDecrypted: true }).ssn, '123-45-6789');
        assert.equal(refused.code, 'ERR_FIELDCRYPT_UNSUPPORTED_OPERATOR');

        // What MongoDB stores.
        const raw = await connection.db.collection(Patient.collection.collectionName).findOne({ _id: patient._id });
        assert.equal(assertStoredEncrypted(Patient, raw, PLAINTEXTS), 7);
        assert.equal(raw.name, 'Ada');
        assert.equal(raw.patientRecord.ward, 'east');
        assert.equal(raw.identifications[0].idType, 'passport');
      } finally {
        await closeTestDatabase(connection);
      }
    });
  }
});
