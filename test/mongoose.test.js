'use strict';

// The Mongoose helpers against a real server (FerretDB, or MONGODB_URI), on
// Mongoose 9 and Mongoose 8: what reaches the database, what comes back, and
// what a later save does to it. Run with `npm run test:mongoose`.

const test = require('node:test');
const { describe, before, after } = test;
const assert = require('node:assert/strict');

// A fixed test key, set before fieldcrypt first needs one (keys load lazily).
for (const name of Object.keys(process.env)) if (name.startsWith('ENCRYPTION_KEY')) delete process.env[name];
process.env.ENCRYPTION_KEY = '8c6f2a1e0d9b4c7a5e3f1b2d4a6c8e0f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d';

const {
  decrypt,
  isEncrypted,
  reloadKeys,
  encryptFieldIfModified,
  createDecryptMethod,
  createDecryptedGetter,
} = require('..');
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

// Plaintexts contain characters that hex never does, so finding one inside a
// raw document cannot be a coincidence of the ciphertext.
const PASSPORT = 'P1234567';
const LICENSE = 'D-555-0100';
const A_NUMBER = 'A012345678';
const SSN = '123-45-6789';

function learnerData() {
  return {
    person: { firstName: 'Ada' },
    personExtended: {
      identifications: [
        { idType: 'passport', idNumber: PASSPORT, issuingAuthority: 'Utopia' },
        { idType: 'driversLicense', idNumber: LICENSE, issuingAuthority: 'DMV' },
      ],
    },
    demographics: { alienRegistrationNumber: A_NUMBER },
    ssn: SSN,
  };
}

const ORIGINAL = {
  'personExtended.identifications.0.idNumber': PASSPORT,
  'personExtended.identifications.1.idNumber': LICENSE,
  'demographics.alienRegistrationNumber': A_NUMBER,
  ssn: SSN,
};

/** Every encrypted path of `raw` holds well-formed ciphertext of the expected plaintext, and no plaintext is in clear. */
function assertStoredEncrypted(raw, expected) {
  const stored = encryptedPathsOf(raw);
  assert.deepEqual(Object.keys(stored).sort(), Object.keys(expected).sort());
  for (const [path, value] of Object.entries(stored)) {
    assert.match(value, STORED_VALUE, `${path} holds ciphertext`);
    assert.equal(decrypt(value), expected[path], `${path} decrypts to its plaintext`);
  }
  const json = JSON.stringify(raw);
  for (const plaintext of Object.values(expected)) {
    assert.ok(!json.includes(plaintext), `the raw document does not contain ${plaintext}`);
  }
}

describe('Mongoose integration', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { mongoose, label } of mongooseVersions()) {
    describe(label, () => {
      let connection;
      let Learner;
      const rawLearner = (_id) => connection.db.collection('learners').findOne({ _id });

      before(async () => {
        connection = await openTestDatabase(mongoose, server.uri, __filename);
        Learner = defineLearner(mongoose, connection);
      });
      after(() => closeTestDatabase(connection));

      it('Model.create stores ciphertext at every encrypted path', async () => {
        const learner = await Learner.create(learnerData());
        const raw = await rawLearner(learner._id);
        assertStoredEncrypted(raw, ORIGINAL);
        assert.equal(raw.person.firstName, 'Ada');
        assert.equal(raw.personExtended.identifications[0].idType, 'passport');
      });

      it('new Model().save() stores ciphertext at every encrypted path', async () => {
        const learner = new Learner(learnerData());
        await learner.save();
        assertStoredEncrypted(await rawLearner(learner._id), ORIGINAL);
      });

      it('decrypt methods and getters return the plaintext, after save and after findById', async () => {
        const created = await Learner.create(learnerData());
        for (const learner of [created, await Learner.findById(created._id)]) {
          const [passport, license] = learner.personExtended.identifications;
          assert.equal(passport.getDecryptedIdNumber(), PASSPORT);
          assert.equal(license.getDecryptedIdNumber(), LICENSE);
          assert.equal(learner.demographics.alienRegistrationNumberPlain, A_NUMBER);
          assert.equal(learner.getDecryptedSsn(), SSN);
          // The paths themselves hold the ciphertext.
          assert.match(passport.idNumber, STORED_VALUE);
          assert.match(learner.ssn, STORED_VALUE);
        }
        const json = (await Learner.findById(created._id)).toJSON({ virtuals: true });
        assert.equal(json.demographics.alienRegistrationNumberPlain, A_NUMBER);
      });

      it('changing an idNumber re-encrypts only that path', async () => {
        const { _id } = await Learner.create(learnerData());
        const before = encryptedPathsOf(await rawLearner(_id));
        const learner = await Learner.findById(_id);
        learner.personExtended.identifications[0].idNumber = 'P7654321';
        await learner.save();

        const raw = await rawLearner(_id);
        assertStoredEncrypted(raw, { ...ORIGINAL, 'personExtended.identifications.0.idNumber': 'P7654321' });
        const after = encryptedPathsOf(raw);
        assert.notEqual(
          after['personExtended.identifications.0.idNumber'],
          before['personExtended.identifications.0.idNumber'],
        );
        for (const path of [
          'personExtended.identifications.1.idNumber',
          'demographics.alienRegistrationNumber',
          'ssn',
        ]) {
          assert.equal(after[path], before[path], `${path} is byte-identical`);
        }
        assert.equal(
          (await Learner.findById(_id)).personExtended.identifications[0].getDecryptedIdNumber(),
          'P7654321',
        );
      });

      it('pushing an identification encrypts the new element only', async () => {
        const { _id } = await Learner.create(learnerData());
        const before = encryptedPathsOf(await rawLearner(_id));
        const learner = await Learner.findById(_id);
        learner.personExtended.identifications.push({
          idType: 'nationalId',
          idNumber: 'N-998877',
          issuingAuthority: 'Utopia',
        });
        await learner.save();

        const raw = await rawLearner(_id);
        assertStoredEncrypted(raw, { ...ORIGINAL, 'personExtended.identifications.2.idNumber': 'N-998877' });
        const after = encryptedPathsOf(raw);
        for (const path of Object.keys(before)) assert.equal(after[path], before[path], `${path} is byte-identical`);
        const found = await Learner.findById(_id);
        assert.deepEqual(
          found.personExtended.identifications.map((i) => i.getDecryptedIdNumber()),
          [PASSPORT, LICENSE, 'N-998877'],
        );
      });

      it('replacing demographics encrypts the new subdocument only', async () => {
        const { _id } = await Learner.create(learnerData());
        const before = encryptedPathsOf(await rawLearner(_id));
        const learner = await Learner.findById(_id);
        learner.demographics = { alienRegistrationNumber: 'A087654321' };
        await learner.save();

        const raw = await rawLearner(_id);
        assertStoredEncrypted(raw, { ...ORIGINAL, 'demographics.alienRegistrationNumber': 'A087654321' });
        const after = encryptedPathsOf(raw);
        assert.notEqual(after['demographics.alienRegistrationNumber'], before['demographics.alienRegistrationNumber']);
        for (const path of [
          'personExtended.identifications.0.idNumber',
          'personExtended.identifications.1.idNumber',
          'ssn',
        ]) {
          assert.equal(after[path], before[path], `${path} is byte-identical`);
        }
        assert.equal((await Learner.findById(_id)).demographics.alienRegistrationNumberPlain, 'A087654321');
      });

      it('saving three times never double-encrypts', async () => {
        const learner = await Learner.create(learnerData());
        const first = encryptedPathsOf(await rawLearner(learner._id));
        const check = async () => {
          const stored = encryptedPathsOf(await rawLearner(learner._id));
          assert.deepEqual(stored, first);
          for (const [path, value] of Object.entries(stored)) {
            const plaintext = decrypt(value);
            assert.equal(plaintext, ORIGINAL[path]);
            assert.ok(!isEncrypted(plaintext), `${path} decrypts to plaintext, not to another ciphertext`);
          }
        };
        // The same document, saved again and again.
        for (let i = 0; i < 3; i++) {
          await learner.save();
          await check();
        }
        // A fresh copy, saved again and again, even with every path marked modified.
        const found = await Learner.findById(learner._id);
        for (let i = 0; i < 3; i++) {
          found.markModified('personExtended.identifications');
          found.markModified('demographics');
          found.markModified('ssn');
          await found.save();
          await check();
        }
        assert.equal(found.personExtended.identifications[0].getDecryptedIdNumber(), PASSPORT);
        assert.equal(found.getDecryptedSsn(), SSN);
      });

      it('unchanged ciphertext stays byte-identical when other fields change', async () => {
        const { _id } = await Learner.create(learnerData());
        const before = encryptedPathsOf(await rawLearner(_id));
        const learner = await Learner.findById(_id);
        learner.person.firstName = 'Grace';
        learner.personExtended.identifications[1].issuingAuthority = 'DVLA';
        learner.personExtended.identifications[0].idType = 'passportCard';
        await learner.save();

        const raw = await rawLearner(_id);
        assert.equal(raw.person.firstName, 'Grace');
        assert.equal(raw.personExtended.identifications[1].issuingAuthority, 'DVLA');
        assert.equal(raw.personExtended.identifications[0].idType, 'passportCard');
        assert.deepEqual(encryptedPathsOf(raw), before);
      });

      it('decrypt helpers read the stored value past schema getters, at top-level and dotted paths', async () => {
        // Top-level paths are read with Document#get's noDottedPath option,
        // dotted ones without it (lib/mongoose/compat.js storedGetOptions): both must see
        // the stored ciphertext, not what a getter makes of it.
        const masked = (v) => (typeof v === 'string' ? `masked:${v.length}` : v);
        const schema = new mongoose.Schema({
          ssn: { type: String, get: masked },
          profile: { passport: { type: String, get: masked }, note: String },
        });
        for (const path of ['ssn', 'profile.passport']) schema.pre('save', encryptFieldIfModified(path));
        schema.methods.plainSsn = createDecryptMethod('ssn');
        schema.methods.plainPassport = createDecryptMethod('profile.passport');
        schema.virtual('ssnPlain').get(createDecryptedGetter('ssn'));
        schema.virtual('passportPlain').get(createDecryptedGetter('profile.passport'));
        const Getters = connection.model('GetterPaths', schema);
        const created = await Getters.create({ ssn: SSN, profile: { passport: PASSPORT, note: 'n' } });
        const raw = await connection.db.collection('getterpaths').findOne({ _id: created._id });
        assert.match(raw.ssn, STORED_VALUE);
        assert.match(raw.profile.passport, STORED_VALUE);
        for (const doc of [created, await Getters.findById(created._id)]) {
          assert.equal(doc.ssn, `masked:${raw.ssn.length}`, 'the getter runs on plain reads');
          assert.equal(doc.plainSsn(), SSN);
          assert.equal(doc.ssnPlain, SSN);
          assert.equal(doc.plainPassport(), PASSPORT);
          assert.equal(doc.passportPlain, PASSPORT);
        }
      });

      it('helpers given an alias (Mongoose `alias` option) encrypt and decrypt the path it names', async () => {
        // Under its own name an alias is never "modified" and reads through
        // the real path's getters: the hook used to store such a value in clear.
        const masked = (v) => (typeof v === 'string' ? `masked:${v.length}` : v);
        const IdSchema = new mongoose.Schema({ n: { type: String, alias: 'number' } });
        IdSchema.pre('save', encryptFieldIfModified('number'));
        IdSchema.methods.plainNumber = createDecryptMethod('number');
        const schema = new mongoose.Schema({
          ssn: { type: String, alias: 'socialSecurity', get: masked },
          ids: [IdSchema],
        });
        schema.pre('save', encryptFieldIfModified('socialSecurity'));
        schema.methods.plainSsn = createDecryptMethod('socialSecurity');
        schema.virtual('ssnPlain').get(createDecryptedGetter('socialSecurity'));
        const Aliased = connection.model('AliasedPaths', schema);
        const rawOf = (id) => connection.db.collection('aliasedpaths').findOne({ _id: id });

        const created = await Aliased.create({ socialSecurity: SSN, ids: [{ number: PASSPORT }] });
        let raw = await rawOf(created._id);
        assert.match(raw.ssn, STORED_VALUE);
        assert.equal(decrypt(raw.ssn), SSN);
        assert.match(raw.ids[0].n, STORED_VALUE);
        assert.equal(decrypt(raw.ids[0].n), PASSPORT);
        assert.ok(!JSON.stringify(raw).includes(SSN) && !JSON.stringify(raw).includes(PASSPORT));

        const found = await Aliased.findById(created._id);
        for (const doc of [created, found]) {
          assert.equal(doc.plainSsn(), SSN);
          assert.equal(doc.ssnPlain, SSN);
          assert.equal(doc.ids[0].plainNumber(), PASSPORT);
        }

        // A change made through the alias is encrypted too.
        found.socialSecurity = '987-65-4321';
        found.ids[0].number = LICENSE;
        await found.save();
        raw = await rawOf(created._id);
        assert.equal(decrypt(raw.ssn), '987-65-4321');
        assert.equal(decrypt(raw.ids[0].n), LICENSE);
        assert.equal((await Aliased.findById(created._id)).plainSsn(), '987-65-4321');
      });

      it('leaves empty string, null and undefined paths alone; decrypt helpers return them as-is', async () => {
        const created = await Learner.create({
          person: { firstName: 'Empty' },
          personExtended: {
            identifications: [
              { idType: 'blank', idNumber: '' },
              { idType: 'null', idNumber: null },
              { idType: 'absent' },
            ],
          },
          demographics: { alienRegistrationNumber: null },
          ssn: '',
        });
        const assertRaw = (raw) => {
          const [blank, nul, absent] = raw.personExtended.identifications;
          assert.equal(blank.idNumber, '');
          assert.equal(nul.idNumber, null);
          assert.ok(!('idNumber' in absent), 'an undefined path is not written');
          assert.equal(raw.demographics.alienRegistrationNumber, null);
          assert.equal(raw.ssn, '');
        };
        const assertHelpers = (learner) => {
          const [blank, nul, absent] = learner.personExtended.identifications;
          assert.equal(blank.getDecryptedIdNumber(), '');
          assert.equal(nul.getDecryptedIdNumber(), null);
          assert.equal(absent.getDecryptedIdNumber(), undefined);
          assert.equal(learner.demographics.alienRegistrationNumberPlain, null);
          assert.equal(learner.getDecryptedSsn(), '');
        };
        assertRaw(await rawLearner(created._id));
        assertHelpers(created);

        const found = await Learner.findById(created._id);
        assertHelpers(found);
        found.markModified('personExtended.identifications');
        found.markModified('demographics');
        found.markModified('ssn');
        await found.save();
        assertRaw(await rawLearner(created._id));

        // A learner without the optional subdocument at all.
        const bare = await Learner.create({ person: { firstName: 'Bare' } });
        const raw = await rawLearner(bare._id);
        assert.equal(raw.demographics, undefined);
        assert.equal(raw.ssn, undefined);
        assert.equal(bare.getDecryptedSsn(), undefined);
      });

      it('fails closed: a save that cannot encrypt is rejected and writes nothing', async () => {
        // No key for the version new values are written with: the subdocument hook fails.
        const existing = await Learner.create(learnerData());
        const before = await rawLearner(existing._id);
        process.env.ENCRYPTION_KEY_VERSION = '07';
        reloadKeys();
        try {
          const learner = new Learner({
            personExtended: { identifications: [{ idType: 'passport', idNumber: PASSPORT }] },
          });
          await assert.rejects(learner.save(), { name: 'FieldCryptError', code: 'ERR_FIELDCRYPT_KEY_NOT_FOUND' });
          assert.equal(await rawLearner(learner._id), null);

          existing.personExtended.identifications[0].idNumber = 'P7654321';
          await assert.rejects(existing.save(), { code: 'ERR_FIELDCRYPT_KEY_NOT_FOUND' });
          assert.deepEqual(await rawLearner(existing._id), before);
        } finally {
          delete process.env.ENCRYPTION_KEY_VERSION;
          reloadKeys();
        }

        // A value that is not a string is never stored in clear.
        const schema = new mongoose.Schema({ secret: mongoose.Schema.Types.Mixed });
        schema.pre('save', encryptFieldIfModified('secret'));
        const Mixed = connection.model('MixedSecret', schema);
        const mixed = new Mixed({ secret: { number: PASSPORT } });
        await assert.rejects(mixed.save(), { name: 'FieldCryptError', code: 'ERR_FIELDCRYPT_UNSUPPORTED_TYPE' });
        assert.equal(await connection.db.collection('mixedsecrets').findOne({ _id: mixed._id }), null);

        // A tampered stored value does not decrypt.
        const stored = before.personExtended.identifications[0].idNumber;
        const flipped = stored.slice(0, -1) + (stored.endsWith('0') ? '1' : '0');
        await connection.db
          .collection('learners')
          .updateOne({ _id: existing._id }, { $set: { 'personExtended.identifications.0.idNumber': flipped } });
        const tampered = await Learner.findById(existing._id);
        assert.throws(() => tampered.personExtended.identifications[0].getDecryptedIdNumber(), {
          name: 'FieldCryptError',
          code: 'ERR_FIELDCRYPT_AUTH_FAILED',
        });
      });
    });
  }
});
