'use strict';

// The fieldEncryption plugin fails closed, on Mongoose 9 and Mongoose 8:
// update operators that cannot work on ciphertext, updates inside an
// encrypted value, update pipelines that write encrypted paths, and filters
// that would send a plaintext are refused with a FieldCryptError naming the
// model and the path (never the value), and no command is sent at all.

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');

const {
  it,
  openMonitoredDatabase,
  defineRecord,
  recordValues,
  docOf,
  plaintextsOf,
  monitor,
  assertStoredEncrypted,
  isFerretDB,
} = require('./plugin-helpers');
const { startServer, mongooseVersions, closeTestDatabase } = require('./harness');

/**
 * Each case: what is attempted, the code, and the path the error must name.
 * `run(Record, { id, doc, v })`.
 */
const UPDATE_REFUSALS = [
  ['$inc on an encrypted Number', { $inc: { age: 1 } }, 'age'],
  ['$mul on an encrypted Number', { $mul: { 'patientRecord.billing.amount': 2 } }, 'patientRecord.billing.amount'],
  ['$min on an encrypted Date', { $min: { born: new Date(0) } }, 'born'],
  ['$max on an encrypted Decimal128', { $max: { balance: '5' } }, 'balance'],
  ['$bit on an encrypted Number', { $bit: { age: { and: 1 } } }, 'age'],
  ['$currentDate on an encrypted Date', { $currentDate: { born: true } }, 'born'],
  ['$rename of an encrypted path', { $rename: { ssn: 'formerSsn' } }, 'ssn'],
  ['$rename onto an encrypted path', { $rename: { name: 'ssn' } }, 'ssn'],
  [
    '$rename of a container of encrypted paths',
    { $rename: { demographics: 'demo' } },
    'demographics.alienRegistrationNumber',
  ],
  ['$inc on an encrypted array element', { $inc: { 'scores.0': 1 } }, 'scores'],
  ['$pull by value from an encrypted array', { $pull: { aliases: 'aliasA-zz' } }, 'aliases'],
  [
    '$pull by a condition on an encrypted field',
    { $pull: { identifications: { idNumber: 'pass-zz' } } },
    'identifications.idNumber',
  ],
  ['$pullAll from an encrypted array', { $pullAll: { scores: [1.5] } }, 'scores'],
  ['$set inside an encrypted Mixed value', { $set: { 'profile.note': 'profile-zz' } }, 'profile'],
  ['$set inside an encrypted Buffer', { $set: { 'photo.0': 1 } }, 'photo'],
  ['$push with $sort on encrypted elements', { $push: { aliases: { $each: ['aliasX-zz'], $sort: 1 } } }, 'aliases'],
  [
    '$push with $sort by an encrypted field',
    { $push: { identifications: { $each: [{ idNumber: 'passX-zz' }], $sort: { idNumber: 1 } } } },
    'identifications',
  ],
  ['an update pipeline that sets an encrypted path', [{ $set: { ssn: 'ssn-pipe-zz' } }], 'ssn'],
  ['an update pipeline that replaces the document', [{ $replaceWith: { name: 'x' } }], 'ssn'],
];

const FILTER_REFUSALS = [
  ['equality with a plaintext', { ssn: 'ssn-find-zz' }, 'ssn'],
  ['$in with plaintexts', { age: { $in: [1000.0625, 7] } }, 'age'],
  ['$regex on an encrypted path', { ssn: { $regex: '^ssn' } }, 'ssn'],
  ['$gt on an encrypted Date', { born: { $gt: new Date(0) } }, 'born'],
  [
    'an encrypted field of an array element',
    { 'identifications.idNumber': 'pass-find-zz' },
    'identifications.idNumber',
  ],
  [
    '$elemMatch on an encrypted field',
    { identifications: { $elemMatch: { idNumber: 'pass-find-zz' } } },
    'identifications.idNumber',
  ],
  [
    'a whole subdocument with a plaintext',
    { demographics: { alienRegistrationNumber: 'arn-find-zz', country: 'UT' } },
    'demographics.alienRegistrationNumber',
  ],
  ['a Map value', { 'secrets.k1': 'secret1-find-zz' }, 'secrets.$*'],
  ['$or with a plaintext', { $or: [{ name: 'x' }, { ssn: 'ssn-find-zz' }] }, 'ssn'],
  ['$expr naming an encrypted path', { $expr: { $eq: ['$ssn', 'ssn-find-zz'] } }, 'ssn'],
  ['inside an encrypted Mixed value', { 'profile.note': 'profile-find-zz' }, 'profile'],
];

describe('fieldEncryption: refusals', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { mongoose, label, major } of mongooseVersions()) {
    describe(label, () => {
      let connection;
      let Record;
      let watch;

      before(async () => {
        connection = await openMonitoredDatabase(mongoose, server.uri, __filename);
        Record = defineRecord(mongoose, connection);
        await Record.init();
        watch = monitor(connection, mongoose);
      });
      after(() => closeTestDatabase(connection));

      /** Runs `attempt`, expects the FieldCryptError and that no command was sent. */
      async function refused(attempt, code, path) {
        const { error, commands } = await watch.during(attempt);
        assert.ok(error, 'the operation was refused');
        assert.equal(error.name, 'FieldCryptError', `a FieldCryptError, got ${error && error.stack}`);
        assert.equal(error.code, code);
        assert.equal(error.path, path);
        assert.equal(error.modelName, 'Record');
        assert.ok(error.message.includes(`Record.${path}`), `the message names Record.${path}: ${error.message}`);
        assert.ok(!/-zz/.test(error.message), 'the message does not contain the value');
        assert.deepEqual(
          commands.map((c) => c.name),
          [],
          'no command was sent',
        );
        return error;
      }

      describe('update operators and shapes that cannot work on ciphertext', () => {
        // Mongoose 9 takes update pipelines only with `updatePipeline: true`.
        const opts = (u) => (Array.isArray(u) && major >= 9 ? { updatePipeline: true } : {});
        const METHODS = [
          ['Model.updateOne', (M, id, u) => M.updateOne({ _id: id }, u, opts(u))],
          ['Model.updateMany', (M, id, u) => M.updateMany({ _id: id }, u, opts(u))],
          ['Model.findOneAndUpdate', (M, id, u) => M.findOneAndUpdate({ _id: id }, u, opts(u))],
          ['Model.findByIdAndUpdate', (M, id, u) => M.findByIdAndUpdate(id, u, opts(u))],
          ['Model.bulkWrite updateOne', (M, id, u) => M.bulkWrite([{ updateOne: { filter: { _id: id }, update: u } }])],
        ];
        for (const [what, update, path] of UPDATE_REFUSALS) {
          for (const [method, run] of METHODS) {
            it(`${method}: ${what}`, async () => {
              const id = new mongoose.Types.ObjectId();
              await refused(() => run(Record, id, update), 'ERR_FIELDCRYPT_UNSUPPORTED_OPERATOR', path);
            });
          }
        }

        it('doc.updateOne(): $inc on an encrypted path', async () => {
          const doc = await Record.create(docOf(recordValues(mongoose)));
          await refused(() => doc.updateOne({ $inc: { age: 1 } }), 'ERR_FIELDCRYPT_UNSUPPORTED_OPERATOR', 'age');
        });

        it('doc.$inc() on an encrypted path, then save()', async () => {
          const doc = await Record.create(docOf(recordValues(mongoose)));
          doc.$inc('age', 1);
          await refused(() => doc.save(), 'ERR_FIELDCRYPT_UNSUPPORTED_OPERATOR', 'age');
        });

        it('arrayFilters that test an encrypted field', async () => {
          const id = new mongoose.Types.ObjectId();
          await refused(
            () =>
              Record.updateOne(
                { _id: id },
                { $set: { 'identifications.$[el].idType': 'x' } },
                { arrayFilters: [{ 'el.idNumber': 'pass-af-zz' }] },
              ),
            'ERR_FIELDCRYPT_UNSUPPORTED_QUERY',
            'identifications.idNumber',
          );
        });

        it('Model.bulkWrite: one refused op stops the whole batch before anything is sent', async () => {
          const v = recordValues(mongoose);
          const id = new mongoose.Types.ObjectId();
          await refused(
            () =>
              Record.bulkWrite([
                { insertOne: { document: { _id: id, ...docOf(v) } } },
                { updateOne: { filter: { _id: id }, update: { $inc: { age: 1 } } } },
              ]),
            'ERR_FIELDCRYPT_UNSUPPORTED_OPERATOR',
            'age',
          );
          assert.equal(await connection.db.collection('records').findOne({ _id: id }), null);
        });

        it('allowed on the same model: $unset, $pop, $pull by a condition on an unencrypted field, $inc elsewhere', async () => {
          const v = recordValues(mongoose);
          const doc = await Record.create({ ...docOf(v), patientRecord: { ...v.patientRecord, ward: 'w' } });
          await Record.updateOne(
            { _id: doc._id },
            {
              $unset: { ssn: 1 },
              $pop: { aliases: 1 },
              $pull: { identifications: { idType: 'license' } },
              $inc: { __v: 1 },
            },
          );
          const raw = await connection.db.collection('records').findOne({ _id: doc._id });
          assert.equal(raw.ssn, undefined);
          assert.equal(raw.aliases.length, 1);
          assertStoredEncrypted(Record, raw, plaintextsOf(v));
        });
      });

      describe('filters that would send a plaintext', () => {
        const METHODS = [
          ['Model.find', (M, f) => M.find(f)],
          ['Model.findOne (lean)', (M, f) => M.findOne(f).lean()],
          ['Model.countDocuments', (M, f) => M.countDocuments(f)],
          ['Model.deleteMany', (M, f) => M.deleteMany(f)],
          ['Model.findOneAndDelete', (M, f) => M.findOneAndDelete(f)],
          ['Model.updateOne with upsert', (M, f) => M.updateOne(f, { $set: { name: 'x' } }, { upsert: true })],
          ['Model.replaceOne with upsert', (M, f) => M.replaceOne(f, { name: 'x' }, { upsert: true })],
          [
            'Model.bulkWrite updateOne with upsert',
            (M, f) => M.bulkWrite([{ updateOne: { filter: f, update: { name: 'x' }, upsert: true } }]),
          ],
          ['Model.bulkWrite deleteMany', (M, f) => M.bulkWrite([{ deleteMany: { filter: f } }])],
          ['Model.aggregate $match', (M, f) => M.aggregate([{ $sort: { name: 1 } }, { $match: f }])],
        ];
        for (const [what, filter, path] of FILTER_REFUSALS) {
          for (const [method, run] of METHODS) {
            it(`${method}: ${what}`, async () => {
              await refused(() => run(Record, filter), 'ERR_FIELDCRYPT_UNSUPPORTED_QUERY', path);
            });
          }
        }

        it('allowed: null, $exists, $type, $size, a stored ciphertext, and unencrypted fields', async () => {
          const v = recordValues(mongoose);
          const doc = await Record.create(docOf(v));
          const stored = (await connection.db.collection('records').findOne({ _id: doc._id })).ssn;
          assert.equal((await Record.find({ _id: doc._id, ssn: stored })).length, 1);
          assert.equal((await Record.find({ _id: doc._id, ssn: { $exists: true }, age: { $ne: null } })).length, 1);
          assert.equal(
            (await Record.find({ _id: doc._id, aliases: { $size: 2 }, born: { $type: 'string' } })).length,
            1,
          );
          assert.equal(
            (await Record.find({ _id: doc._id, 'identifications.idType': 'passport', ssn: { $in: [stored, null] } }))
              .length,
            1,
          );
          assert.equal(await Record.countDocuments({ _id: doc._id, demographics: { $exists: true } }), 1);
          assert.equal((await Record.aggregate([{ $match: { _id: doc._id, ssn: stored } }])).length, 1);
        });

        it("after a stage that reshapes the documents, field names are the pipeline's own: not checked", async (t) => {
          const v = recordValues(mongoose);
          const doc = await Record.create(docOf(v));
          const reshaped = await Record.aggregate([
            { $match: { _id: doc._id } },
            { $project: { ssn: '$name' } },
            { $match: { ssn: v.name } },
          ]);
          // Not refused (it did not throw) on any server; the result needs a server that computes it.
          if (await isFerretDB(connection))
            return t.skip('FerretDB v1 returns no document for a $match on a field computed by $project');
          assert.deepEqual(reshaped, [{ _id: doc._id, ssn: v.name }], "the pipeline's own ssn is matched, not refused");
        });
      });
    });
  }
});
