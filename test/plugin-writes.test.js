'use strict';

// The fieldEncryption plugin: every write path × every update shape, on
// Mongoose 9 and Mongoose 8, against a real server. Each test checks
//   1. nothing in clear leaves the process: no command the driver sends
//      (commandStarted, snapshotted as sent) contains a plaintext;
//   2. what is stored is ciphertext: the raw document holds no plaintext and
//      a well-formed VV:IV:TAG:CT value at every encrypted path, and reads
//      back, hydrated and lean, with every value and its type.
// Shapes FerretDB v1 does not implement ($, $[], $[name] + arrayFilters)
// still get check 1 there, and are then reported as skipped; they run in full
// where the server executes them: mongo-java-server (test/run.js's second
// server) and MongoDB (MONGODB_URI with FIELDCRYPT_REAL_MONGODB=1), where a
// rejection fails the test.

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');

const {
  REAL_MONGODB,
  FERRETDB_POSITIONAL,
  isFerretDB,
  it,
  openMonitoredDatabase,
  defineRecord,
  recordValues,
  docOf,
  expectedOf,
  plaintextsOf,
  monitor,
  assertNothingInClear,
  isServerRejection,
  assertStoredEncrypted,
  assertSameTyped,
  assertReadBack,
  STATUS_DEFAULT,
} = require('./plugin-helpers');
const { startServer, mongooseVersions, closeTestDatabase } = require('./harness');

/** Every path of a record, as one update (top-level keys or $set). */
function fullUpdate(v) {
  return docOf(v);
}

function withStatus(expected) {
  return { status: STATUS_DEFAULT, ...expected };
}

/**
 * Update shapes. build(seed values, new values) -> { update, filter?, arrayFilters? };
 * expect(seed values, new values) -> { concrete path: value } after the update.
 * `positional`: needs the array in the filter (not possible with an _id-only
 * filter). `ferretdb`: FerretDB v1 rejects the shape.
 */
const UPDATE_SHAPES = [
  {
    name: 'top-level keys',
    build: (s, v) => ({ update: fullUpdate(v) }),
    expect: (s, v) => withStatus(expectedOf(v)),
  },
  {
    name: '$set',
    build: (s, v) => ({ update: { $set: fullUpdate(v) } }),
    expect: (s, v) => withStatus(expectedOf(v)),
  },
  {
    name: 'dotted paths',
    build: (s, v) => ({
      update: {
        $set: {
          'patientRecord.billing.cardNumber': v.patientRecord.billing.cardNumber,
          'patientRecord.billing.amount': v.patientRecord.billing.amount,
          'demographics.alienRegistrationNumber': v.demographics.alienRegistrationNumber,
          'identifications.1.idNumber': v.identifications[1].idNumber,
          'aliases.1': v.aliases[1],
          'scores.0': v.scores[0],
          'secrets.k2': v.secrets.k2,
          'secrets.k3': v.more.secret,
          'contacts.home.phone': v.contacts.home.phone,
          'contacts.work': { phone: v.more.phone, label: 'work' },
        },
      },
    }),
    expect: (s, v) => ({
      ...withStatus(expectedOf(s)),
      'patientRecord.billing.cardNumber': v.patientRecord.billing.cardNumber,
      'patientRecord.billing.amount': v.patientRecord.billing.amount,
      'demographics.alienRegistrationNumber': v.demographics.alienRegistrationNumber,
      'identifications.1.idNumber': v.identifications[1].idNumber,
      'aliases.1': v.aliases[1],
      'scores.0': v.scores[0],
      'secrets.k2': v.secrets.k2,
      'secrets.k3': v.more.secret,
      'contacts.home.phone': v.contacts.home.phone,
      'contacts.work.phone': v.more.phone,
    }),
  },
  {
    name: '$push',
    build: (s, v) => ({
      update: {
        $push: {
          aliases: v.more.alias,
          scores: v.more.score,
          identifications: { idType: 'visa', idNumber: v.more.idNumber },
        },
      },
    }),
    expect: (s, v) => ({
      ...withStatus(expectedOf(s)),
      'aliases.2': v.more.alias,
      'scores.2': v.more.score,
      'identifications.2.idNumber': v.more.idNumber,
    }),
  },
  {
    name: '$push with $each',
    build: (s, v) => ({
      update: {
        $push: {
          aliases: { $each: [v.more.alias, v.aliases[0]] },
          scores: { $each: [v.more.score], $slice: 5 },
          identifications: { $each: [{ idType: 'visa', idNumber: v.more.idNumber }] },
        },
      },
    }),
    expect: (s, v) => ({
      ...withStatus(expectedOf(s)),
      'aliases.2': v.more.alias,
      'aliases.3': v.aliases[0],
      'scores.2': v.more.score,
      'identifications.2.idNumber': v.more.idNumber,
    }),
  },
  {
    name: '$addToSet',
    build: (s, v) => ({
      update: {
        $addToSet: {
          aliases: v.more.alias,
          scores: v.more.score,
          identifications: { idType: 'visa', idNumber: v.more.idNumber },
        },
      },
    }),
    expect: (s, v) => ({
      ...withStatus(expectedOf(s)),
      'aliases.2': v.more.alias,
      'scores.2': v.more.score,
      'identifications.2.idNumber': v.more.idNumber,
    }),
  },
  {
    name: '$addToSet with $each',
    build: (s, v) => ({
      update: {
        $addToSet: {
          aliases: { $each: [v.more.alias, v.aliases[1]] },
          scores: { $each: [v.more.score] },
          identifications: { $each: [{ idType: 'visa', idNumber: v.more.idNumber }] },
        },
      },
    }),
    expect: (s, v) => ({
      ...withStatus(expectedOf(s)),
      'aliases.2': v.more.alias,
      'aliases.3': v.aliases[1],
      'scores.2': v.more.score,
      'identifications.2.idNumber': v.more.idNumber,
    }),
  },
  {
    name: '$ positional',
    positional: true,
    ferretdb: true,
    build: (s, v) => ({
      filter: { 'identifications.idType': 'license' },
      update: { $set: { 'identifications.$.idNumber': v.more.idNumber } },
    }),
    expect: (s, v) => ({ ...withStatus(expectedOf(s)), 'identifications.1.idNumber': v.more.idNumber }),
  },
  {
    name: '$[] all positional',
    ferretdb: true,
    build: (s, v) => ({
      update: { $set: { 'identifications.$[].idNumber': v.more.idNumber, 'aliases.$[]': v.more.alias } },
    }),
    expect: (s, v) => ({
      ...withStatus(expectedOf(s)),
      'identifications.0.idNumber': v.more.idNumber,
      'identifications.1.idNumber': v.more.idNumber,
      'aliases.0': v.more.alias,
      'aliases.1': v.more.alias,
    }),
  },
  {
    name: '$[name] with arrayFilters',
    ferretdb: true,
    build: (s, v) => ({
      update: { $set: { 'identifications.$[el].idNumber': v.more.idNumber } },
      arrayFilters: [{ 'el.idType': 'license' }],
    }),
    expect: (s, v) => ({ ...withStatus(expectedOf(s)), 'identifications.1.idNumber': v.more.idNumber }),
  },
  {
    name: '$setOnInsert (no upsert: no effect)',
    build: (s, v) => ({
      update: { $set: { name: 'renamed' }, $setOnInsert: { ssn: v.ssn, age: v.age, aliases: v.aliases } },
    }),
    expect: (s) => withStatus(expectedOf(s)),
  },
];

/**
 * Update methods. run(Record, { id, doc, filter, update, arrayFilters, upsert }).
 * `idOnly`: the method filters by _id alone.
 */
const UPDATE_METHODS = [
  {
    name: 'Model.updateOne',
    run: (M, o) => M.updateOne(o.filter, o.update, { arrayFilters: o.arrayFilters, upsert: o.upsert }),
  },
  {
    name: 'Model.updateMany',
    run: (M, o) => M.updateMany(o.filter, o.update, { arrayFilters: o.arrayFilters, upsert: o.upsert }),
  },
  {
    name: 'Model.findOneAndUpdate',
    returnsDocument: true,
    run: (M, o) =>
      M.findOneAndUpdate(o.filter, o.update, {
        arrayFilters: o.arrayFilters,
        upsert: o.upsert,
        returnDocument: 'after',
      }),
  },
  {
    name: 'Model.findByIdAndUpdate',
    idOnly: true,
    returnsDocument: true,
    run: (M, o) =>
      M.findByIdAndUpdate(o.id, o.update, { arrayFilters: o.arrayFilters, upsert: o.upsert, returnDocument: 'after' }),
  },
  {
    name: 'doc.updateOne',
    idOnly: true,
    run: (M, o) => o.doc.updateOne(o.update, { arrayFilters: o.arrayFilters }),
  },
  {
    name: 'Model.bulkWrite updateOne',
    run: (M, o) =>
      M.bulkWrite([
        { updateOne: { filter: o.filter, update: o.update, arrayFilters: o.arrayFilters, upsert: o.upsert } },
      ]),
  },
  {
    name: 'Model.bulkWrite updateMany',
    run: (M, o) =>
      M.bulkWrite([
        { updateMany: { filter: o.filter, update: o.update, arrayFilters: o.arrayFilters, upsert: o.upsert } },
      ]),
  },
];

describe('fieldEncryption: write paths', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { mongoose, label } of mongooseVersions()) {
    describe(label, () => {
      let connection;
      let Record;
      let watch;
      let ferret;
      const raw = (_id) => connection.db.collection(Record.collection.collectionName).findOne({ _id });

      before(async () => {
        connection = await openMonitoredDatabase(mongoose, server.uri, __filename);
        Record = defineRecord(mongoose, connection);
        await Record.init();
        watch = monitor(connection, mongoose);
        ferret = await isFerretDB(connection);
      });
      after(() => closeTestDatabase(connection));

      async function seed() {
        const values = recordValues(mongoose);
        const doc = await Record.create(docOf(values));
        return { values, doc };
      }

      /**
       * Runs `write` under command monitoring and applies both checks.
       * `serverMayReject`: a shape FerretDB rejects: where the server rejects
       * it, only check 1 applies and the test is reported as skipped, unless
       * REAL_MONGODB says the server must execute it (then it fails).
       * `anyServerRejects`: a shape no server accepts: the rejection is the
       * expected outcome, after check 1.
       */
      async function check(t, { write, plaintexts, id, expected, serverMayReject = false, anyServerRejects = false }) {
        const { result, error, commands } = await watch.during(write);
        if (error && commands.length === 0) throw error;
        assert.ok(commands.length > 0, 'the write sent a command');
        assertNothingInClear(commands, plaintexts);
        if (error) {
          if (!isServerRejection(error)) throw error;
          if (anyServerRejects) {
            t.diagnostic(`the server rejected this shape (${error.code}), as every server does; check 1 passed`);
            return { rejected: true };
          }
          if (!serverMayReject || REAL_MONGODB) throw error;
          const why = ferret ? FERRETDB_POSITIONAL : `the server rejected this shape (${error.code}: ${error.message})`;
          t.skip(`${why}; check 1 passed (no plaintext sent), check 2 (the stored document) skipped`);
          return { rejected: true };
        }
        assert.ok(!anyServerRejects, 'the server was expected to reject this shape');
        const stored = await raw(id);
        assertStoredEncrypted(Record, stored, plaintexts);
        const readBack = await assertReadBack(Record, id, expected);
        return { result, stored, readBack };
      }

      describe('inserts and saves', () => {
        it('new Model(doc).save()', async (t) => {
          const v = recordValues(mongoose);
          const doc = new Record(docOf(v));
          await check(t, {
            write: () => doc.save(),
            plaintexts: plaintextsOf(v),
            id: doc._id,
            expected: withStatus(expectedOf(v)),
          });
          // After save() the document in memory shows plaintext again.
          for (const [path, value] of Object.entries(withStatus(expectedOf(v))))
            assertSameTyped(doc.get(path), value, `in memory ${path}`);
          assert.equal(doc.isModified(), false);
        });

        it('Model.create(doc) with subdocuments', async (t) => {
          const v = recordValues(mongoose);
          const id = new mongoose.Types.ObjectId();
          const { result } = await check(t, {
            write: () => Record.create({ _id: id, ...docOf(v) }),
            plaintexts: plaintextsOf(v),
            id,
            expected: withStatus(expectedOf(v)),
          });
          assert.equal(result.ssn, v.ssn);
          assert.equal(result.identifications[0].idNumber, v.identifications[0].idNumber);
        });

        it('Model.insertOne(doc)', async (t) => {
          const v = recordValues(mongoose);
          const id = new mongoose.Types.ObjectId();
          const { result } = await check(t, {
            write: () => Record.insertOne({ _id: id, ...docOf(v) }),
            plaintexts: plaintextsOf(v),
            id,
            expected: withStatus(expectedOf(v)),
          });
          assert.equal(result.ssn, v.ssn);
        });

        it('Model.create([docs])', async (t) => {
          const a = recordValues(mongoose);
          const b = recordValues(mongoose);
          const ids = [new mongoose.Types.ObjectId(), new mongoose.Types.ObjectId()];
          await check(t, {
            write: () =>
              Record.create([
                { _id: ids[0], ...docOf(a) },
                { _id: ids[1], ...docOf(b) },
              ]),
            plaintexts: plaintextsOf(a, b),
            id: ids[0],
            expected: withStatus(expectedOf(a)),
          });
          assertStoredEncrypted(Record, await raw(ids[1]), plaintextsOf(a, b));
          await assertReadBack(Record, ids[1], withStatus(expectedOf(b)));
        });

        it('Model.insertMany([objects and documents])', async (t) => {
          const a = recordValues(mongoose);
          const b = recordValues(mongoose);
          const ids = [new mongoose.Types.ObjectId(), new mongoose.Types.ObjectId()];
          const asDocument = new Record({ _id: ids[1], ...docOf(b) });
          const { result } = await check(t, {
            write: () => Record.insertMany([{ _id: ids[0], ...docOf(a) }, asDocument]),
            plaintexts: plaintextsOf(a, b),
            id: ids[0],
            expected: withStatus(expectedOf(a)),
          });
          assertStoredEncrypted(Record, await raw(ids[1]), plaintextsOf(a, b));
          await assertReadBack(Record, ids[1], withStatus(expectedOf(b)));
          // The returned documents show plaintext.
          assert.equal(result[0].ssn, a.ssn);
          assert.equal(result[1].get('secrets.k1'), b.secrets.k1);
          assert.equal(asDocument.ssn, b.ssn);
        });

        it('Model.insertMany(docs, { lean: true })', async (t) => {
          const v = recordValues(mongoose);
          const id = new mongoose.Types.ObjectId();
          await check(t, {
            write: () => Record.insertMany([{ _id: id, ...docOf(v) }], { lean: true }),
            plaintexts: plaintextsOf(v),
            id,
            expected: withStatus(expectedOf(v)),
          });
        });

        it('Model.bulkWrite insertOne', async (t) => {
          const v = recordValues(mongoose);
          const id = new mongoose.Types.ObjectId();
          await check(t, {
            write: () => Record.bulkWrite([{ insertOne: { document: { _id: id, ...docOf(v) } } }]),
            plaintexts: plaintextsOf(v),
            id,
            expected: withStatus(expectedOf(v)),
          });
        });

        it('Model.bulkSave() of new documents', async (t) => {
          const a = recordValues(mongoose);
          const b = recordValues(mongoose);
          const docs = [new Record(docOf(a)), new Record(docOf(b))];
          await check(t, {
            write: () => Record.bulkSave(docs),
            plaintexts: plaintextsOf(a, b),
            id: docs[0]._id,
            expected: withStatus(expectedOf(a)),
          });
          assertStoredEncrypted(Record, await raw(docs[1]._id), plaintextsOf(a, b));
          assert.equal(docs[1].ssn, b.ssn, 'the document shows plaintext after bulkSave');
        });

        it('save() after changing every encrypted path of a loaded document', async (t) => {
          const { values: s } = await seed();
          const v = recordValues(mongoose);
          const doc = await Record.findOne({ name: s.name });
          assert.equal(doc.ssn, s.ssn, 'loaded decrypted');
          Object.assign(doc, {
            ssn: v.ssn,
            age: v.age,
            born: v.born,
            active: v.active,
            photo: v.photo,
            balance: v.balance,
            ownerId: v.ownerId,
            count: v.count,
          });
          doc.profile = v.profile;
          doc.patientRecord.billing.cardNumber = v.patientRecord.billing.cardNumber;
          doc.patientRecord.billing.amount = v.patientRecord.billing.amount;
          doc.demographics.alienRegistrationNumber = v.demographics.alienRegistrationNumber;
          doc.identifications[0].idNumber = v.identifications[0].idNumber;
          doc.identifications[1].idNumber = v.identifications[1].idNumber;
          doc.aliases = v.aliases;
          doc.scores.set(0, v.scores[0]);
          doc.scores.set(1, v.scores[1]);
          doc.secrets.set('k1', v.secrets.k1);
          doc.secrets.set('k2', v.secrets.k2);
          doc.contacts.get('home').phone = v.contacts.home.phone;
          await check(t, {
            write: () => doc.save(),
            plaintexts: plaintextsOf(s, v),
            id: doc._id,
            expected: withStatus(expectedOf(v)),
          });
          assert.equal(doc.ssn, v.ssn);
        });

        it('save() after push, pull, splice and replace on arrays and subdocuments', async (t) => {
          const { values: s, doc: created } = await seed();
          const v = recordValues(mongoose);
          const doc = await Record.findById(created._id);
          doc.aliases.push(v.more.alias);
          doc.scores.pull(s.scores[0]);
          doc.identifications.push({ idType: 'visa', idNumber: v.more.idNumber });
          doc.identifications.splice(0, 1);
          doc.demographics = { alienRegistrationNumber: v.demographics.alienRegistrationNumber, country: 'XX' };
          doc.contacts.set('work', { phone: v.more.phone, label: 'work' });
          await check(t, {
            write: () => doc.save(),
            plaintexts: plaintextsOf(s, v),
            id: doc._id,
            expected: {
              ...withStatus(expectedOf({ ...s, identifications: [], scores: [], aliases: [] })),
              'aliases.0': s.aliases[0],
              'aliases.2': v.more.alias,
              'scores.0': s.scores[1],
              'identifications.0.idNumber': s.identifications[1].idNumber,
              'identifications.1.idNumber': v.more.idNumber,
              'demographics.alienRegistrationNumber': v.demographics.alienRegistrationNumber,
              'contacts.work.phone': v.more.phone,
            },
          });
          const stored = await raw(doc._id);
          assert.equal(stored.aliases.length, 3);
          assert.equal(stored.scores.length, 1);
        });

        it('save() after pull() of a subdocument and of an encrypted element', async (t) => {
          const { values: s, doc: created } = await seed();
          const doc = await Record.findById(created._id);
          doc.identifications.pull(doc.identifications[0]._id);
          doc.aliases.pull(s.aliases[1]);
          await check(t, {
            write: () => doc.save(),
            plaintexts: plaintextsOf(s),
            id: doc._id,
            expected: {
              ...withStatus(expectedOf({ ...s, identifications: [], aliases: [] })),
              'identifications.0.idNumber': s.identifications[1].idNumber,
              'aliases.0': s.aliases[0],
            },
          });
          const stored = await raw(doc._id);
          assert.equal(stored.identifications.length, 1);
          assert.equal(stored.aliases.length, 1);
        });

        it('save() of an unchanged document keeps every ciphertext byte-identical', async (t) => {
          const { values: s, doc: created } = await seed();
          const before = await raw(created._id);
          const doc = await Record.findById(created._id);
          doc.name = 'only the name changes';
          doc.markModified('identifications');
          doc.markModified('aliases');
          await check(t, {
            write: () => doc.save(),
            plaintexts: plaintextsOf(s),
            id: doc._id,
            expected: withStatus(expectedOf(s)),
          });
          const after = await raw(created._id);
          assert.equal(after.name, 'only the name changes');
          // (Rewriting whole arrays bumps the version key.)
          assert.deepEqual({ ...after, name: before.name, __v: before.__v }, before);
        });

        it('Model.bulkSave() of changed loaded documents', async (t) => {
          const { values: s, doc: created } = await seed();
          const v = recordValues(mongoose);
          const doc = await Record.findById(created._id);
          doc.ssn = v.ssn;
          doc.age = v.age;
          doc.aliases.push(v.more.alias);
          doc.identifications[1].idNumber = v.more.idNumber;
          await check(t, {
            write: () => Record.bulkSave([doc]),
            plaintexts: plaintextsOf(s, v),
            id: doc._id,
            expected: {
              ...withStatus(expectedOf(s)),
              ssn: v.ssn,
              age: v.age,
              'aliases.2': v.more.alias,
              'identifications.1.idNumber': v.more.idNumber,
            },
          });
          assert.equal(doc.ssn, v.ssn, 'the document shows plaintext after bulkSave');
        });
      });

      describe('replacements', () => {
        const REPLACE_METHODS = [
          { name: 'Model.replaceOne', run: (M, filter, doc, upsert) => M.replaceOne(filter, doc, { upsert }) },
          {
            name: 'Model.findOneAndReplace',
            returnsDocument: true,
            run: (M, filter, doc, upsert) => M.findOneAndReplace(filter, doc, { upsert, returnDocument: 'after' }),
          },
          {
            name: 'Model.bulkWrite replaceOne',
            run: (M, filter, doc, upsert) => M.bulkWrite([{ replaceOne: { filter, replacement: doc, upsert } }]),
          },
        ];
        for (const method of REPLACE_METHODS) {
          it(`${method.name} of an existing document`, async (t) => {
            const { values: s, doc } = await seed();
            const v = recordValues(mongoose);
            const { result } = await check(t, {
              write: () => method.run(Record, { _id: doc._id }, docOf(v), false),
              plaintexts: plaintextsOf(s, v),
              id: doc._id,
              expected: withStatus(expectedOf(v)),
            });
            if (method.returnsDocument) assert.equal(result.ssn, v.ssn, 'the returned document is decrypted');
          });

          it(`${method.name} with upsert (inserts)`, async (t) => {
            const v = recordValues(mongoose);
            const id = new mongoose.Types.ObjectId();
            await check(t, {
              write: () => method.run(Record, { _id: id }, docOf(v), true),
              plaintexts: plaintextsOf(v),
              id,
              expected: withStatus(expectedOf(v)),
            });
          });
        }
      });

      describe('updates', () => {
        for (const method of UPDATE_METHODS) {
          for (const shape of UPDATE_SHAPES) {
            it(`${method.name}: ${shape.name}`, async (t) => {
              const { values: s, doc } = await seed();
              const v = recordValues(mongoose);
              const { update, filter = {}, arrayFilters } = shape.build(s, v);
              const { result, rejected } = await check(t, {
                write: () =>
                  method.run(Record, { id: doc._id, doc, filter: { _id: doc._id, ...filter }, update, arrayFilters }),
                plaintexts: plaintextsOf(s, v),
                id: doc._id,
                expected: shape.expect(s, v),
                serverMayReject: Boolean(shape.ferretdb),
                // $ needs the array in the filter; an _id-only filter cannot have it, on any server.
                anyServerRejects: Boolean(shape.positional && method.idOnly),
              });
              if (!rejected && method.returnsDocument) {
                for (const [path, value] of Object.entries(shape.expect(s, v))) {
                  assertSameTyped(result.get(path), value, `returned document ${path}`);
                }
              }
            });
          }
        }
      });

      describe('upserts', () => {
        const UPSERT_SHAPES = [
          {
            name: '$set and $setOnInsert',
            build: (v) => {
              const { patientRecord, demographics, identifications, aliases, scores, secrets, contacts, ...top } =
                docOf(v);
              return {
                $set: top,
                $setOnInsert: { patientRecord, demographics, identifications, aliases, scores, secrets, contacts },
              };
            },
          },
          { name: 'top-level keys', build: (v) => fullUpdate(v) },
        ];
        for (const method of UPDATE_METHODS.filter((m) => m.name !== 'doc.updateOne')) {
          for (const shape of UPSERT_SHAPES) {
            it(`${method.name} with upsert: ${shape.name} (the encrypted default is encrypted too)`, async (t) => {
              const v = recordValues(mongoose);
              const id = new mongoose.Types.ObjectId();
              const { result } = await check(t, {
                write: () => method.run(Record, { id, filter: { _id: id }, update: shape.build(v), upsert: true }),
                plaintexts: plaintextsOf(v),
                id,
                expected: withStatus(expectedOf(v)),
              });
              if (method.returnsDocument) assert.equal(result.get('status'), STATUS_DEFAULT);
            });
          }
        }
      });
    });
  }
});
