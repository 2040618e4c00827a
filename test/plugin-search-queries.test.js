'use strict';

// Queries on searchable encrypted paths (issue 20), on Mongoose 9 and
// Mongoose 8 against a real server: every supported operator through every
// method that takes a filter, rewritten to the blind index. For each: the
// documents matched, and what was sent (commandStarted): no plaintext, and
// the index values of both live index-key versions (documents indexed under
// 01 and under 02 are both found). The stored documents are written with
// the driver (ciphertexts from the core, index values from the contract's
// derivation in node:crypto), so the queries are checked against the
// contract, not against the plugin's own write side.

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');

const {
  it,
  openMonitoredDatabase,
  monitor,
  findPlaintexts,
  isFerretDB,
  isServerRejection,
  TEST_SERVER,
} = require('./plugin-helpers');
const { startServer, mongooseVersions, closeTestDatabase } = require('./harness');
const {
  indexValues,
  patientSchema,
  learnerSchema,
  PATIENTS,
  LEARNERS,
  storedPatient,
  storedLearner,
  PLAINTEXTS,
} = require('./search-query-helpers');
const { CASES, LEARNER_CASES, REFUSALS } = require('./search-cases');

/**
 * Each method: `run(Model, filter, tag)` (monitored), then `matched(result,
 * tag)` -> the names of the documents the filter selected (`single`: at
 * most one of them). `destructive`: the documents are stored again after.
 */
function methods(read) {
  const byTag = async (tag) => (await read.find({ tag })).map((d) => d.name).sort();
  const names = (docs) => docs.map((d) => d.name).sort();
  return [
    { name: 'find', run: (M, f) => M.find(f), matched: names },
    { name: 'find().lean()', run: (M, f) => M.find(f).lean(), matched: names },
    { name: 'findOne', single: true, run: (M, f) => M.findOne(f), matched: (d) => (d ? [d.name] : []) },
    {
      name: 'exists',
      single: true,
      run: (M, f) => M.exists(f),
      matched: async (r) => (r ? names(await read.find({ _id: r._id })) : []),
    },
    { name: 'countDocuments', count: true, run: (M, f) => M.countDocuments(f), matched: (n) => n },
    { name: 'distinct(name)', run: (M, f) => M.distinct('name', f), matched: (list) => [...list].sort() },
    { name: 'aggregate leading $match', run: (M, f) => M.aggregate([{ $match: f }]), matched: names },
    { name: 'updateMany', run: (M, f, tag) => M.updateMany(f, { $set: { tag } }), matched: (r, tag) => byTag(tag) },
    {
      name: 'updateOne',
      single: true,
      run: (M, f, tag) => M.updateOne(f, { $set: { tag } }),
      matched: (r, tag) => byTag(tag),
    },
    {
      name: 'findOneAndUpdate',
      single: true,
      run: (M, f, tag) => M.findOneAndUpdate(f, { $set: { tag } }),
      matched: (d) => (d ? [d.name] : []),
    },
    {
      name: 'bulkWrite updateMany',
      run: (M, f, tag) => M.bulkWrite([{ updateMany: { filter: f, update: { $set: { tag } } } }]),
      matched: (r, tag) => byTag(tag),
    },
    {
      name: 'bulkWrite updateOne',
      single: true,
      run: (M, f, tag) => M.bulkWrite([{ updateOne: { filter: f, update: { $set: { tag } } } }]),
      matched: (r, tag) => byTag(tag),
    },
    {
      name: 'replaceOne',
      single: true,
      destructive: true,
      run: (M, f, tag) => M.replaceOne(f, { name: 'replaced', tag }),
      matched: (r, tag) => byTagBeforeReplace(read, tag),
    },
    {
      name: 'findOneAndReplace',
      single: true,
      destructive: true,
      run: (M, f, tag) => M.findOneAndReplace(f, { name: 'replaced', tag }),
      matched: (d) => (d ? [d.name] : []),
    },
    {
      name: 'bulkWrite replaceOne',
      single: true,
      destructive: true,
      run: (M, f, tag) => M.bulkWrite([{ replaceOne: { filter: f, replacement: { name: 'replaced', tag } } }]),
      matched: (r, tag) => byTagBeforeReplace(read, tag),
    },
    {
      name: 'deleteMany',
      destructive: true,
      run: (M, f) => M.deleteMany(f),
      matched: async () => missing(read),
    },
    {
      name: 'deleteOne',
      single: true,
      destructive: true,
      run: (M, f) => M.deleteOne(f),
      matched: async () => missing(read),
    },
    {
      name: 'findOneAndDelete',
      single: true,
      destructive: true,
      run: (M, f) => M.findOneAndDelete(f),
      matched: (d) => (d ? [d.name] : []),
    },
    {
      name: 'bulkWrite deleteMany',
      destructive: true,
      run: (M, f) => M.bulkWrite([{ deleteMany: { filter: f } }]),
      matched: async () => missing(read),
    },
    {
      name: 'bulkWrite deleteOne',
      single: true,
      destructive: true,
      run: (M, f) => M.bulkWrite([{ deleteOne: { filter: f } }]),
      matched: async () => missing(read),
    },
  ];
}

/** The names of the seeded documents no longer there. */
async function missing(read) {
  const left = new Set((await read.find({})).map((d) => d.name));
  return read
    .seeded()
    .map((d) => d.name)
    .filter((name) => !left.has(name))
    .sort();
}

/** A replaced document lost its name: find it by _id among the seeded ones. */
async function byTagBeforeReplace(read, tag) {
  const names = new Map(read.seeded().map((d) => [String(d._id), d.name]));
  return (await read.find({ tag })).map((d) => names.get(String(d._id))).sort();
}

let tags = 0;

describe('fieldEncryption: queries on searchable paths', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { mongoose, label } of mongooseVersions()) {
    describe(label, () => {
      let connection;
      let Patient;
      let Learner;
      let watch;
      let serverKind;
      const stored = {};

      /** Stores the fixture documents again (same _ids and ciphertexts). */
      async function seed(collection) {
        const col = connection.db.collection(collection);
        await col.deleteMany({});
        await col.insertMany(stored[collection].map((d) => ({ ...d })));
      }

      /** Raw reads of a collection, and the documents seeded into it. */
      function reader(collection) {
        return {
          find: (filter) => connection.db.collection(collection).find(filter).toArray(),
          seeded: () => stored[collection],
        };
      }

      before(async () => {
        connection = await openMonitoredDatabase(mongoose, server.uri, __filename);
        Patient = connection.model('Patient', patientSchema(mongoose));
        Learner = connection.model('Learner', learnerSchema(mongoose));
        stored.patients = PATIENTS.map((p) => storedPatient(mongoose, p));
        stored.learners = LEARNERS.map((l) => storedLearner(mongoose, l));
        await seed('patients');
        await seed('learners');
        watch = monitor(connection, mongoose);
        serverKind = (await isFerretDB(connection)) ? 'ferretdb' : TEST_SERVER;
      });
      after(() => closeTestDatabase(connection));

      /** The filter parts of a command: find/count/distinct/findAndModify filters, update and delete `q`s, pipelines. */
      function filtersOf(command) {
        const statements = command.updates || command.deletes || [];
        return [command.filter, command.query, command.pipeline, ...statements.map((s) => s.q)];
      }

      /** Runs one method with one filter; checks the documents matched and the commands sent. */
      async function check(t, Model, collection, method, { filter, expected, indexed, limits = {} }) {
        const limit = limits[serverKind];
        const tag = `tag-${++tags}`;
        const { result, error, commands } = await watch.during(() => method.run(Model, filter, tag));
        // A server that cannot run the shape: what was sent is still checked.
        if (error && !(limit && isServerRejection(error))) throw error;
        try {
          for (const { name, command } of commands) {
            const found = findPlaintexts(command, PLAINTEXTS);
            assert.deepEqual(found, [], `the ${name} command sent a plaintext: ${found.join(', ')}`);
          }
          const sent = JSON.stringify(commands.map((c) => c.command));
          for (const [path, input] of indexed) {
            for (const value of indexValues(collection, path, input))
              assert.ok(
                sent.includes(value),
                `the index value ${value.slice(0, 12)}… of ${path} (both versions) was sent`,
              );
          }
          // Only the filters: a replacement document carries its own index values.
          const filters = JSON.stringify(commands.map((c) => filtersOf(c.command)));
          if (indexed.length === 0) assert.ok(!filters.includes('_bidx'), 'no index path was needed');
          if (limit) return t.skip(`${limit}; the commands were checked`);
          const matched = await method.matched(result, tag);
          if (method.count) assert.equal(matched, expected.length);
          else if (method.single) {
            assert.equal(matched.length, Math.min(1, expected.length), `one of ${expected} (got ${matched})`);
            for (const name of matched) assert.ok(expected.includes(name), `${name} is one of ${expected}`);
          } else assert.deepEqual(matched, [...expected].sort());
        } finally {
          if (method.destructive) await seed(collection);
          else if (method.name.includes('update'))
            await connection.db.collection(collection).updateMany({}, { $unset: { tag: 1 } });
        }
      }

      describe('Patient: every operator through every method', () => {
        for (const c of CASES) {
          for (const method of methods(reader('patients'))) {
            it(`${method.name}: ${c.what}`, (t) => check(t, Patient, 'patients', method, c));
          }
        }
      });

      describe('Learner: a searchable field of an array of subdocuments', () => {
        for (const c of LEARNER_CASES) {
          for (const method of methods(reader('learners'))) {
            it(`${method.name}: ${c.what}`, (t) => check(t, Learner, 'learners', method, c));
          }
        }
      });

      describe('the seed lookups read back decrypted', () => {
        it("Patient.find({ 'patientRecord.ssn': '987-65-4320' }) and the others, hydrated and lean", async () => {
          const [p1] = await Patient.find({ 'patientRecord.ssn': '987-65-4320' });
          assert.equal(p1.patientRecord.ssn, '987-65-4320');
          assert.deepEqual([...p1.medications], PATIENTS[0].medications);
          const lean = await Patient.find({ 'patientRecord.ssn': { $in: ['987-65-4320', '987-65-4321'] } })
            .sort({ name: 1 })
            .lean();
          assert.deepEqual(
            lean.map((d) => d.patientRecord.ssn),
            ['987-65-4320', '987-65-4321'],
          );
          const byMedication = await Patient.find({ medications: 'Atorvastatin' }).sort({ name: 1 });
          assert.deepEqual(
            byMedication.map((d) => d.name),
            ['p1', 'p2'],
          );
          const [visa] = await Patient.find({ 'patientRecord.billing': { type: 'Visa', number: '4111111111111111' } });
          assert.deepEqual(visa.patientRecord.billing, PATIENTS[0].billing);
          const learner = await Learner.findOne({ 'personExtended.identifications.idNumber': 'P1234567' });
          assert.equal(learner.name, 'l1');
          assert.equal(learner.personExtended.identifications[0].idNumber, 'P1234567');
        });

        it('findById(id).where(filter): the helper forms share the hooks', async () => {
          const p1 = stored.patients[0];
          assert.equal((await Patient.findById(p1._id).where({ 'patientRecord.ssn': '987-65-4320' })).name, 'p1');
          assert.equal(await Patient.findById(p1._id).where({ 'patientRecord.ssn': '987-65-4321' }), null);
          const updated = await Patient.findByIdAndUpdate(p1._id, { $set: { tag: 'by-id' } }, { new: true }).where({
            medications: 'Metformin',
          });
          assert.equal(updated.tag, 'by-id');
          await connection.db.collection('patients').updateMany({}, { $unset: { tag: 1 } });
        });

        it("Mongoose's sanitizeFilter: rewritten conditions survive it, an untrusted operator is not rewritten", async () => {
          const sanitized = { sanitizeFilter: true };
          const names = (docs) => docs.map((d) => d.name).sort();
          assert.deepEqual(names(await Patient.find({ 'patientRecord.ssn': '987-65-4320' }).setOptions(sanitized)), [
            'p1',
          ]);
          assert.deepEqual(
            names(await Patient.find({ medications: 'Atorvastatin', 'patientRecord.ssn': null }).setOptions(sanitized)),
            [],
          );
          assert.deepEqual(
            names(
              await Patient.find({
                'patientRecord.ssn': mongoose.trusted({ $in: ['987-65-4320', '987-65-4321'] }),
              }).setOptions(sanitized),
            ),
            ['p1', 'p2'],
          );
          // { $ne: … } from a request is an object compared with $eq, which a String path cannot hold.
          const { error, commands } = await watch.during(() =>
            Patient.find({ 'patientRecord.ssn': { $ne: '000-00-0000' } }).setOptions(sanitized),
          );
          assert.equal(error && error.code, 'ERR_FIELDCRYPT_UNSUPPORTED_TYPE');
          assert.deepEqual(commands, []);
        });

        it('strictQuery: the index paths are schema paths, so Mongoose keeps them in the filter', async () => {
          // The sibling paths are declared by the plugin's write side; without
          // them strictQuery would drop the rewritten conditions.
          assert.ok(Patient.schema.path('patientRecord.ssn_bidx'), 'the plugin declares the index paths');
          for (const strictQuery of [true, 'throw']) {
            const found = await Patient.find({
              'patientRecord.ssn': '987-65-4320',
              medications: 'Metformin',
            }).setOptions({
              strictQuery,
            });
            assert.deepEqual(
              found.map((d) => d.name),
              ['p1'],
            );
          }
        });

        it('an upsert whose update assigns the searchable path is rewritten, not refused', async () => {
          const ssn = '000-00-0000';
          const { error, commands } = await watch.during(() =>
            Patient.updateOne(
              { 'patientRecord.ssn': ssn },
              { $setOnInsert: { 'patientRecord.ssn': ssn, name: 'upserted' } },
              { upsert: true },
            ),
          );
          try {
            for (const { name, command } of commands) {
              assert.deepEqual(findPlaintexts(command, PLAINTEXTS), [], `the ${name} command sent a plaintext`);
            }
            // (Mongoose would refuse a filter path its schema does not declare in
            // an upsert (strict): the write side declares the index paths.)
            if (error) throw error;
            const raw = await connection.db.collection('patients').findOne({ name: 'upserted' });
            assert.equal(raw.patientRecord.ssn_bidx, indexValues('patients', 'patientRecord.ssn', ssn)[0]);
          } finally {
            await seed('patients');
          }
        });

        it('the caller’s filter object is not changed', async () => {
          const filter = { 'patientRecord.ssn': { $in: ['987-65-4320'] }, medications: 'Metformin' };
          const copy = structuredClone(filter);
          await Patient.find(filter);
          await Patient.bulkWrite([{ updateMany: { filter, update: { $set: { tag: 'x' } } } }]);
          assert.deepEqual(filter, copy);
          await connection.db.collection('patients').updateMany({}, { $unset: { tag: 1 } });
        });
      });

      describe('refused: what a blind index cannot answer, and paths that are not searchable', () => {
        /** Runs `attempt`; expects the FieldCryptError naming the path, and that no command was sent. */
        async function refused(attempt, model, path, code = 'ERR_FIELDCRYPT_UNSUPPORTED_QUERY') {
          const { error, commands } = await watch.during(attempt);
          assert.ok(error, 'the operation was refused');
          assert.equal(error.name, 'FieldCryptError', `a FieldCryptError, got ${error && error.stack}`);
          assert.equal(error.code, code);
          assert.equal(error.path, path);
          assert.equal(error.modelName, model);
          assert.ok(error.message.includes(`${model}.${path}`), `the message names ${model}.${path}: ${error.message}`);
          assert.deepEqual(findPlaintexts(error.message, PLAINTEXTS), [], 'the message does not contain the value');
          assert.deepEqual(
            commands.map((c) => c.name),
            [],
            'no command was sent',
          );
          return error;
        }

        for (const { what, filter, path, message, operator } of REFUSALS) {
          for (const [name, run] of [
            ['find', (M, f) => M.find(f)],
            ['countDocuments', (M, f) => M.countDocuments(f)],
            ['updateMany', (M, f) => M.updateMany(f, { $set: { tag: 't' } })],
            ['bulkWrite deleteMany', (M, f) => M.bulkWrite([{ deleteMany: { filter: f } }])],
            ['aggregate leading $match', (M, f) => M.aggregate([{ $match: f }])],
          ]) {
            it(`${name}: ${what}`, async () => {
              const Model = path.startsWith('personExtended') ? Learner : Patient;
              const error = await refused(() => run(Model, filter), Model.modelName, path);
              for (const part of message) assert.ok(error.message.includes(part), `"${part}" in: ${error.message}`);
              if (operator) assert.equal(error.operator, operator);
            });
          }
        }

        it('distinct() of an encrypted path (searchable or not) returns ciphertexts: refused', async () => {
          await refused(() => Patient.distinct('patientRecord.ssn'), 'Patient', 'patientRecord.ssn');
          await refused(() => Patient.distinct('notes', { name: 'p3' }), 'Patient', 'notes');
          await refused(() => Patient.distinct('patientRecord'), 'Patient', 'patientRecord.ssn');
        });

        it('an upsert whose filter has an equality on a searchable path, unless the update assigns the path', async () => {
          const f = { 'patientRecord.ssn': '000-00-0000' };
          const e = await refused(
            () => Patient.updateOne(f, { $set: { name: 'n' } }, { upsert: true }),
            'Patient',
            'patientRecord.ssn',
          );
          assert.match(e.message, /upsert/);
          await refused(
            () => Patient.findOneAndUpdate(f, { name: 'n' }, { upsert: true }),
            'Patient',
            'patientRecord.ssn',
          );
          await refused(
            () => Patient.bulkWrite([{ updateOne: { filter: f, update: { $set: { name: 'n' } }, upsert: true } }]),
            'Patient',
            'patientRecord.ssn',
          );
          // Without upsert, or with a negated condition, the same filter is rewritten.
          assert.equal((await Patient.updateOne(f, { $set: { name: 'n' } })).matchedCount, 0);
        });
      });
    });
  }
});
