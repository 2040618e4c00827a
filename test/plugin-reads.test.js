'use strict';

// The fieldEncryption plugin's read paths and options, on Mongoose 9 and
// Mongoose 8 against a real server: hydrated and lean queries, cursors,
// documents returned by findOneAnd*, populate, Model.hydrate,
// decryptDocument for aggregate and raw-collection results; decrypt:
// 'explicit'; toJSON/toObject filtering; audit hooks; strict mode and
// allowUnencrypted; validation and setters on plaintext; a failed save; key
// rotation; data written by the foundation's helpers.

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const {
  it,
  openMonitoredDatabase,
  defineRecord,
  recordSchema,
  recordValues,
  docOf,
  expectedOf,
  plaintextsOf,
  findPlaintexts,
  assertSameTyped,
  assertStoredEncrypted,
  valueAt,
  STATUS_DEFAULT,
} = require('./plugin-helpers');
const { startServer, mongooseVersions, closeTestDatabase, STORED_VALUE } = require('./harness');
const {
  fieldEncryption,
  decryptDocument,
  encrypt,
  encryptFieldIfModified,
  createDecryptMethod,
  getKeyVersion,
  isEncrypted,
  reloadKeys,
} = require('..');

const KEY_01 = process.env.ENCRYPTION_KEY;

/** The expected plaintexts of a full record (with the default status). */
const full = (v) => ({ status: STATUS_DEFAULT, ...expectedOf(v) });

function assertAllTyped(get, expected, label) {
  for (const [path, value] of Object.entries(expected)) assertSameTyped(get(path), value, `${label} ${path}`);
}

/**
 * A toJSON()/toObject() result: Mongoose itself gives a Buffer path as BSON
 * Binary (toObject) or { type: 'Buffer', data } (toJSON); compare bytes.
 */
function outputAt(out, path) {
  const value = valueAt(out, path);
  if (path !== 'photo' || value === null || value === undefined || Buffer.isBuffer(value)) return value;
  if (value._bsontype === 'Binary') return Buffer.from(value.buffer);
  if (value.type === 'Buffer' && Array.isArray(value.data)) return Buffer.from(value.data);
  return value;
}

/** Every encrypted path of a toJSON()/toObject() result is gone; the others are there. */
function assertOmitted(out) {
  for (const key of [
    'ssn',
    'age',
    'born',
    'active',
    'photo',
    'balance',
    'ownerId',
    'count',
    'profile',
    'aliases',
    'scores',
    'secrets',
    'status',
  ]) {
    assert.ok(!(key in out), `${key} is omitted`);
  }
  assert.deepEqual(Object.keys(out.patientRecord.billing || {}), [], 'patientRecord.billing.* are omitted');
  assert.equal(out.patientRecord.ward, 'east');
  assert.ok(!('alienRegistrationNumber' in out.demographics));
  assert.equal(out.demographics.country, 'UT');
  for (const id of out.identifications) {
    assert.ok(!('idNumber' in id));
    assert.ok(id.idType);
  }
  const home = out.contacts instanceof Map ? out.contacts.get('home') : out.contacts.home;
  assert.ok(!('phone' in home));
  assert.equal(home.label, 'home');
  assert.equal(typeof out.name, 'string');
}

describe('fieldEncryption: read paths and options', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { mongoose, label, major } of mongooseVersions()) {
    describe(label, () => {
      let connection;
      let Record;
      const rawCollection = (M) => connection.db.collection(M.collection.collectionName);

      before(async () => {
        connection = await openMonitoredDatabase(mongoose, server.uri, __filename);
        Record = defineRecord(mongoose, connection);
        await Record.init();
      });
      after(() => closeTestDatabase(connection));

      async function created() {
        const v = recordValues(mongoose);
        const doc = await Record.create(docOf(v));
        return { v, doc, id: doc._id };
      }

      describe('decrypt: auto (the default)', () => {
        it('find, findOne, findById: hydrated documents hold typed plaintext', async () => {
          const { v, id } = await created();
          const [fromFind] = await Record.find({ _id: id });
          const fromFindOne = await Record.findOne({ name: v.name });
          const fromFindById = await Record.findById(id);
          for (const [name, doc] of [
            ['find', fromFind],
            ['findOne', fromFindOne],
            ['findById', fromFindById],
          ]) {
            assertAllTyped((p) => doc.get(p), full(v), name);
            assert.equal(doc.isModified(), false, `${name}: decrypting marks nothing modified`);
          }
        });

        it('find, findOne, findById with lean(): plain objects hold typed plaintext', async () => {
          const { v, id } = await created();
          const [fromFind] = await Record.find({ _id: id }).lean();
          const fromFindOne = await Record.findOne({ name: v.name }).lean();
          const fromFindById = await Record.findById(id).lean();
          for (const [name, doc] of [
            ['find', fromFind],
            ['findOne', fromFindOne],
            ['findById', fromFindById],
          ]) {
            assertAllTyped((p) => valueAt(doc, p), full(v), `${name} lean`);
          }
        });

        it('cursors, hydrated and lean', async () => {
          const { v, id } = await created();
          for await (const doc of Record.find({ _id: id }).cursor())
            assertAllTyped((p) => doc.get(p), full(v), 'cursor');
          for await (const doc of Record.find({ _id: id }).lean().cursor())
            assertAllTyped((p) => valueAt(doc, p), full(v), 'lean cursor');
        });

        it('documents returned by findOneAndUpdate, findOneAndReplace, findOneAndDelete (hydrated, lean, with result metadata)', async () => {
          const { v, id } = await created();
          const updated = await Record.findOneAndUpdate({ _id: id }, { name: 'n1' }, { returnDocument: 'after' });
          assertAllTyped((p) => updated.get(p), full(v), 'findOneAndUpdate');
          const lean = await Record.findOneAndUpdate(
            { _id: id },
            { name: 'n2' },
            { returnDocument: 'after', lean: true },
          );
          assertAllTyped((p) => valueAt(lean, p), full(v), 'findOneAndUpdate lean');
          const meta = await Record.findOneAndUpdate(
            { _id: id },
            { name: 'n3' },
            { lean: true, includeResultMetadata: true },
          );
          assertAllTyped((p) => valueAt(meta.value, p), full(v), 'findOneAndUpdate lean includeResultMetadata');
          const before = await Record.findOneAndReplace({ _id: id }, docOf(v), {
            returnDocument: 'before',
            lean: true,
          });
          assertAllTyped((p) => valueAt(before, p), full(v), 'findOneAndReplace lean');
          const deleted = await Record.findOneAndDelete({ _id: id });
          assertAllTyped((p) => deleted.get(p), full(v), 'findOneAndDelete');
          const again = await Record.create(docOf(v));
          const deletedLean = await Record.findOneAndDelete({ _id: again._id }).lean();
          assertAllTyped((p) => valueAt(deletedLean, p), full(v), 'findOneAndDelete lean');
        });

        it('populate, hydrated and lean', async () => {
          const { v, id } = await created();
          const Ref = connection.model(
            'Ref',
            new mongoose.Schema({ record: { type: mongoose.Schema.Types.ObjectId, ref: 'Record' } }),
          );
          const ref = await Ref.create({ record: id });
          const populated = await Ref.findById(ref._id).populate('record');
          assertAllTyped((p) => populated.record.get(p), full(v), 'populated');
          const populatedLean = await Ref.findById(ref._id).populate('record').lean();
          assertAllTyped((p) => valueAt(populatedLean.record, p), full(v), 'populated lean');
        });

        it('Model.hydrate(raw) decrypts the raw document', async () => {
          const { v, id } = await created();
          const raw = await rawCollection(Record).findOne({ _id: id });
          const doc = Record.hydrate(raw);
          assertAllTyped((p) => doc.get(p), full(v), 'hydrate');
        });

        it('decryptDocument(Model, raw) for aggregate and Model.collection results', async () => {
          const { v, id } = await created();
          const [aggregated] = await Record.aggregate([{ $match: { _id: id } }]);
          assert.match(aggregated.ssn, STORED_VALUE, 'aggregate returns what is stored');
          assert.equal(decryptDocument(Record, aggregated), aggregated, 'decrypts in place and returns the document');
          assertAllTyped((p) => valueAt(aggregated, p), full(v), 'aggregate');
          const fromCollection = await Record.collection.findOne({ _id: id });
          decryptDocument(Record, fromCollection);
          assert.equal(decryptDocument(Record, fromCollection), fromCollection, 'a second call changes nothing');
          assertAllTyped((p) => valueAt(fromCollection, p), full(v), 'Model.collection');
          assert.equal(decryptDocument(Record, null), null);
          assert.throws(() => decryptDocument({}, {}), { code: 'ERR_FIELDCRYPT_INVALID_ARGUMENT' });
        });

        it('toJSON() and toObject() omit every encrypted path by default; JSON.stringify too', async () => {
          const { v, doc } = await created();
          const found = await Record.findById(doc._id);
          for (const out of [found.toJSON(), found.toObject(), JSON.parse(JSON.stringify(found)), doc.toJSON()]) {
            assertOmitted(out);
            assert.deepEqual(findPlaintexts(out, plaintextsOf(v)), []);
          }
          // The document itself is unchanged.
          assert.equal(found.ssn, v.ssn);
        });

        it("a subdocument's own toJSON()/toObject() omits its encrypted fields too", async () => {
          const { v, id } = await created();
          const found = await Record.findById(id);
          const outputs = [
            found.identifications[0].toJSON(),
            found.demographics.toObject(),
            found.contacts.get('home').toJSON(),
            JSON.parse(JSON.stringify(found.identifications)),
            JSON.parse(JSON.stringify(found.contacts)),
          ];
          for (const out of outputs) assert.deepEqual(findPlaintexts(out, plaintextsOf(v)), [], JSON.stringify(out));
          assert.equal(outputs[0].idType, 'passport');
          assert.equal(outputs[1].country, 'UT');
          assert.equal(outputs[2].label, 'home');
          assert.equal(
            found.identifications[0].toJSON({ includeDecrypted: true }).idNumber,
            v.identifications[0].idNumber,
          );
          assert.equal(
            found.demographics.toObject({ includeDecrypted: true }).alienRegistrationNumber,
            v.demographics.alienRegistrationNumber,
          );
        });

        it('toJSON/toObject({ includeDecrypted: true }) include the typed plaintext', async () => {
          const { v, id } = await created();
          const found = await Record.findById(id);
          const json = found.toJSON({ includeDecrypted: true });
          const object = found.toObject({ includeDecrypted: true, flattenMaps: true });
          for (const out of [json, object]) assertAllTyped((p) => outputAt(out, p), full(v), 'includeDecrypted');
        });

        it('plugin option includeDecrypted: true makes including the default; { includeDecrypted: false } omits', async () => {
          const Open = connection.model('OpenRecord', recordSchema(mongoose, { includeDecrypted: true }));
          const v = recordValues(mongoose);
          const doc = await Open.findById((await Open.create(docOf(v)))._id);
          assertAllTyped((p) => outputAt(doc.toJSON(), p), full(v), 'default include');
          assertOmitted(doc.toJSON({ includeDecrypted: false }));
        });

        it("the application's own toJSON transform still runs, also when set after the plugin", async () => {
          const schema = recordSchema(mongoose);
          schema.set('toJSON', { virtuals: false, transform: (doc, ret) => ({ ...ret, transformed: true }) });
          const M = connection.model('TransformedRecord', schema);
          const v = recordValues(mongoose);
          const out = (await M.create(docOf(v))).toJSON();
          assert.equal(out.transformed, true);
          assertOmitted(out);
        });
      });

      describe("decrypt: 'explicit'", () => {
        let Explicit;
        before(() => {
          Explicit = connection.model('ExplicitRecord', recordSchema(mongoose, { decrypt: 'explicit' }));
        });

        it('documents hold the stored ciphertext; decryptField() returns the typed plaintext', async () => {
          const v = recordValues(mongoose);
          const doc = await Explicit.create(docOf(v));
          assert.match(doc.ssn, STORED_VALUE, 'after save() the document holds ciphertext, like the helpers');
          const found = await Explicit.findById(doc._id);
          assert.match(found.get('ssn'), STORED_VALUE);
          assert.match(found.get('age'), STORED_VALUE, 'a Number path holds its ciphertext string');
          assert.match(found.identifications[0].idNumber, STORED_VALUE);
          for (const [path, value] of Object.entries(full(v)))
            assertSameTyped(found.decryptField(path), value, `decryptField(${path})`);
          assertSameTyped(found.decryptField('aliases'), v.aliases, 'decryptField of a whole encrypted array');
          assert.throws(() => found.decryptField('name'), { code: 'ERR_FIELDCRYPT_INVALID_ARGUMENT' });
        });

        it('toObject({ includeDecrypted: true }) decrypts; lean results stay encrypted until decryptDocument()', async () => {
          const v = recordValues(mongoose);
          const { _id } = await Explicit.create(docOf(v));
          const found = await Explicit.findById(_id);
          assertAllTyped(
            (p) => outputAt(found.toObject({ includeDecrypted: true, flattenMaps: true }), p),
            full(v),
            'includeDecrypted',
          );
          assertOmitted(found.toJSON());
          const lean = await Explicit.findById(_id).lean();
          assert.match(lean.ssn, STORED_VALUE);
          assertAllTyped((p) => valueAt(decryptDocument(Explicit, lean), p), full(v), 'decryptDocument');
        });

        it('writes encrypt exactly as in auto mode; a loaded document saves without re-encrypting', async () => {
          const v = recordValues(mongoose);
          const w = recordValues(mongoose);
          const { _id } = await Explicit.create(docOf(v));
          const before = await rawCollection(Explicit).findOne({ _id });
          const found = await Explicit.findById(_id);
          found.ssn = w.ssn;
          found.age = w.age;
          found.aliases.push(w.more.alias);
          await found.save();
          await Explicit.updateOne({ _id }, { $set: { born: w.born, 'secrets.k1': w.secrets.k1 } });
          const stored = await rawCollection(Explicit).findOne({ _id });
          assertStoredEncrypted(Explicit, stored, plaintextsOf(v, w));
          assert.equal(stored.photo, before.photo, 'unchanged ciphertext is byte-identical');
          const again = await Explicit.findById(_id);
          assertSameTyped(again.decryptField('ssn'), w.ssn, 'ssn');
          assertSameTyped(again.decryptField('age'), w.age, 'age');
          assertSameTyped(again.decryptField('aliases.2'), w.more.alias, 'aliases.2');
          assertSameTyped(again.decryptField('born'), w.born, 'born');
          assertSameTyped(again.decryptField('secrets.k1'), w.secrets.k1, 'secrets.k1');
        });
      });

      describe('audit hooks', () => {
        it('onEncrypt/onDecrypt get { modelName, path, documentId, keyVersion } and never a value', async () => {
          const events = [];
          const Audited = connection.model(
            'AuditedRecord',
            recordSchema(mongoose, {
              onEncrypt: (e) => events.push(['encrypt', e]),
              onDecrypt: (e) => events.push(['decrypt', e]),
            }),
          );
          const v = recordValues(mongoose);
          const doc = await Audited.create(docOf(v));
          const encrypted = events.filter(([kind]) => kind === 'encrypt').map(([, e]) => e);
          assert.equal(encrypted.length, Object.keys(full(v)).length, 'one event per encrypted value');
          for (const e of encrypted) {
            assert.deepEqual(Object.keys(e).sort(), ['documentId', 'keyVersion', 'modelName', 'path']);
            assert.equal(e.modelName, 'AuditedRecord');
            assert.ok(e.documentId.equals(doc._id));
            assert.equal(e.keyVersion, '01');
          }
          assert.deepEqual([...new Set(encrypted.map((e) => e.path))].sort(), [
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
          events.length = 0;
          await Audited.findById(doc._id);
          await Audited.findById(doc._id).lean();
          const decrypted = events.filter(([kind]) => kind === 'decrypt').map(([, e]) => e);
          assert.equal(decrypted.length, 2 * Object.keys(full(v)).length);
          assert.ok(decrypted.every((e) => e.documentId.equals(doc._id) && e.keyVersion === '01'));
          events.length = 0;
          await Audited.updateOne({ _id: doc._id }, { $set: { ssn: v.ssn } });
          assert.deepEqual(
            events.map(([kind, e]) => [kind, e.path, String(e.documentId)]),
            [['encrypt', 'ssn', String(doc._id)]],
          );
          assert.deepEqual(findPlaintexts(events, plaintextsOf(v)), [], 'no plaintext in any audit record');

          // An audit callback that throws fails the operation: nothing is written unaudited.
          const Strict = connection.model(
            'AuditFailsRecord',
            recordSchema(mongoose, {
              onEncrypt: () => {
                throw new Error('audit log unavailable');
              },
            }),
          );
          const attempt = new Strict(docOf(recordValues(mongoose)));
          await assert.rejects(attempt.save(), /audit log unavailable/);
          assert.equal(await rawCollection(Strict).findOne({ _id: attempt._id }), null);
        });
      });

      describe('strict mode and allowUnencrypted', () => {
        it('a stored plaintext on an encrypted path is an error naming model and path, hydrated and lean', async () => {
          const { id: _id } = await created();
          await rawCollection(Record).updateOne({ _id }, { $set: { ssn: 'legacy-ssn-zz', age: 41 } });
          for (const read of [
            () => Record.findById(_id),
            () => Record.findById(_id).lean(),
            () => Record.find({ _id }),
          ]) {
            await assert.rejects(read(), (err) => {
              assert.equal(err.code, 'ERR_FIELDCRYPT_UNENCRYPTED_VALUE');
              assert.equal(err.modelName, 'Record');
              assert.ok(['ssn', 'age'].includes(err.path));
              assert.match(err.message, /^Record\.(ssn|age) holds a (string|number) that is not encrypted/);
              assert.ok(!err.message.includes('legacy-ssn-zz') && !err.message.includes('41'));
              return true;
            });
          }
          // '' (what the foundation's helpers left for empty values) and null read as they are.
          await rawCollection(Record).updateOne({ _id }, { $set: { ssn: '', age: null } });
          const doc = await Record.findById(_id);
          assert.equal(doc.ssn, '');
          assert.equal(doc.age, null);
        });

        it('allowUnencrypted: true reads legacy plaintext; the next save of that path encrypts it', async () => {
          const Lenient = connection.model('LenientRecord', recordSchema(mongoose, { allowUnencrypted: true }));
          const v = recordValues(mongoose);
          const { _id } = await Lenient.create(docOf(v));
          await rawCollection(Lenient).updateOne(
            { _id },
            { $set: { ssn: 'legacy-ssn-zz', age: 41, 'aliases.0': 'legacy-alias-zz' } },
          );
          const doc = await Lenient.findById(_id);
          assert.equal(doc.ssn, 'legacy-ssn-zz');
          assert.equal(doc.age, 41);
          assert.equal(doc.aliases[0], 'legacy-alias-zz');
          assert.equal(doc.aliases[1], v.aliases[1]);
          doc.markModified('ssn');
          doc.markModified('age');
          doc.markModified('aliases');
          await doc.save();
          const stored = await rawCollection(Lenient).findOne({ _id });
          assertStoredEncrypted(Lenient, stored, [...plaintextsOf(v), 'legacy-ssn-zz', 'legacy-alias-zz', 41]);
          const strictAgain = Record.hydrate(stored);
          assert.equal(strictAgain.ssn, 'legacy-ssn-zz');
          assert.equal(strictAgain.age, 41);
        });
      });

      describe('validation, setters, failed writes, keys, legacy data', () => {
        it('validators and setters see the plaintext on every write path', async () => {
          const { Schema } = mongoose;
          const schema = new Schema({
            age: { type: Number, min: 18, required: true, encrypted: true },
            code: { type: String, lowercase: true, trim: true, encrypted: true },
          });
          schema.plugin(fieldEncryption);
          const Person = connection.model('Person', schema);
          await assert.rejects(Person.create({ age: 12 }), { name: 'ValidationError' });
          await assert.rejects(Person.insertMany([{ age: 12 }]), { name: 'ValidationError' });
          await assert.rejects(Person.create({ code: 'X' }), /age.*required|required/);
          const ok = await Person.create({ age: 30, code: '  MiXeD-zz ' });
          assert.equal(ok.code, 'mixed-zz');
          const [inserted] = await Person.insertMany([{ age: 40, code: 'UPPER-zz' }]);
          const stored = await rawCollection(Person).findOne({ _id: inserted._id });
          assert.match(stored.code, STORED_VALUE);
          assert.equal(
            (await Person.findById(inserted._id)).code,
            'upper-zz',
            'the setter ran on the plaintext, before encryption',
          );
          await assert.rejects(Person.updateOne({ _id: ok._id }, { age: 5 }, { runValidators: true }), {
            name: 'ValidationError',
          });
          await Person.updateOne({ _id: ok._id }, { age: 50, code: 'NEW-zz' }, { runValidators: true });
          const updated = await Person.findById(ok._id);
          assert.equal(updated.age, 50);
          assert.equal(updated.code, 'new-zz');
          const bulk = await Person.bulkWrite([{ insertOne: { document: { age: 3 } } }], { ordered: false });
          assert.equal(bulk.insertedCount, 0, 'a bulkWrite insertOne that fails validation is not inserted');
        });

        it('a save the server rejects leaves the plaintext in the document', async (t) => {
          const { v, doc } = await created();
          const twin = new Record({ _id: doc._id, ...docOf(v) });
          await assert.rejects(twin.save(), (err) => err.code === 11000);
          assertAllTyped((p) => twin.get(p), full(v), 'after the failed save');
          await assert.rejects(
            Record.insertMany([twin]),
            (err) => err.code === 11000 || /duplicate/i.test(err.message),
          );
          if (major >= 9) {
            assertAllTyped((p) => twin.get(p), full(v), 'after the failed insertMany');
          } else {
            // Mongoose 8 gives insertMany error hooks no documents: a document
            // instance passed to a failed insertMany keeps its ciphertext
            // (README, known limitations). Nothing is stored in clear either way.
            t.diagnostic('Mongoose 8: the failed insertMany leaves the document instance encrypted in memory');
            assert.match(twin.get('ssn'), STORED_VALUE);
          }
        });

        it('key rotation: new values use the current version, older ones keep decrypting', async () => {
          const { v, id } = await created();
          process.env.ENCRYPTION_KEY_V02 = crypto.randomBytes(32).toString('hex');
          process.env.ENCRYPTION_KEY_VERSION = '02';
          reloadKeys();
          try {
            const w = recordValues(mongoose);
            await Record.updateOne({ _id: id }, { $set: { ssn: w.ssn } });
            const stored = await rawCollection(Record).findOne({ _id: id });
            assert.equal(getKeyVersion(stored.ssn), '02');
            assert.equal(getKeyVersion(stored.age), '01');
            const doc = await Record.findById(id);
            assert.equal(doc.ssn, w.ssn);
            assertSameTyped(doc.age, v.age, 'age');
          } finally {
            delete process.env.ENCRYPTION_KEY_V02;
            delete process.env.ENCRYPTION_KEY_VERSION;
            process.env.ENCRYPTION_KEY = KEY_01;
            reloadKeys();
          }
        });

        it("data written by the foundation's save helper and by node:crypto reads through the plugin", async () => {
          const { Schema } = mongoose;
          const legacySchema = new Schema({ idNumber: String, note: String }, { collection: 'legacyids' });
          legacySchema.pre('save', encryptFieldIfModified('idNumber'));
          legacySchema.methods.getDecryptedIdNumber = createDecryptMethod('idNumber');
          const Legacy = connection.model('LegacyId', legacySchema);
          const written = await Legacy.create({ idNumber: 'X1234567-zz', note: 'helper' });
          const iv = crypto.randomBytes(16);
          const cipher = crypto.createCipheriv('aes-256-gcm', Buffer.from(KEY_01, 'hex'), iv);
          const ct = Buffer.concat([cipher.update('N7654321-zz', 'utf8'), cipher.final()]);
          const nodeStored = `01:${iv.toString('hex')}:${cipher.getAuthTag().toString('hex')}:${ct.toString('hex')}`;
          await connection.db.collection('legacyids').insertOne({ idNumber: nodeStored, note: 'node:crypto' });

          const pluginSchema = new Schema(
            { idNumber: { type: String, encrypted: true }, note: String },
            { collection: 'legacyids' },
          );
          pluginSchema.plugin(fieldEncryption);
          const Migrated = connection.model('MigratedId', pluginSchema);
          const docs = await Migrated.find().sort({ note: 1 });
          assert.deepEqual(
            docs.map((d) => d.idNumber),
            ['X1234567-zz', 'N7654321-zz'],
          );
          // And what the plugin writes for a string, the helper's method reads.
          await Migrated.updateOne({ _id: written._id }, { idNumber: 'X7777777-zz' });
          assert.equal((await Legacy.findById(written._id)).getDecryptedIdNumber(), 'X7777777-zz');
          assert.ok(isEncrypted((await connection.db.collection('legacyids').findOne({ _id: written._id })).idNumber));
          // And what the core's encrypt() writes, the plugin reads (all three share one format).
          await connection.db
            .collection('legacyids')
            .updateOne({ _id: written._id }, { $set: { idNumber: encrypt('C1111111-zz') } });
          assert.equal((await Migrated.findById(written._id)).idNumber, 'C1111111-zz');
          assert.equal((await Legacy.findById(written._id)).getDecryptedIdNumber(), 'C1111111-zz');
        });
      });
    });
  }
});
