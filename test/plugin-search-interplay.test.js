'use strict';

// Where the write side and the query side of blind indexes (issue 20) meet,
// on Mongoose 9 and 8 against a real server: upserts whose filter names a
// searchable value (the inserted document gets the index of the value it
// stores, never the filter's), index values in no read output unless
// selected (toJSON, toObject, lean, cursors, decryptDocument), and
// discriminators (the base schema's searchable paths through a
// discriminator model; a discriminator's own searchable path is refused by
// writes and queries alike). Checked on raw stored documents and on what
// was sent (commandStarted).

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');

const {
  it,
  openMonitoredDatabase,
  monitor,
  assertNothingInClear,
  definePatient,
  defineLearner,
  patientValues,
  learnerValues,
  searchPlaintexts,
  assertPatientStored,
  assertLearnerStored,
  assertNoIndexValues,
  refIndex,
} = require('./search-helpers');
const { decryptDocument } = require('..');
const { startServer, mongooseVersions, closeTestDatabase } = require('./harness');

describe('fieldEncryption: blind indexes where writes and queries meet', () => {
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
      let Vip;
      let watch;
      const raw = (Model, filter) => connection.db.collection(Model.collection.collectionName).findOne(filter);
      const pcoll = () => Patient.collection.collectionName;

      before(async () => {
        connection = await openMonitoredDatabase(mongoose, server.uri, __filename);
        Patient = definePatient(mongoose, connection);
        Learner = defineLearner(mongoose, connection);
        Vip = Patient.discriminator('VipPatient', new mongoose.Schema({ tier: String }));
        await Patient.init();
        await Learner.init();
        watch = monitor(connection, mongoose);
      });
      after(() => closeTestDatabase(connection));

      /** Runs `write` monitored: it must succeed and send none of `plaintexts`. */
      async function sent(write, plaintexts) {
        const { result, error, commands } = await watch.during(write);
        if (error) throw error;
        assertNothingInClear(commands, plaintexts);
        return { result, commands };
      }

      describe('upserts whose filter names a searchable value', () => {
        const UPDATE_UPSERTS = [
          { name: 'updateOne', run: (f, u) => Patient.updateOne(f, u, { upsert: true }) },
          { name: 'findOneAndUpdate', run: (f, u) => Patient.findOneAndUpdate(f, u, { upsert: true, new: true }) },
          {
            name: 'bulkWrite updateOne',
            run: (f, u) => Patient.bulkWrite([{ updateOne: { filter: f, update: u, upsert: true } }]),
          },
        ];
        for (const method of UPDATE_UPSERTS) {
          it(`${method.name}: the inserted document is indexed by the value the update sets`, async () => {
            const v = patientValues();
            const name = `upsert-${Math.random()}`;
            // The filter's value (v.ssn) differs from the one set (v.more.ssn): the index follows the stored value.
            const { result } = await sent(
              () =>
                method.run(
                  { 'patientRecord.ssn': v.ssn, medications: v.medications[0] },
                  { $set: { 'patientRecord.ssn': v.more.ssn, name }, $setOnInsert: { medications: v.medications } },
                ),
              searchPlaintexts(v),
            );
            if (result && typeof result.toObject === 'function') assertNoIndexValues(result.toObject(), 'the result');
            assertPatientStored(await raw(Patient, { name }), { ssn: v.more.ssn, medications: v.medications }, pcoll());
            // The same filter with the stored value now finds it, through the same index.
            assert.equal((await Patient.findOne({ 'patientRecord.ssn': v.more.ssn })).name, name);
          });
        }

        it('an upsert assigning the container above the searchable path ($setOnInsert of patientRecord)', async () => {
          const v = patientValues();
          const name = `container-${Math.random()}`;
          await sent(
            () =>
              Patient.updateOne(
                { 'patientRecord.ssn': v.ssn },
                { $setOnInsert: { patientRecord: { ssn: v.ssn, billing: v.billing }, name } },
                { upsert: true },
              ),
            searchPlaintexts(v),
          );
          assertPatientStored(await raw(Patient, { name }), { ssn: v.ssn, billing: v.billing }, pcoll());
        });

        const REPLACE_UPSERTS = [
          { name: 'replaceOne', run: (f, d) => Patient.replaceOne(f, d, { upsert: true }) },
          { name: 'findOneAndReplace', run: (f, d) => Patient.findOneAndReplace(f, d, { upsert: true }) },
          {
            name: 'bulkWrite replaceOne',
            run: (f, d) => Patient.bulkWrite([{ replaceOne: { filter: f, replacement: d, upsert: true } }]),
          },
        ];
        for (const method of REPLACE_UPSERTS) {
          it(`${method.name}: a replacement upsert gets the index of its own values, none from the filter`, async () => {
            const v = patientValues();
            const name = `replace-${Math.random()}`;
            await sent(
              () =>
                method.run(
                  { 'patientRecord.ssn': v.ssn },
                  { name, patientRecord: { ssn: v.more.ssn, billing: v.billing }, medications: v.medications },
                ),
              searchPlaintexts(v),
            );
            const stored = await raw(Patient, { name });
            assertPatientStored(stored, { ssn: v.more.ssn, billing: v.billing, medications: v.medications }, pcoll());
            assert.equal((await Patient.findOne({ 'patientRecord.ssn': v.more.ssn })).name, name);
            assert.equal(await Patient.findOne({ 'patientRecord.ssn': v.ssn }), null, 'the filter value is not stored');
          });
        }

        it('a learner upsert by idNumber that sets the identifications indexes each element', async () => {
          const l = learnerValues();
          const name = `learner-${Math.random()}`;
          await sent(
            () =>
              Learner.updateOne(
                { 'personExtended.identifications.idNumber': l.more.idNumber },
                { $set: { 'personExtended.identifications': l.identifications, name } },
                { upsert: true },
              ),
            searchPlaintexts(l),
          );
          const stored = await raw(Learner, { name });
          assertLearnerStored(stored, l.identifications, Learner.collection.collectionName);
          const found = await Learner.findOne({
            'personExtended.identifications.idNumber': l.identifications[1].idNumber,
          });
          assert.equal(found && found.name, name);
        });
      });

      describe('index values in no read output unless selected', () => {
        let v;
        let id;
        before(async () => {
          v = patientValues();
          const doc = await Patient.create({
            name: 'reads',
            patientRecord: { ssn: v.ssn, billing: v.billing },
            medications: v.medications,
          });
          id = doc._id;
        });

        it('hydrated: toJSON(), toObject(), JSON.stringify, a cursor, findOneAndUpdate results', async () => {
          const doc = await Patient.findOne({ 'patientRecord.ssn': v.ssn });
          assert.equal(doc.patientRecord.ssn, v.ssn);
          assertNoIndexValues(doc.toJSON(), 'toJSON()');
          assertNoIndexValues(doc.toObject(), 'toObject()');
          assertNoIndexValues(doc.toObject({ includeDecrypted: true }), 'toObject({ includeDecrypted })');
          assertNoIndexValues(JSON.parse(JSON.stringify(doc)), 'JSON.stringify');
          assert.equal(doc.get('patientRecord.ssn_bidx'), undefined, 'doc.get() of the index path');
          for await (const d of Patient.find({ _id: id }).cursor()) assertNoIndexValues(d.toObject(), 'a cursor');
          const updated = await Patient.findOneAndUpdate({ _id: id }, { $set: { name: 'reads' } }, { new: true });
          assertNoIndexValues(updated.toObject({ includeDecrypted: true }), 'findOneAndUpdate');
        });

        it('lean: find, findOne, a lean cursor, findOneAndUpdate; shown when the projection names them', async () => {
          assertNoIndexValues(await Patient.find({ 'patientRecord.ssn': v.ssn }).lean(), 'find().lean()');
          assertNoIndexValues(await Patient.findById(id).lean(), 'findById().lean()');
          for await (const d of Patient.find({ _id: id }).lean().cursor()) assertNoIndexValues(d, 'a lean cursor');
          assertNoIndexValues(
            await Patient.findOneAndUpdate({ _id: id }, { $set: { name: 'reads' } }, { new: true }).lean(),
            'findOneAndUpdate().lean()',
          );
          const selected = await Patient.findById(id).select('medications_bidx').lean();
          assert.deepEqual(
            selected.medications_bidx,
            v.medications.map((m) => refIndex(pcoll(), 'medications', m.toLowerCase())),
          );
        });

        it('decryptDocument() of an aggregation and of a raw document removes them', async () => {
          const [aggregated] = await Patient.aggregate([{ $match: { 'patientRecord.ssn': v.ssn } }]);
          assert.equal(aggregated.patientRecord.ssn_bidx, refIndex(pcoll(), 'patientRecord.ssn', v.ssn), 'stored');
          const doc = decryptDocument(Patient, aggregated);
          assert.equal(doc.patientRecord.ssn, v.ssn);
          assert.deepEqual(doc.medications, v.medications);
          assertNoIndexValues(doc, 'decryptDocument(aggregate)');
          assertNoIndexValues(decryptDocument(Patient, await raw(Patient, { _id: id })), 'decryptDocument(raw)');
        });
      });

      describe('discriminators', () => {
        it("a discriminator model writes and finds by the base schema's searchable paths", async () => {
          const v = patientValues();
          const { result: vip } = await sent(
            () => Vip.create({ name: 'vip', tier: 'gold', patientRecord: { ssn: v.ssn }, medications: v.medications }),
            searchPlaintexts(v),
          );
          assertPatientStored(
            await raw(Patient, { _id: vip._id }),
            { ssn: v.ssn, medications: v.medications },
            pcoll(),
          );
          for (const Model of [Vip, Patient]) {
            const { result: found } = await sent(
              () => Model.findOne({ 'patientRecord.ssn': v.ssn }),
              searchPlaintexts(v),
            );
            assert.equal(found && found.tier, 'gold', `${Model.modelName}.findOne finds the discriminator's document`);
            assertNoIndexValues(found.toObject(), `${Model.modelName}: the found document`);
          }
          await sent(
            () =>
              Vip.updateOne(
                { 'patientRecord.ssn': v.ssn, medications: { $in: [v.medications[1]] } },
                { $set: { 'patientRecord.ssn': v.more.ssn }, $push: { medications: v.more.med } },
              ),
            searchPlaintexts(v),
          );
          assertPatientStored(
            await raw(Patient, { _id: vip._id }),
            { ssn: v.more.ssn, medications: [...v.medications, v.more.med] },
            pcoll(),
          );
          assert.equal(await Vip.countDocuments({ 'patientRecord.ssn': v.ssn }), 0);
          assert.equal(await Vip.countDocuments({ 'patientRecord.ssn': v.more.ssn }), 1);
        });

        it("a discriminator's own searchable path is refused by queries as by writes (no index path)", async () => {
          const Special = Patient.discriminator(
            'SpecialPatient',
            new mongoose.Schema({ code: { type: String, encrypted: true, searchable: true } }),
          );
          for (const query of [() => Special.findOne({ code: 'code-zz' }), () => Special.create({ code: 'code-zz' })]) {
            const { error, commands } = await watch.during(query);
            assert.equal(error && error.code, 'ERR_FIELDCRYPT_INVALID_ARGUMENT', error && error.message);
            assert.match(error.message, /code_bidx is not in the schema/);
            assertNothingInClear(commands, ['code-zz']);
            assert.deepEqual(
              commands.filter((c) => c.name === 'find' || c.name === 'insert'),
              [],
              'nothing was sent',
            );
          }
        });
      });
    });
  }
});
