'use strict';

// Compatibility with data written by the original pure node:crypto
// implementation, both ways, and key rotation, against a real server on
// Mongoose 9 and Mongoose 8. Run with `npm run test:mongoose`.

const test = require('node:test');
const { describe, before, after } = test;
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const KEY_01 = '8c6f2a1e0d9b4c7a5e3f1b2d4a6c8e0f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d';
const KEY_02 = '3e9d1c7b5a2f4e6d8c0b1a3f5e7d9c2b4a6f8e0d1c3b5a7f9e2d4c6b8a0f1e3d';

// A fixed test key, set before fieldcrypt first needs one (keys load lazily).
for (const name of Object.keys(process.env)) if (name.startsWith('ENCRYPTION_KEY')) delete process.env[name];
process.env.ENCRYPTION_KEY = KEY_01;

const { decrypt, reEncrypt, getKeyVersion, configureKeys, reloadKeys, loadedKeyVersions } = require('..');
const {
  startServer,
  mongooseVersions,
  openTestDatabase,
  closeTestDatabase,
  defineLearner,
  STORED_VALUE,
  encryptedPathsOf,
  withTimeout,
} = require('./harness');

// A timeout per test, so that a hang (say, a hook that never calls next) fails
// that test instead of stalling the run.
const it = (name, fn) => test.it(name, (t) => withTimeout(fn(t), 30_000));

// The stored format, implemented with node:crypto as the original code did:
// AES-256-GCM, 16-byte random IV, no AAD, `VV:IV:TAG:CT` in hex.
function nodeEncrypt(plaintext, keyHex, version) {
  const iv = crypto.randomBytes(16);
  const cipher = crypto.createCipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), iv);
  const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return `${version}:${iv.toString('hex')}:${cipher.getAuthTag().toString('hex')}:${ciphertext.toString('hex')}`;
}

function nodeDecrypt(stored, keyHex) {
  const [, iv, tag, ciphertext] = stored.split(':');
  const decipher = crypto.createDecipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), Buffer.from(iv, 'hex'));
  decipher.setAuthTag(Buffer.from(tag, 'hex'));
  return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'hex')), decipher.final()]).toString('utf8');
}

const KEYS = { '01': KEY_01, '02': KEY_02 };
const nodeDecryptAnyVersion = (stored) => nodeDecrypt(stored, KEYS[stored.slice(0, 2)]);

const PASSPORT = 'P1234567';
const A_NUMBER = 'A012345678';
const SSN = '123-45-6789';

function learnerData() {
  return {
    person: { firstName: 'Ada' },
    personExtended: { identifications: [{ idType: 'passport', idNumber: PASSPORT, issuingAuthority: 'Utopia' }] },
    demographics: { alienRegistrationNumber: A_NUMBER },
    ssn: SSN,
  };
}

const PLAINTEXT = {
  'personExtended.identifications.0.idNumber': PASSPORT,
  'demographics.alienRegistrationNumber': A_NUMBER,
  ssn: SSN,
};

/** Runs `fn` with extra ENCRYPTION_KEY* variables, then restores the environment and reloads the keys. */
async function withEnv(vars, fn) {
  const saved = { ...process.env };
  Object.assign(process.env, vars);
  try {
    return await fn();
  } finally {
    for (const name of Object.keys(vars)) {
      if (name in saved) process.env[name] = saved[name];
      else delete process.env[name];
    }
    reloadKeys();
  }
}

describe('node:crypto compatibility and key rotation', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { mongoose, label } of mongooseVersions()) {
    describe(label, () => {
      let connection;
      let Learner;
      const learners = () => connection.db.collection('learners');
      const rawLearner = (_id) => learners().findOne({ _id });

      before(async () => {
        connection = await openTestDatabase(mongoose, server.uri, __filename);
        Learner = defineLearner(mongoose, connection);
      });
      after(() => closeTestDatabase(connection));

      it('stored values decrypt with node:crypto', async () => {
        const { _id } = await Learner.create(learnerData());
        const stored = encryptedPathsOf(await rawLearner(_id));
        assert.deepEqual(Object.keys(stored).sort(), Object.keys(PLAINTEXT).sort());
        for (const [path, value] of Object.entries(stored)) {
          assert.match(value, STORED_VALUE);
          assert.equal(nodeDecrypt(value, KEY_01), PLAINTEXT[path], path);
        }
      });

      it('values written by node:crypto and inserted raw decrypt through the document methods', async () => {
        const { ObjectId } = mongoose.Types;
        const legacy = {
          _id: new ObjectId(),
          person: { firstName: 'Legacy' },
          personExtended: {
            identifications: [
              { _id: new ObjectId(), idType: 'passport', idNumber: nodeEncrypt(PASSPORT, KEY_01, '01') },
            ],
          },
          demographics: { _id: new ObjectId(), alienRegistrationNumber: nodeEncrypt(A_NUMBER, KEY_01, '01') },
          ssn: nodeEncrypt(SSN, KEY_01, '01'),
        };
        await learners().insertOne(legacy);
        const before = encryptedPathsOf(await rawLearner(legacy._id));

        const learner = await Learner.findById(legacy._id);
        assert.equal(learner.personExtended.identifications[0].getDecryptedIdNumber(), PASSPORT);
        assert.equal(learner.demographics.alienRegistrationNumberPlain, A_NUMBER);
        assert.equal(learner.getDecryptedSsn(), SSN);

        // Saving a legacy document leaves its ciphertext alone...
        learner.person.firstName = 'Legacy, saved';
        await learner.save();
        assert.deepEqual(encryptedPathsOf(await rawLearner(legacy._id)), before);

        // ...and a changed value is written in the same format.
        learner.personExtended.identifications[0].idNumber = 'P7654321';
        await learner.save();
        const after = encryptedPathsOf(await rawLearner(legacy._id));
        assert.equal(nodeDecrypt(after['personExtended.identifications.0.idNumber'], KEY_01), 'P7654321');
        assert.equal(after.ssn, before.ssn);
      });

      it('rotates keys with ENCRYPTION_KEY_V02 and reloadKeys()', async () => {
        const old = await Learner.create(learnerData());
        const oldStored = encryptedPathsOf(await rawLearner(old._id));
        for (const value of Object.values(oldStored)) assert.equal(getKeyVersion(value), '01');

        await withEnv({ ENCRYPTION_KEY_V02: KEY_02, ENCRYPTION_KEY_VERSION: '02' }, async () => {
          reloadKeys();
          assert.deepEqual(loadedKeyVersions(), ['01', '02']);

          // New saves use version 02.
          const fresh = await Learner.create(learnerData());
          const freshStored = encryptedPathsOf(await rawLearner(fresh._id));
          for (const [path, value] of Object.entries(freshStored)) {
            assert.equal(getKeyVersion(value), '02', path);
            assert.equal(nodeDecrypt(value, KEY_02), PLAINTEXT[path], path);
          }

          // Old documents still decrypt; a changed path moves to 02, the rest stay 01, byte-identical.
          const found = await Learner.findById(old._id);
          assert.equal(found.personExtended.identifications[0].getDecryptedIdNumber(), PASSPORT);
          assert.equal(found.demographics.alienRegistrationNumberPlain, A_NUMBER);
          assert.equal(found.getDecryptedSsn(), SSN);
          found.ssn = '987-65-4321';
          await found.save();
          const after = encryptedPathsOf(await rawLearner(old._id));
          assert.equal(getKeyVersion(after.ssn), '02');
          assert.equal(decrypt(after.ssn), '987-65-4321');
          assert.equal(
            after['personExtended.identifications.0.idNumber'],
            oldStored['personExtended.identifications.0.idNumber'],
          );
          assert.equal(
            after['demographics.alienRegistrationNumber'],
            oldStored['demographics.alienRegistrationNumber'],
          );
        });

        // Back to the test key alone: version 01 values still decrypt, new ones are 01 again.
        assert.equal(
          (await Learner.findById(old._id)).personExtended.identifications[0].getDecryptedIdNumber(),
          PASSPORT,
        );
        const again = await Learner.create(learnerData());
        assert.equal(getKeyVersion((await rawLearner(again._id)).ssn), '01');
      });

      it('rotates keys with configureKeys() and migrates old values with reEncrypt()', async () => {
        const old = await Learner.create(learnerData());
        const oldStored = encryptedPathsOf(await rawLearner(old._id));
        try {
          configureKeys(KEYS, { current: '02' });

          const fresh = await Learner.create(learnerData());
          for (const value of Object.values(encryptedPathsOf(await rawLearner(fresh._id)))) {
            assert.equal(getKeyVersion(value), '02');
          }

          // A migration through the driver: re-encrypt every stored value under 02.
          const $set = {};
          for (const [path, value] of Object.entries(oldStored)) $set[path] = reEncrypt(value, '02');
          await learners().updateOne({ _id: old._id }, { $set });
          const migrated = encryptedPathsOf(await rawLearner(old._id));
          for (const [path, value] of Object.entries(migrated)) {
            assert.match(value, STORED_VALUE);
            assert.equal(getKeyVersion(value), '02', path);
            assert.equal(nodeDecryptAnyVersion(value), PLAINTEXT[path], path);
          }
          const found = await Learner.findById(old._id);
          assert.equal(found.personExtended.identifications[0].getDecryptedIdNumber(), PASSPORT);
          assert.equal(found.demographics.alienRegistrationNumberPlain, A_NUMBER);
          assert.equal(found.getDecryptedSsn(), SSN);
        } finally {
          reloadKeys();
        }
        assert.deepEqual(loadedKeyVersions(), ['01']);
      });
    });
  }
});
