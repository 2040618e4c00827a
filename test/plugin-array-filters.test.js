'use strict';

// bulkWrite update ops with `$[name]` and arrayFilters, on Mongoose 9 and
// Mongoose 8: the plugin rewrites the update and must hand the op's
// arrayFilters on to the server unchanged (without them every `$[name]`
// update fails). What leaves the process is checked on every server; the
// stored effect where the server executes positional updates
// (mongo-java-server, MongoDB with FIELDCRYPT_REAL_MONGODB=1), and reported
// as skipped, with its reason, on FerretDB v1, which rejects them.

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const {
  REAL_MONGODB,
  FERRETDB_POSITIONAL,
  isFerretDB,
  it,
  openMonitoredDatabase,
  monitor,
  assertNothingInClear,
  isServerRejection,
} = require('./plugin-helpers');
const { startServer, mongooseVersions, closeTestDatabase, STORED_VALUE } = require('./harness');
const { fieldEncryption, decrypt } = require('..');

const ARRAY_FILTERS = [{ 'el.idType': 'license' }];

describe('fieldEncryption: bulkWrite updates with $[name] keep their arrayFilters', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { mongoose, label } of mongooseVersions()) {
    describe(label, () => {
      let connection;
      let Person;
      let watch;
      let ferret;
      before(async () => {
        connection = await openMonitoredDatabase(mongoose, server.uri, __filename);
        const Identification = new mongoose.Schema({ idType: String, idNumber: { type: String, encrypted: true } });
        const schema = new mongoose.Schema({ name: String, ids: [Identification] });
        schema.plugin(fieldEncryption);
        Person = connection.model('ArrayFilterPerson', schema);
        watch = monitor(connection, mongoose);
        ferret = await isFerretDB(connection);
      });
      after(() => closeTestDatabase(connection));

      const raw = (id) => connection.db.collection(Person.collection.collectionName).findOne({ _id: id });

      for (const op of ['updateOne', 'updateMany']) {
        it(`bulkWrite ${op}: $set of 'ids.$[el].idNumber' with arrayFilters`, async (t) => {
          const doc = await Person.create({
            name: `af-${op}`,
            ids: [
              { idType: 'passport', idNumber: 'P-1-zz' },
              { idType: 'license', idNumber: 'L-1-zz' },
              { idType: 'license', idNumber: 'L-2-zz' },
            ],
          });
          const before = await raw(doc._id);
          const spec = {
            filter: { _id: doc._id },
            update: { $set: { 'ids.$[el].idNumber': 'L-new-zz' } },
            arrayFilters: ARRAY_FILTERS.map((f) => ({ ...f })),
          };
          const { error, commands } = await watch.during(() => Person.bulkWrite([{ [op]: spec }]));
          const sent = commands.filter((c) => c.name === 'update');
          assert.equal(sent.length, 1, `one update command was sent (${error ? error.message : 'no error'})`);
          assertNothingInClear(sent, ['L-new-zz']);
          const [statement] = sent[0].command.updates;
          assert.deepEqual(statement.arrayFilters, ARRAY_FILTERS, 'the arrayFilters reach the server as given');
          assert.match(statement.u.$set['ids.$[el].idNumber'], STORED_VALUE, 'the new value is sent encrypted');
          assert.equal(statement.multi === true, op === 'updateMany');

          if (error) {
            if (!isServerRejection(error) || REAL_MONGODB || !ferret) throw error;
            t.skip(`${FERRETDB_POSITIONAL}; the command sent was checked, the stored effect was not`);
            return;
          }
          const stored = await raw(doc._id);
          assert.deepEqual(
            stored.ids.map((el) => el.idType),
            ['passport', 'license', 'license'],
          );
          assert.equal(
            stored.ids[0].idNumber,
            before.ids[0].idNumber,
            'the element the filter does not match is untouched',
          );
          for (const i of [1, 2]) {
            assert.match(stored.ids[i].idNumber, STORED_VALUE, `ids.${i}.idNumber is stored encrypted`);
            assert.equal(decrypt(stored.ids[i].idNumber), 'L-new-zz', `ids.${i}.idNumber was updated`);
          }
          const read = await Person.findById(doc._id);
          assert.deepEqual(
            read.ids.map((el) => el.idNumber),
            ['P-1-zz', 'L-new-zz', 'L-new-zz'],
          );
        });
      }
    });
  }
});
