'use strict';

// The fieldEncryption plugin's schema side, on Mongoose 9 and Mongoose 8
// against a real server: which paths it finds (fields, encrypted: true, child
// schemas, Maps, discriminators), encryptedPaths(), option checking, a
// global plugin, and a plugin applied only to a child schema.

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');

const {
  it,
  openMonitoredDatabase,
  defineRecord,
  monitor,
  assertNothingInClear,
  assertStoredEncrypted,
  assertSameTyped,
  valueAt,
} = require('./plugin-helpers');
const { startServer, mongooseVersions, closeTestDatabase, STORED_VALUE } = require('./harness');
const { fieldEncryption, encryptedPaths, decryptDocument } = require('..');

describe('fieldEncryption: schemas, discriminators and options', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { mongoose, label } of mongooseVersions()) {
    const { Schema } = mongoose;

    describe(label, () => {
      let connection;
      let watch;

      before(async () => {
        connection = await openMonitoredDatabase(mongoose, server.uri, __filename);
        watch = monitor(connection, mongoose);
      });
      after(() => closeTestDatabase(connection));

      it('encryptedPaths() lists the raw dotted paths, through arrays and Maps', () => {
        const Record = defineRecord(mongoose, connection, { name: 'PathsRecord' });
        assert.deepEqual(encryptedPaths(Record).sort(), [
          'active',
          'age',
          'aliases',
          'balance',
          'born',
          'contacts.$*.phone',
          'count',
          'demographics.alienRegistrationNumber',
          'identifications.idNumber',
          'ownerId',
          'patientRecord.billing.amount',
          'patientRecord.billing.cardNumber',
          'photo',
          'profile',
          'scores',
          'secrets.$*',
          'ssn',
          'status',
        ]);
        assert.deepEqual(encryptedPaths(Record.schema).sort(), encryptedPaths(Record).sort());
        assert.throws(() => encryptedPaths({}), { code: 'ERR_FIELDCRYPT_INVALID_ARGUMENT' });
      });

      it('fields naming a subdocument, a document array or a Map encrypt everything in it but _id', async () => {
        const Address = new Schema({ street: String, zip: Number });
        const schema = new Schema({
          home: Address,
          past: [Address],
          codes: { type: Map, of: Number },
          tags: { type: Map, of: new Schema({ label: String }, { _id: false }) },
          grid: { type: [[Number]], encrypted: true }, // each inner array is one value
          open: String,
        });
        schema.plugin(fieldEncryption, { fields: ['home', 'past', 'codes', 'tags'] });
        const M = connection.model('WholeContainers', schema);
        assert.deepEqual(encryptedPaths(M).sort(), [
          'codes.$*',
          'grid',
          'home.street',
          'home.zip',
          'past.street',
          'past.zip',
          'tags.$*.label',
        ]);
        const {
          error,
          commands,
          result: doc,
        } = await watch.during(() =>
          M.create({
            home: { street: 'Home-st-zz', zip: 12345.5 },
            past: [{ street: 'Past-st-zz', zip: 67890.5 }],
            codes: { a: 111.25 },
            tags: { t: { label: 'label-zz' } },
            grid: [[1.0625, 2.0625], [3.0625]],
            open: 'visible',
          }),
        );
        assert.ifError(error);
        const plaintexts = [
          'Home-st-zz',
          12345.5,
          'Past-st-zz',
          67890.5,
          111.25,
          'label-zz',
          1.0625,
          2.0625,
          3.0625,
          4.0625,
          5.0625,
        ];
        assertNothingInClear(commands, plaintexts);
        const raw = await connection.db.collection(M.collection.collectionName).findOne({ _id: doc._id });
        assert.equal(assertStoredEncrypted(M, raw, plaintexts), 8);
        assert.equal(raw.grid.length, 2);
        assert.ok(raw.home._id && !STORED_VALUE.test(String(raw.home._id)), 'subdocument _id stays an ObjectId');
        assert.equal(raw.open, 'visible');
        const lean = await M.findById(doc._id).lean();
        assertSameTyped(lean.home.zip, 12345.5, 'home.zip');
        assertSameTyped(lean.codes.a, 111.25, 'codes.a');
        assert.equal(lean.tags.t.label, 'label-zz');
        assert.deepEqual(lean.grid, [[1.0625, 2.0625], [3.0625]]);
        const updated = await watch.during(async () => {
          await M.updateOne({ _id: doc._id }, { $push: { grid: [4.0625] } });
          await M.updateOne({ _id: doc._id }, { $set: { 'grid.0': [5.0625] } });
        });
        assert.ifError(updated.error);
        assertNothingInClear(updated.commands, plaintexts);
        assertStoredEncrypted(
          M,
          await connection.db.collection(M.collection.collectionName).findOne({ _id: doc._id }),
          plaintexts,
        );
        assert.deepEqual(
          (await M.findById(doc._id)).grid.map((row) => [...row]),
          [[5.0625], [3.0625], [4.0625]],
        );
      });

      it('discriminators: paths of each discriminator, through the base model and the discriminator model', async () => {
        const base = new Schema({ name: String, ssn: { type: String, encrypted: true } }, { discriminatorKey: 'kind' });
        base.plugin(fieldEncryption);
        const Person = connection.model('Person', base);
        const Patient = Person.discriminator(
          'Patient',
          new Schema({ mrn: { type: String, encrypted: true }, ward: String }),
        );
        const Staff = Person.discriminator('Staff', new Schema({ badge: { type: Number, encrypted: true } }));
        assert.deepEqual(encryptedPaths(Person).sort(), ['badge', 'mrn', 'ssn']);
        assert.deepEqual(encryptedPaths(Patient).sort(), ['mrn', 'ssn']);

        const plaintexts = [
          'ssn-1-zz',
          'mrn-1-zz',
          4242.5,
          'ssn-2-zz',
          'mrn-2-zz',
          'mrn-3-zz',
          'ssn-4-zz',
          'mrn-4-zz',
          9191.5,
          'mrn-5-zz',
        ];
        const { error, commands } = await watch.during(async () => {
          const a = await Patient.create({ name: 'a', ssn: 'ssn-1-zz', mrn: 'mrn-1-zz' });
          await Staff.create({ name: 'b', badge: 4242.5 });
          await Person.insertMany([{ kind: 'Patient', name: 'c', ssn: 'ssn-2-zz', mrn: 'mrn-2-zz' }]);
          // Through the base model without the discriminator key every
          // discriminator's paths count as encrypted (Mongoose then drops
          // `mrn`, not a base path, from the update); with the key, the
          // discriminator's own.
          await Person.updateOne({ _id: a._id }, { $set: { mrn: 'mrn-5-zz' } });
          await Person.updateOne({ _id: a._id, kind: 'Patient' }, { $set: { mrn: 'mrn-3-zz' } });
          await Person.bulkWrite([
            { insertOne: { document: { kind: 'Patient', name: 'd', ssn: 'ssn-4-zz', mrn: 'mrn-4-zz' } } },
          ]);
          await Staff.updateOne({ name: 'b' }, { badge: 9191.5 });
        });
        assert.ifError(error);
        assertNothingInClear(commands, plaintexts);
        for (const raw of await connection.db.collection('people').find().toArray()) {
          assertStoredEncrypted(raw.kind === 'Staff' ? Staff : Patient, raw, plaintexts);
        }
        const people = await Person.find().sort({ name: 1 });
        assert.deepEqual(
          people.map((p) => [p.kind, p.ssn, p.mrn, p.badge]),
          [
            ['Patient', 'ssn-1-zz', 'mrn-3-zz', undefined],
            ['Staff', undefined, undefined, 9191.5],
            ['Patient', 'ssn-2-zz', 'mrn-2-zz', undefined],
            ['Patient', 'ssn-4-zz', 'mrn-4-zz', undefined],
          ],
        );
        const lean = await Person.find().sort({ name: 1 }).lean();
        assert.deepEqual(
          lean.map((p) => p.mrn || p.badge),
          ['mrn-3-zz', 9191.5, 'mrn-2-zz', 'mrn-4-zz'],
        );
        const [aggregated] = await Person.aggregate([{ $match: { name: 'b' } }]);
        assert.equal(
          decryptDocument(Person, aggregated).badge,
          9191.5,
          'decryptDocument picks the discriminator by its key',
        );
      });

      it('aliases: updates and filters through an alias (translateAliases) are encrypted or refused like the path', async () => {
        const Sub = new Schema({ n: { type: String, alias: 'number', encrypted: true } });
        const schema = new Schema({
          s: { type: String, alias: 'socialSecurity', encrypted: true },
          sub: Sub,
          ids: [Sub],
        });
        schema.plugin(fieldEncryption);
        const M = connection.model('Aliased', schema);
        const plaintexts = ['alias-1-zz', 'alias-2-zz', 'alias-3-zz', 'alias-4-zz', 'alias-5-zz', 'alias-6-zz'];
        const {
          error,
          commands,
          result: doc,
        } = await watch.during(async () => {
          const created = await M.create({
            socialSecurity: 'alias-1-zz',
            sub: { number: 'alias-2-zz' },
            ids: [{ number: 'alias-3-zz' }],
          });
          await M.updateOne(
            { _id: created._id },
            { socialSecurity: 'alias-4-zz', 'sub.number': 'alias-5-zz', 'ids.0.number': 'alias-6-zz' },
            { translateAliases: true },
          );
          return created;
        });
        assert.ifError(error);
        assertNothingInClear(commands, plaintexts);
        const raw = await connection.db.collection(M.collection.collectionName).findOne({ _id: doc._id });
        assert.equal(assertStoredEncrypted(M, raw, plaintexts), 3);
        const found = await M.findById(doc._id);
        // (Mongoose does not translate an alias behind an array index and drops that key;
        // the plugin encrypted it anyway.)
        assert.deepEqual([found.s, found.sub.n, found.ids[0].n], ['alias-4-zz', 'alias-5-zz', 'alias-3-zz']);
        await assert.rejects(M.find({ socialSecurity: 'alias-4-zz' }, null, { translateAliases: true }), {
          code: 'ERR_FIELDCRYPT_UNSUPPORTED_QUERY',
          path: 's',
        });
      });

      it('a global plugin (mongoose.plugin) covers every model; child schemas are handled from the top-level document', async () => {
        const instance = new mongoose.Mongoose();
        instance.plugin(fieldEncryption);
        const conn = await instance.createConnection(server.uri, { dbName: connection.name }).asPromise();
        try {
          const Child = new instance.Schema({ secret: { type: String, encrypted: true } });
          const M = conn.model(
            'GlobalPlugin',
            new instance.Schema({ top: { type: Number, encrypted: true }, kids: [Child] }),
          );
          const doc = await M.create({ top: 7.25, kids: [{ secret: 'kid-zz' }] });
          const raw = await conn.db.collection(M.collection.collectionName).findOne({ _id: doc._id });
          assertStoredEncrypted(M, raw, [7.25, 'kid-zz']);
          const found = await M.findById(doc._id);
          assert.equal(found.top, 7.25);
          assert.equal(found.kids[0].secret, 'kid-zz');
          found.kids[0].secret = 'kid2-zz';
          await found.save();
          assert.equal(valueAt(await M.findById(doc._id).lean(), 'kids.0.secret'), 'kid2-zz');
        } finally {
          await conn.close();
        }
      });

      it('save hooks: those before the plugin see plaintext; a plaintext assigned by one after it is still encrypted', async () => {
        const schema = new Schema({
          ssn: { type: String, encrypted: true },
          digits: { type: String, encrypted: true },
          note: { type: String, encrypted: true },
        });
        const seen = [];
        schema.pre('save', function normalize() {
          seen.push(this.ssn);
          this.digits = this.ssn.replace(/\D/g, '') + '-zz';
        });
        schema.plugin(fieldEncryption);
        // Registered after the plugin: runs after the encryption, sees
        // ciphertext, and what it assigns is encrypted as it is assigned.
        schema.pre('save', function late() {
          seen.push(typeof this.ssn === 'string' && this.ssn.startsWith('01:') ? 'ciphertext' : this.ssn);
          this.note = 'late-note-zz';
        });
        schema.post('save', function afterSave(doc) {
          seen.push(doc.ssn, doc.note);
        });
        const M = connection.model('HookOrder', schema);
        const plaintexts = ['123-45-6789-zz', '123456789-zz', 'late-note-zz'];
        const { error, commands, result: doc } = await watch.during(() => M.create({ ssn: '123-45-6789-zz' }));
        assert.ifError(error);
        assert.deepEqual(seen, ['123-45-6789-zz', 'ciphertext', '123-45-6789-zz', 'late-note-zz']);
        assertNothingInClear(commands, plaintexts);
        const raw = await connection.db.collection(M.collection.collectionName).findOne({ _id: doc._id });
        assert.equal(assertStoredEncrypted(M, raw, plaintexts), 3);
        assert.deepEqual([doc.ssn, doc.digits, doc.note], ['123-45-6789-zz', '123456789-zz', 'late-note-zz']);
        const found = await M.findById(doc._id);
        assert.deepEqual([found.ssn, found.digits, found.note], ['123-45-6789-zz', '123456789-zz', 'late-note-zz']);
        // And on a later save of the loaded document.
        seen.length = 0;
        found.ssn = '987-65-4321-zz';
        await found.save();
        const again = await connection.db.collection(M.collection.collectionName).findOne({ _id: doc._id });
        assertStoredEncrypted(M, again, [...plaintexts, '987-65-4321-zz', '987654321-zz']);
        assert.equal((await M.findById(doc._id)).digits, '987654321-zz');
      });

      it('applied only to a child schema: save() refuses instead of storing plaintext', async () => {
        const Child = new Schema({ secret: String });
        Child.plugin(fieldEncryption, { fields: ['secret'] });
        const Parent = connection.model('ChildOnly', new Schema({ kids: [Child] }));
        const doc = new Parent({ kids: [{ secret: 'child-only-zz' }] });
        await assert.rejects(doc.save(), { code: 'ERR_FIELDCRYPT_INVALID_ARGUMENT', message: /top-level model/ });
        assert.equal(await connection.db.collection(Parent.collection.collectionName).findOne({ _id: doc._id }), null);
      });

      it('options are checked when the plugin is applied', () => {
        const schema = () => new Schema({ ssn: String, nested: { a: String } });
        const bad = [
          [{ fields: 'ssn' }, /fields must be an array/],
          [{ fields: ['nope'] }, /'nope' is not a path/],
          [{ fields: ['_id'] }, /'_id' cannot be encrypted/],
          [{ fields: ['__v'] }, /not a path|cannot be encrypted/],
          [{ decrypt: 'sometimes' }, /decrypt must be/],
          [{ includeDecrypted: 'yes' }, /includeDecrypted must be a boolean/],
          [{ allowUnencrypted: 1 }, /allowUnencrypted must be a boolean/],
          [{ onEncrypt: 'log' }, /onEncrypt must be a function/],
          [{ encrypt: true }, /unknown option 'encrypt'/],
          ['ssn', /options must be an object/],
        ];
        for (const [options, message] of bad) {
          assert.throws(() => schema().plugin(fieldEncryption, options), {
            code: 'ERR_FIELDCRYPT_INVALID_ARGUMENT',
            message,
          });
        }
        assert.throws(
          () => new Schema({ _id: { type: String, encrypted: true } }).plugin(fieldEncryption),
          /'_id' cannot be encrypted/,
        );
        // Fine: nested names, `$*` for Map values, deduplicate (Mongoose's own option).
        schema().plugin(fieldEncryption, { fields: ['nested'], deduplicate: true });
        new Schema({ m: { type: Map, of: String } }).plugin(fieldEncryption, { fields: ['m.$*'] });
      });
    });
  }
});
