'use strict';

// Context binding (`bind`) on every read path, on Mongoose 9 and 8, against
// a real server: ciphertexts moved through the driver (to another field of
// the same document, to another document's same field, to another
// collection's same path) are refused with ERR_FIELDCRYPT_CONTEXT_MISMATCH
// naming the path, hydrated, lean, through a cursor, populate and
// decryptDocument, never shown; values written before binding are
// ERR_FIELDCRYPT_UNBOUND_VALUE unless allowUnbound, and are written back
// bound on the next save of their path; the options are validated.

const { describe, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { it, openMonitoredDatabase } = require('./plugin-helpers');
const { startServer, mongooseVersions, closeTestDatabase } = require('./harness');
const { boundSchema, boundValues, assertBound, expectedBound, pathBindings } = require('./binding-helpers');
const fieldcrypt = require('..');

const { CONTEXT_MISMATCH, UNBOUND_VALUE, UNSUPPORTED_QUERY, INVALID_ARGUMENT } = fieldcrypt.errorCodes;

/** `fn` (sync or async) fails with `code` naming `path` of `modelName`, and its message shows no plaintext. */
async function refuses(fn, code, path, modelName, plaintext) {
  await assert.rejects(
    async () => fn(),
    (err) => {
      assert.equal(err.code, code, err.message);
      assert.equal(err.path, path);
      assert.equal(err.modelName, modelName);
      assert.ok(err.message.includes(`${modelName}.${path}`), err.message);
      if (plaintext) assert.ok(!err.message.includes(plaintext), 'the message shows no plaintext');
      return true;
    },
  );
}

describe('fieldEncryption bind: options', () => {
  const mongoose = require('mongoose');
  const { Schema } = mongoose;
  it('bind and allowUnbound are validated, per schema and per path', () => {
    for (const options of [{ bind: 'row' }, { bind: true }, { allowUnbound: 'yes' }]) {
      assert.throws(
        () => new Schema({ a: String }).plugin(fieldcrypt.fieldEncryption, { fields: ['a'], ...options }),
        (err) => err.code === INVALID_ARGUMENT && /fieldEncryption: (bind|allowUnbound)/.test(err.message),
      );
    }
    assert.throws(
      () => new Schema({ a: { type: String, encrypted: true, bind: 'row' } }).plugin(fieldcrypt.fieldEncryption),
      (err) => err.code === INVALID_ARGUMENT && err.message.includes("'a': bind"),
    );
  });

  it('without bind nothing is bound, and stored values decrypt without a context', () => {
    const schema = new Schema({ a: { type: String, encrypted: true } });
    schema.plugin(fieldcrypt.fieldEncryption);
    assert.deepEqual(pathBindings(schema), { paths: [], allowUnbound: false });
    const plain = new Schema({ a: { type: String, encrypted: true, bind: 'collection' }, b: String });
    plain.plugin(fieldcrypt.fieldEncryption, { fields: ['b'], allowUnbound: true });
    assert.deepEqual(pathBindings(plain), { paths: [{ path: 'a', bind: 'collection' }], allowUnbound: true });
  });
});

describe('fieldEncryption bind: read paths', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { mongoose, label } of mongooseVersions()) {
    describe(label, () => {
      let connection;
      let Bound;
      let Elsewhere; // the same schema, another collection
      let Legacy; // the same collection, without bind
      let Migrating; // the same collection, bind with allowUnbound
      let Owner; // refers to Bound, for populate
      const coll = (M) => connection.db.collection(M.collection.collectionName);

      before(async () => {
        connection = await openMonitoredDatabase(mongoose, server.uri, __filename);
        Bound = connection.model('Bound', boundSchema(mongoose));
        Elsewhere = connection.model('Elsewhere', boundSchema(mongoose));
        Legacy = connection.model('Legacy', boundSchema(mongoose, { bind: false }), Bound.collection.collectionName);
        Migrating = connection.model(
          'Migrating',
          boundSchema(mongoose, { allowUnbound: true }),
          Bound.collection.collectionName,
        );
        Owner = connection.model(
          'Owner',
          new mongoose.Schema({ label: String, bound: { type: mongoose.Schema.Types.ObjectId, ref: 'Bound' } }),
        );
      });
      after(() => closeTestDatabase(connection));

      /** Every way the plugin reads a document of `Model` by _id. */
      const READS = [
        ['hydrated', (M, _id) => M.findById(_id)],
        ['lean', (M, _id) => M.findOne({ _id }).lean()],
        ['cursor', async (M, _id) => M.find({ _id }).cursor().next()],
        // (Not a lean cursor: Mongoose does not catch an error thrown by a cursor's
        // transform, so any refused value there is an uncaught exception.)
        ['decryptDocument', async (M, _id) => fieldcrypt.decryptDocument(M, await coll(M).findOne({ _id }))],
        [
          'populate',
          async (M, _id) => {
            const owner = await Owner.create({ label: 'o', bound: _id });
            return (await Owner.findById(owner._id).populate({ path: 'bound', model: M })).bound;
          },
        ],
      ];

      it('bound values read back on every read path', async () => {
        const v = boundValues();
        const doc = await Bound.create(v);
        for (const [name, read] of READS) {
          const back = await read(Bound, doc._id);
          assert.equal(back.ssn, v.ssn, name);
          assert.equal(back.age, v.age, name);
          assert.equal(back.identifications[1].idNumber, v.identifications[1].idNumber, name);
          const secrets = back.secrets instanceof Map ? Object.fromEntries(back.secrets) : back.secrets;
          assert.equal(secrets.k1, v.secrets.k1, name);
        }
      });

      describe('a ciphertext moved through the driver is refused, never shown', () => {
        const SWAPS = [
          {
            name: 'to another field of the same document',
            path: 'ssn',
            move: async (victim) => {
              const rawVictim = await coll(Bound).findOne({ _id: victim._id });
              await coll(Bound).updateOne({ _id: victim._id }, { $set: { ssn: rawVictim.secrets.k1 } });
              return { Model: Bound, _id: victim._id, stolen: victim.v.secrets.k1 };
            },
          },
          {
            name: "an array element to another document's array",
            path: 'identifications.idNumber',
            move: async (victim) => {
              const attacker = await Bound.create(boundValues());
              const rawVictim = await coll(Bound).findOne({ _id: victim._id });
              await coll(Bound).updateOne(
                { _id: attacker._id },
                { $set: { 'identifications.0.idNumber': rawVictim.identifications[1].idNumber } },
              );
              return { Model: Bound, _id: attacker._id, stolen: victim.v.identifications[1].idNumber };
            },
          },
          {
            name: "to another document's same field",
            path: 'ssn',
            move: async (victim) => {
              const attacker = await Bound.create(boundValues());
              const rawVictim = await coll(Bound).findOne({ _id: victim._id });
              await coll(Bound).updateOne({ _id: attacker._id }, { $set: { ssn: rawVictim.ssn } });
              return { Model: Bound, _id: attacker._id, stolen: victim.v.ssn };
            },
          },
          {
            name: "to another collection's same path (collection-bound)",
            path: 'age',
            move: async (victim) => {
              const rawVictim = await coll(Bound).findOne({ _id: victim._id });
              const attacker = await Elsewhere.create(boundValues());
              await coll(Elsewhere).updateOne({ _id: attacker._id }, { $set: { age: rawVictim.age } });
              return { Model: Elsewhere, _id: attacker._id, stolen: String(victim.v.age) };
            },
          },
          {
            name: "to another collection's same document (the same _id)",
            path: 'ssn',
            move: async (victim) => {
              const rawVictim = await coll(Bound).findOne({ _id: victim._id });
              await coll(Elsewhere).insertOne({ ...rawVictim });
              return { Model: Elsewhere, _id: victim._id, stolen: victim.v.ssn };
            },
          },
        ];
        for (const swap of SWAPS) {
          it(swap.name, async () => {
            const v = boundValues();
            const doc = await Bound.create(v);
            const { Model, _id, stolen } = await swap.move({ _id: doc._id, v });
            for (const [name, read] of READS) {
              await refuses(() => read(Model, _id), CONTEXT_MISMATCH, swap.path, Model.modelName, stolen).catch(
                (err) => {
                  err.message = `${name}: ${err.message}`;
                  throw err;
                },
              );
            }
            // The victim still reads.
            if (Model === Bound && !_id.equals(doc._id)) assert.equal((await Bound.findById(doc._id)).ssn, v.ssn);
          });
        }
      });

      it('a document-bound value read without its _id fails naming the path (projected out)', async () => {
        const v = boundValues();
        const doc = await Bound.create(v);
        await refuses(() => Bound.findById(doc._id, { _id: 0, ssn: 1 }).lean(), UNSUPPORTED_QUERY, 'ssn', 'Bound');
        await refuses(() => Bound.findOne({ _id: doc._id }, { _id: 0, ssn: 1 }), UNSUPPORTED_QUERY, 'ssn', 'Bound');
        // A collection-bound path needs no _id.
        assert.equal((await Bound.findById(doc._id, { _id: 0, age: 1 }).lean()).age, v.age);
      });

      it('explicit mode: doc.decryptField() and toObject({ includeDecrypted }) read bound values', async () => {
        const schema = boundSchema(mongoose, { decrypt: 'explicit' });
        const Explicit = connection.model('Explicit', schema, Bound.collection.collectionName);
        const v = boundValues();
        const doc = await Bound.create(v);
        const loaded = await Explicit.findById(doc._id);
        assert.notEqual(loaded.ssn, v.ssn);
        assert.equal(loaded.decryptField('ssn'), v.ssn);
        assert.equal(loaded.decryptField('identifications.1.idNumber'), v.identifications[1].idNumber);
        assert.deepEqual(loaded.decryptField('aliases'), v.aliases);
        assert.equal(loaded.toObject({ includeDecrypted: true }).ssn, v.ssn);
        await coll(Bound).updateOne(
          { _id: doc._id },
          { $set: { ssn: (await coll(Bound).findOne({ _id: doc._id })).note } },
        );
        const swapped = await Explicit.findById(doc._id);
        assert.throws(
          () => swapped.decryptField('ssn'),
          (err) => err.code !== undefined && err.path === 'ssn',
        );
      });

      it('validators see the decrypted value of a bound path (save, insertMany, bulkWrite, runValidators)', async () => {
        const schema = boundSchema(mongoose);
        const seen = [];
        schema.path('ssn').validate((value) => {
          seen.push(value);
          return !value.startsWith('bad');
        });
        const Checked = connection.model('Checked', schema, Bound.collection.collectionName);
        const v = boundValues();
        await Checked.insertMany([v]);
        const doc = await Checked.create(boundValues());
        await Checked.bulkWrite([{ insertOne: { document: boundValues() } }]);
        await Checked.updateOne({ _id: doc._id }, { ssn: 'fine-zz' }, { runValidators: true, context: 'query' });
        await assert.rejects(Checked.create({ ...boundValues(), ssn: 'bad-zz' }), /Validator failed/);
        assert.ok(seen.includes(v.ssn), 'insertMany validated the plaintext');
        assert.ok(seen.includes('fine-zz'), 'the update validator saw the plaintext');
        assert.ok(
          seen.every((s) => !fieldcrypt.isEncrypted(s)),
          'no validator saw a ciphertext',
        );
      });

      describe('values written before binding', () => {
        it('are UNBOUND_VALUE on a bound path (written without bind, or by encrypt() directly)', async () => {
          const v = boundValues();
          const old = await Legacy.create(v);
          await refuses(() => Bound.findById(old._id), UNBOUND_VALUE, 'ssn', 'Bound', v.ssn);
          await refuses(() => Bound.findById(old._id).lean(), UNBOUND_VALUE, 'ssn', 'Bound', v.ssn);
          const raw = await coll(Bound).findOne({ _id: old._id });
          await refuses(() => fieldcrypt.decryptDocument(Bound, raw), UNBOUND_VALUE, 'ssn', 'Bound');
          // A value of an unbound path is read as before.
          const direct = await Bound.create(boundValues());
          await coll(Bound).updateOne({ _id: direct._id }, { $set: { ssn: fieldcrypt.encrypt('direct-zz') } });
          await refuses(() => Bound.findById(direct._id), UNBOUND_VALUE, 'ssn', 'Bound', 'direct-zz');
        });

        it('with allowUnbound they read, and are written back bound on the next save of their path', async () => {
          const v = boundValues();
          const old = await Legacy.create(v);
          const before = await coll(Bound).findOne({ _id: old._id });
          const doc = await Migrating.findById(old._id);
          assert.equal(doc.ssn, v.ssn);
          assert.equal(doc.identifications[0].idNumber, v.identifications[0].idNumber);
          assert.equal((await Migrating.findById(old._id).lean()).ssn, v.ssn);
          // Values bound elsewhere stay refused with allowUnbound.
          doc.markModified('ssn');
          doc.markModified('identifications');
          doc.markModified('aliases');
          doc.markModified('secrets');
          doc.age = v.age + 1;
          await doc.save();
          const after = await coll(Bound).findOne({ _id: old._id });
          assert.notEqual(after.ssn, before.ssn);
          assertBound(mongoose, Bound, after, { ...expectedBound(v) });
          assert.equal((await Bound.findById(old._id)).ssn, v.ssn);
          // A moved value is still refused with allowUnbound.
          const other = await Migrating.create(boundValues());
          await coll(Bound).updateOne({ _id: other._id }, { $set: { ssn: after.ssn } });
          await refuses(() => Migrating.findById(other._id), CONTEXT_MISMATCH, 'ssn', 'Migrating', v.ssn);
        });
      });
    });
  }
});
