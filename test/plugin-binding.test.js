'use strict';

// Context binding (`bind`) on every write path, on Mongoose 9 and 8, against
// a real server. Each write goes through the plugin; the raw document is then
// read through the driver, and each bound value must decrypt with
// storedValueContext(collection, raw path, EJSON _id) and with nothing else
// (test/binding-helpers.js assertBound), while no command sent a plaintext.
// Updates of document-bound paths that do not name one _id are refused before
// anything is sent. Positional updates ($, $[], $[name]) run where the server
// executes them (mongo-java-server, MongoDB), where a rejection fails the
// test; FerretDB rejects them, so there they are reported as skipped.

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { it, openMonitoredDatabase, monitor, assertNothingInClear, FERRETDB_POSITIONAL } = require('./plugin-helpers');
const { startServer, mongooseVersions, closeTestDatabase } = require('./harness');
const {
  BINDINGS,
  boundSchema,
  boundValues,
  plaintextsOfBound,
  assertBound,
  expectedBound,
  isFerretDB,
  pathBindings,
} = require('./binding-helpers');

describe('fieldEncryption bind: write paths', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { mongoose, label } of mongooseVersions()) {
    describe(label, () => {
      let connection;
      let Bound;
      let watch;
      let ferret;
      const raw = (_id) => connection.db.collection(Bound.collection.collectionName).findOne({ _id });

      before(async () => {
        connection = await openMonitoredDatabase(mongoose, server.uri, __filename);
        Bound = connection.model('Bound', boundSchema(mongoose));
        await Bound.init();
        watch = monitor(connection, mongoose);
        ferret = await isFerretDB(connection);
      });
      after(() => closeTestDatabase(connection));

      /** Runs `write` under monitoring: nothing in clear was sent; returns its result (throws its error). */
      async function sent(write, plaintexts) {
        const { result, error, commands } = await watch.during(write);
        assertNothingInClear(commands, plaintexts);
        if (error) throw error;
        assert.ok(commands.length > 0, 'the write sent a command');
        return result;
      }

      /** Writes, then checks the stored document's bindings and reads it back through the plugin. */
      async function checkWrite(write, id, v, expected = expectedBound(v), more = []) {
        const result = await sent(write, [...plaintextsOfBound(v), ...more]);
        const stored = await raw(id);
        const count = assertBound(mongoose, Bound, stored, expected);
        assert.ok(count >= 6, `every encrypted value was checked (${count})`);
        const back = await Bound.findById(id);
        const lean = await Bound.findById(id).lean();
        for (const [path, value] of Object.entries(expected)) {
          assert.equal(back.get(path), value, `hydrated ${path}`);
          assert.equal(
            path.split('.').reduce((o, k) => (o == null ? o : o[k]), lean),
            value,
            `lean ${path}`,
          );
        }
        return { result, stored };
      }

      const created = async () => {
        const v = boundValues();
        const doc = await Bound.create(v);
        return { v, doc };
      };

      it('pathBindings() reports every bound path, allowUnbound and the collection', () => {
        const report = pathBindings(Bound);
        assert.equal(report.collection, Bound.collection.collectionName);
        assert.equal(report.allowUnbound, false);
        assert.deepEqual(Object.fromEntries(report.paths.map((p) => [p.path, p.bind])), BINDINGS);
        assert.equal(pathBindings(Bound.schema).collection, undefined);
      });

      describe('inserts and saves', () => {
        it('new Model(doc).save(), and save() after changes', async () => {
          const v = boundValues();
          const doc = new Bound(v);
          await checkWrite(() => doc.save(), doc._id, v);
          assert.equal(doc.ssn, v.ssn, 'the document shows plaintext after save');
          const w = boundValues();
          doc.ssn = w.ssn;
          doc.age = w.age;
          doc.identifications[1].idNumber = w.identifications[1].idNumber;
          doc.aliases.push(w.aliases[0]);
          doc.secrets.set('k2', w.secrets.k1);
          await checkWrite(
            () => doc.save(),
            doc._id,
            v,
            {
              ...expectedBound(v),
              ssn: w.ssn,
              'identifications.1.idNumber': w.identifications[1].idNumber,
              'aliases.2': w.aliases[0],
              'secrets.k2': w.secrets.k1,
            },
            plaintextsOfBound(w),
          );
        });

        it('Model.create, Model.insertOne', async () => {
          const v = boundValues();
          const id = new mongoose.Types.ObjectId();
          await checkWrite(() => Bound.create({ _id: id, ...v }), id, v);
          const w = boundValues();
          const id2 = new mongoose.Types.ObjectId();
          await checkWrite(() => Bound.insertOne({ _id: id2, ...w }), id2, w);
        });

        it('Model.insertMany (objects without _id, and documents)', async () => {
          const a = boundValues();
          const b = boundValues();
          const docs = await sent(() => Bound.insertMany([a, new Bound(b)]), plaintextsOfBound(a, b));
          assertBound(mongoose, Bound, await raw(docs[0]._id), expectedBound(a));
          assertBound(mongoose, Bound, await raw(docs[1]._id), expectedBound(b));
          assert.equal(docs[0].ssn, a.ssn);
        });

        it('Model.bulkSave of new and changed documents', async () => {
          const { v, doc } = await created();
          const loaded = await Bound.findById(doc._id);
          const w = boundValues();
          loaded.ssn = w.ssn;
          loaded.aliases.push(w.aliases[0]);
          const fresh = new Bound(w);
          await sent(() => Bound.bulkSave([loaded, fresh]), plaintextsOfBound(v, w));
          assertBound(mongoose, Bound, await raw(doc._id), {
            ...expectedBound(v),
            ssn: w.ssn,
            'aliases.2': w.aliases[0],
          });
          assertBound(mongoose, Bound, await raw(fresh._id), expectedBound(w));
        });

        it('Model.bulkWrite insertOne (with and without _id), replaceOne, updateOne', async () => {
          const a = boundValues();
          const b = boundValues();
          const id = new mongoose.Types.ObjectId();
          const { v, doc } = await created();
          const w = boundValues();
          await sent(
            () =>
              Bound.bulkWrite([
                { insertOne: { document: { _id: id, ...a } } },
                { insertOne: { document: b } },
                { replaceOne: { filter: { _id: doc._id }, replacement: w } },
                { updateOne: { filter: { _id: id }, update: { $set: { ssn: w.ssn }, $push: { aliases: w.note } } } },
              ]),
            plaintextsOfBound(a, b, v, w),
          );
          assertBound(mongoose, Bound, await raw(id), { ...expectedBound(a), ssn: w.ssn, 'aliases.2': w.note });
          const rawB = await connection.db.collection(Bound.collection.collectionName).findOne({ name: b.name });
          assertBound(mongoose, Bound, rawB, expectedBound(b));
          assertBound(mongoose, Bound, await raw(doc._id), expectedBound(w));
        });
      });

      describe('query updates', () => {
        const METHODS = [
          ['Model.updateOne', (doc, update, o) => Bound.updateOne({ _id: doc._id }, update, o)],
          ['Model.findOneAndUpdate', (doc, update, o) => Bound.findOneAndUpdate({ _id: doc._id }, update, o)],
          ['Model.findByIdAndUpdate', (doc, update, o) => Bound.findByIdAndUpdate(String(doc._id), update, o)],
          ['doc.updateOne', (doc, update, o) => doc.updateOne(update, o)],
          [
            'Model.updateOne with $and and $eq',
            (doc, update, o) => Bound.updateOne({ $and: [{ _id: { $eq: doc._id } }, { name: doc.name }] }, update, o),
          ],
        ];
        for (const [name, run] of METHODS) {
          it(`${name}: $set, $push, $addToSet of bound values`, async () => {
            const { v, doc } = await created();
            const w = boundValues();
            const update = {
              $set: {
                ssn: w.ssn,
                age: w.age,
                note: w.note,
                'secrets.k2': w.secrets.k1,
                'identifications.1.idNumber': w.identifications[0].idNumber,
              },
              $push: { aliases: w.aliases[0] },
            };
            await checkWrite(
              () => run(doc, update, { returnDocument: 'after' }),
              doc._id,
              v,
              {
                ...expectedBound(v),
                ssn: w.ssn,
                note: w.note,
                'secrets.k2': w.secrets.k1,
                'identifications.1.idNumber': w.identifications[0].idNumber,
                'aliases.2': w.aliases[0],
              },
              plaintextsOfBound(w),
            );
            const add = boundValues();
            await checkWrite(
              () =>
                run(doc, {
                  $addToSet: {
                    aliases: { $each: [add.aliases[0]] },
                    identifications: { idType: 'visa', idNumber: add.identifications[0].idNumber },
                  },
                }),
              doc._id,
              v,
              {
                ssn: w.ssn,
                'aliases.3': add.aliases[0],
                'identifications.2.idNumber': add.identifications[0].idNumber,
              },
              plaintextsOfBound(w, add),
            );
          });
        }

        it('findOneAndUpdate returns the updated document decrypted, hydrated and lean', async () => {
          const { doc } = await created();
          const w = boundValues();
          const hydrated = await Bound.findOneAndUpdate({ _id: doc._id }, { ssn: w.ssn }, { returnDocument: 'after' });
          assert.equal(hydrated.ssn, w.ssn);
          const lean = await Bound.findOneAndUpdate(
            { _id: doc._id },
            { note: w.note },
            { returnDocument: 'after' },
          ).lean();
          assert.equal(lean.ssn, w.ssn);
          assert.equal(lean.note, w.note);
        });

        it('replaceOne and findOneAndReplace, with and without upsert', async () => {
          const { v, doc } = await created();
          const w = boundValues();
          await checkWrite(
            () => Bound.replaceOne({ _id: doc._id }, w),
            doc._id,
            w,
            expectedBound(w),
            plaintextsOfBound(v),
          );
          const x = boundValues();
          const { result } = await checkWrite(
            () => Bound.findOneAndReplace({ _id: doc._id }, x, { returnDocument: 'after' }),
            doc._id,
            x,
            expectedBound(x),
            plaintextsOfBound(w),
          );
          assert.equal(result.ssn, x.ssn);
          const y = boundValues();
          const id = new mongoose.Types.ObjectId();
          await checkWrite(() => Bound.replaceOne({ _id: id }, y, { upsert: true }), id, y);
          const z = boundValues();
          const id2 = new mongoose.Types.ObjectId();
          await checkWrite(() => Bound.findOneAndReplace({ _id: id2 }, z, { upsert: true }), id2, z);
        });

        it('upserts by _id: updateOne, findOneAndUpdate, bulkWrite updateOne', async () => {
          for (const upsert of [
            (id, v) => Bound.updateOne({ _id: id }, { $set: v }, { upsert: true }),
            (id, v) => Bound.findOneAndUpdate({ _id: id }, v, { upsert: true, new: true }),
            (id, v) =>
              Bound.bulkWrite([{ updateOne: { filter: { _id: id }, update: { $setOnInsert: v }, upsert: true } }]),
          ]) {
            const v = boundValues();
            const id = new mongoose.Types.ObjectId();
            await checkWrite(() => upsert(id, v), id, v);
          }
        });

        it('updateMany of a collection-bound or unbound path only: allowed, bound to the collection', async () => {
          const { v, doc } = await created();
          const w = boundValues();
          await checkWrite(
            () => Bound.updateMany({ name: v.name }, { $set: { age: w.age, note: w.note } }),
            doc._id,
            v,
            {
              ...expectedBound(v),
              note: w.note,
            },
            plaintextsOfBound(w),
          );
          const stored = await raw(doc._id);
          assert.ok(typeof stored.age === 'string');
          assert.equal((await Bound.findById(doc._id)).age, w.age);
        });
      });

      describe('refused updates of document-bound paths send nothing', () => {
        const REFUSED = [
          ['updateMany', (doc, w) => Bound.updateMany({ _id: doc._id }, { $set: { ssn: w.ssn } })],
          ['updateMany of an array element', (doc, w) => Bound.updateMany({}, { $push: { aliases: w.aliases[0] } })],
          ['updateOne without _id', (doc, w) => Bound.updateOne({ name: doc.name }, { ssn: w.ssn })],
          ['updateOne with an _id range', (doc, w) => Bound.updateOne({ _id: { $in: [doc._id] } }, { ssn: w.ssn })],
          [
            'an upsert with an unknown _id',
            (doc, w) => Bound.updateOne({ name: 'nobody' }, { ssn: w.ssn }, { upsert: true }),
          ],
          [
            'findOneAndUpdate without _id',
            (doc, w) => Bound.findOneAndUpdate({ name: doc.name }, { 'secrets.k9': w.ssn }),
          ],
          ['replaceOne without _id', (doc, w) => Bound.replaceOne({ name: doc.name }, w)],
          [
            'replaceOne naming another _id than its filter',
            (doc, w) => Bound.replaceOne({ _id: doc._id }, { ...w, _id: new mongoose.Types.ObjectId() }),
          ],
          [
            'bulkWrite updateMany',
            (doc, w) => Bound.bulkWrite([{ updateMany: { filter: { _id: doc._id }, update: { ssn: w.ssn } } }]),
          ],
          [
            'bulkWrite updateOne without _id (and the other ops of the batch)',
            (doc, w) =>
              Bound.bulkWrite([
                { insertOne: { document: boundValues() } },
                { updateOne: { filter: { name: doc.name }, update: { ssn: w.ssn } } },
              ]),
          ],
        ];
        for (const [name, run] of REFUSED) {
          it(name, async () => {
            const { v, doc } = await created();
            const before = await raw(doc._id);
            const w = boundValues();
            const { error, commands } = await watch.during(() => run(doc, w));
            assert.ok(error, 'the update is refused');
            assert.ok(
              ['ERR_FIELDCRYPT_UNSUPPORTED_QUERY', 'ERR_FIELDCRYPT_UNSUPPORTED_OPERATOR'].includes(error.code),
              error.message,
            );
            assert.equal(error.modelName, 'Bound');
            assert.ok(['ssn', 'aliases', 'secrets.$*'].includes(error.path), error.path);
            assert.match(error.message, /Bound\.(ssn|aliases|secrets\.\$\*)/);
            assert.match(error.message, /_id/);
            assert.match(error.message, /save\(\)/);
            assert.deepEqual(commands, [], 'nothing was sent');
            assert.deepEqual(await raw(doc._id), before);
            assert.equal((await Bound.findById(doc._id)).ssn, v.ssn);
          });
        }
      });

      describe('positional updates', () => {
        const POSITIONAL = [
          [
            '$ positional',
            (doc, w) =>
              Bound.updateOne(
                { _id: doc._id, 'identifications.idType': 'license' },
                { $set: { 'identifications.$.idNumber': w.ssn } },
              ),
            (v, w) => ({
              'identifications.1.idNumber': w.ssn,
              'identifications.0.idNumber': v.identifications[0].idNumber,
            }),
          ],
          [
            '$[] all positional',
            (doc, w) =>
              Bound.updateOne(
                { _id: doc._id },
                { $set: { 'identifications.$[].idNumber': w.ssn, 'aliases.$[]': w.note } },
              ),
            (v, w) => ({
              'identifications.0.idNumber': w.ssn,
              'identifications.1.idNumber': w.ssn,
              'aliases.0': w.note,
              'aliases.1': w.note,
            }),
          ],
          [
            '$[name] with arrayFilters',
            (doc, w) =>
              Bound.findByIdAndUpdate(
                doc._id,
                { $set: { 'identifications.$[el].idNumber': w.ssn } },
                { arrayFilters: [{ 'el.idType': 'passport' }] },
              ),
            (v, w) => ({
              'identifications.0.idNumber': w.ssn,
              'identifications.1.idNumber': v.identifications[1].idNumber,
            }),
          ],
        ];
        for (const [name, run, expect] of POSITIONAL) {
          it(name, async (t) => {
            if (ferret) return t.skip(FERRETDB_POSITIONAL);
            const { v, doc } = await created();
            const w = boundValues();
            await checkWrite(() => run(doc, w), doc._id, v, { ssn: v.ssn, ...expect(v, w) }, plaintextsOfBound(w));
          });
        }
      });
    });
  }
});
