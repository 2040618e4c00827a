'use strict';

// Result sets decrypted together (lib/mongoose/plugin/read-batch.js), on
// Mongoose 9 and 8 against a real server: lean results of many documents
// whose values share a context (unbound, collection-bound) or not
// (document-bound), mixed with values that do not batch (typed, in arrays,
// in subdocuments); a failing value in the middle of a result set still
// fails the read naming its path; plaintext under allowUnencrypted; the
// audit hook is called once per value; hydrated reads and decryptDocument
// give the same values.

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { it, openMonitoredDatabase } = require('./plugin-helpers');
const { startServer, mongooseVersions, closeTestDatabase } = require('./harness');
const fieldcrypt = require('..');

const { CONTEXT_MISMATCH, UNENCRYPTED_VALUE, AUTH_FAILED, UNBOUND_VALUE } = fieldcrypt.errorCodes;
const COUNT = 30;
const MIDDLE = 17;

function schemaOf(mongoose, pluginOptions) {
  const { Schema } = mongoose;
  const schema = new Schema({
    n: Number,
    ssn: { type: String, encrypted: true },
    email: { type: String, encrypted: true },
    age: { type: Number, encrypted: true },
    tags: [{ type: String, encrypted: true }],
    contact: { phone: { type: String, encrypted: true } },
  });
  schema.plugin(fieldcrypt.fieldEncryption, pluginOptions);
  return schema;
}

const valuesOf = (i) => ({
  n: i,
  ssn: `ssn-${i}`,
  email: i % 5 === 0 ? '' : `p${i}@example.org`,
  age: 20 + i,
  tags: [`a${i}`, `b${i}`],
  contact: { phone: `555-${i}` },
});

function assertValues(doc, i, label) {
  const want = valuesOf(i);
  assert.equal(doc.ssn, want.ssn, `${label} ssn`);
  assert.equal(doc.email, want.email, `${label} email`);
  assert.equal(doc.age, want.age, `${label} age`);
  assert.deepEqual([...doc.tags], want.tags, `${label} tags`);
  assert.equal(doc.contact.phone, want.contact.phone, `${label} contact.phone`);
}

/** The values of a document of valuesOf(i) the plugin decrypts (an empty string is stored encrypted too). */
const DECRYPTED_PER_DOC = 6;

describe('fieldEncryption: result sets decrypted together', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { mongoose, label } of mongooseVersions()) {
    describe(label, () => {
      let connection;
      const audits = [];
      const models = {};
      const coll = (M) => connection.db.collection(M.collection.collectionName);

      before(async () => {
        connection = await openMonitoredDatabase(mongoose, server.uri, __filename);
        const onDecrypt = (record) => audits.push(record);
        for (const bind of [false, 'collection', 'document']) {
          const name = `Batch_${bind || 'unbound'}`;
          models[bind] = connection.model(name, schemaOf(mongoose, { bind, onDecrypt }));
          await models[bind].insertMany(Array.from({ length: COUNT }, (_, i) => valuesOf(i)));
        }
        models.lenient = connection.model(
          'Batch_lenient',
          schemaOf(mongoose, { allowUnencrypted: true }),
          models[false].collection.collectionName,
        );
      });
      after(() => closeTestDatabase(connection));

      for (const bind of [false, 'collection', 'document']) {
        it(`bind: ${bind}: lean, hydrated, cursor and decryptDocument read every value; one audit per value`, async () => {
          const M = models[bind];
          audits.length = 0;
          const lean = await M.find({}).sort({ n: 1 }).lean();
          assert.equal(lean.length, COUNT);
          lean.forEach((doc, i) => assertValues(doc, i, `lean ${i}`));
          assert.equal(audits.length, COUNT * DECRYPTED_PER_DOC);
          const first = audits.filter((a) => String(a.documentId) === String(lean[1]._id));
          assert.deepEqual(first.map((a) => a.path).sort(), ['age', 'contact.phone', 'email', 'ssn', 'tags', 'tags']);
          assert.ok(first.every((a) => a.modelName === M.modelName && a.keyVersion === '01'));

          const hydrated = await M.find({}).sort({ n: 1 });
          hydrated.forEach((doc, i) => assertValues(doc, i, `hydrated ${i}`));
          let i = 0;
          for await (const doc of M.find({}).sort({ n: 1 }).lean().cursor()) assertValues(doc, i, `cursor ${i++}`);
          assert.equal(i, COUNT);
          const raw = await coll(M).findOne({ n: 3 });
          assertValues(fieldcrypt.decryptDocument(M, raw), 3, 'decryptDocument');
        });
      }

      it('a tampered value in the middle of a result set fails the read, naming its path', async () => {
        const M = models[false];
        const raw = await coll(M).findOne({ n: MIDDLE });
        const flipped = raw.email.slice(0, -1) + (raw.email.endsWith('0') ? '1' : '0');
        await coll(M).updateOne({ _id: raw._id }, { $set: { email: flipped } });
        try {
          for (const read of [() => M.find({}).lean(), () => M.find({})]) {
            await assert.rejects(read(), (err) => {
              assert.equal(err.code, AUTH_FAILED, err.message);
              return true;
            });
          }
        } finally {
          await coll(M).updateOne({ _id: raw._id }, { $set: { email: raw.email } });
        }
      });

      it('a plaintext in the middle: refused with its path, or read as it is with allowUnencrypted', async () => {
        const M = models[false];
        const raw = await coll(M).findOne({ n: MIDDLE });
        await coll(M).updateOne({ _id: raw._id }, { $set: { ssn: 'legacy-ssn' } });
        try {
          await assert.rejects(M.find({}).lean(), (err) => {
            assert.equal(err.code, UNENCRYPTED_VALUE, err.message);
            assert.equal(err.path, 'ssn');
            assert.ok(!err.message.includes('legacy-ssn'));
            return true;
          });
          const docs = await models.lenient.find({}).sort({ n: 1 }).lean();
          assert.equal(docs[MIDDLE].ssn, 'legacy-ssn');
          docs.forEach((doc, i) => i !== MIDDLE && assertValues(doc, i, `lenient ${i}`));
        } finally {
          await coll(M).updateOne({ _id: raw._id }, { $set: { ssn: raw.ssn } });
        }
      });

      for (const bind of ['collection', 'document']) {
        it(`bind: ${bind}: a value moved in from elsewhere, in the middle, is refused naming its path`, async () => {
          const M = models[bind];
          const other = await coll(models[false]).findOne({ n: 2 });
          const raw = await coll(M).findOne({ n: MIDDLE });
          // collection: a value bound to the unbound model's collection is
          // unbound here; document: another document's value of this collection.
          const moved = bind === 'document' ? (await coll(M).findOne({ n: 2 })).ssn : other.ssn;
          await coll(M).updateOne({ _id: raw._id }, { $set: { ssn: moved } });
          try {
            await assert.rejects(M.find({}).lean(), (err) => {
              assert.ok([CONTEXT_MISMATCH, UNBOUND_VALUE].includes(err.code), err.message);
              assert.equal(err.path, 'ssn');
              return true;
            });
          } finally {
            await coll(M).updateOne({ _id: raw._id }, { $set: { ssn: raw.ssn } });
          }
          const docs = await M.find({}).sort({ n: 1 }).lean();
          docs.forEach((doc, i) => assertValues(doc, i, `after ${i}`));
        });
      }
    });
  }
});
