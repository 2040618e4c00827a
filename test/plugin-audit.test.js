'use strict';

// The fieldEncryption plugin's audit callbacks and its once-per-schema rule,
// on Mongoose 9 and Mongoose 8 against a real server (docs/plugin.md):
// - a throwing onDecrypt fails the read, hydrated, lean and through cursors;
// - documentId in audit events: each document's _id on reads whatever the
//   filter, the filter's _id on updates that name one, otherwise undefined;
// - insertMany and bulkWrite report one onEncrypt event per value;
// - a plugin applied both globally (mongoose.plugin) and on the schema is
//   applied once: reads and writes work, values are encrypted once, the
//   schema's own options count.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { openMonitoredDatabase } = require('./plugin-helpers');
const { startServer, mongooseVersions, closeTestDatabase } = require('./harness');
const { fieldEncryption, decrypt, isEncrypted } = require('..');

const AUDIT_DOWN = 'audit log unavailable';

describe('fieldEncryption: audit callbacks and a plugin applied twice', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { mongoose, label } of mongooseVersions()) {
    describe(label, () => {
      let connection;
      before(async () => {
        connection = await openMonitoredDatabase(mongoose, server.uri, __filename);
      });
      after(() => closeTestDatabase(connection));

      /** A model with two encrypted paths (ssn, age) and the audit options given. */
      function model(name, options) {
        const schema = new mongoose.Schema({
          name: String,
          ssn: { type: String, encrypted: true },
          age: { type: Number, encrypted: true },
        });
        schema.plugin(fieldEncryption, options);
        return connection.model(name, schema);
      }
      const raw = (M) => connection.db.collection(M.collection.collectionName);

      it('an onDecrypt that throws fails hydrated, lean and cursor reads', async () => {
        let failing = false;
        const M = model('AuditThrows', {
          onDecrypt: () => {
            if (failing) throw new Error(AUDIT_DOWN);
          },
        });
        const doc = await M.create({ name: 'a', ssn: 'throw-zz', age: 33 });
        assert.equal((await M.findById(doc._id)).ssn, 'throw-zz', 'reads work while the callback does not throw');
        failing = true;
        const reads = {
          'findById (hydrated)': () => M.findById(doc._id),
          'find by name (hydrated)': () => M.find({ name: 'a' }),
          'findOne lean': () => M.findOne({ name: 'a' }).lean(),
          'find lean': () => M.find({ _id: doc._id }).lean(),
          'findOneAndUpdate returning the document': () =>
            M.findOneAndUpdate({ _id: doc._id }, { $set: { name: 'a' } }, { returnDocument: 'after' }),
          'cursor (hydrated)': async () => {
            for await (const d of M.find({ name: 'a' }).cursor()) assert.fail(`the cursor returned ${d._id}`);
          },
          'eachAsync (hydrated)': () =>
            M.find({ name: 'a' })
              .cursor()
              .eachAsync(() => {}),
        };
        for (const [what, read] of Object.entries(reads)) {
          await assert.rejects(
            read(),
            (err) => {
              assert.equal(err.message, AUDIT_DOWN, `${what}: the callback's error reaches the caller`);
              return true;
            },
            `${what}: the read succeeded although onDecrypt threw`,
          );
        }
      });

      // A lean cursor applies the query's transforms where a throw is lost (the
      // consumer's next() never settled); its documents are decrypted in a post
      // hook instead, whose error fails the read. The timeout only turns a hang
      // into a failure.
      it(
        'an onDecrypt that throws fails a lean cursor read: for await, next() and eachAsync reject',
        { timeout: 60000 },
        async () => {
          let failing = false;
          const M = model('AuditThrowsLean', {
            onDecrypt: () => {
              if (failing) throw new Error(AUDIT_DOWN);
            },
          });
          await M.create([
            { name: 'lean', ssn: 'lean-a-zz', age: 1 },
            { name: 'lean', ssn: 'lean-b-zz', age: 2 },
          ]);
          const seen = [];
          for await (const d of M.find({ name: 'lean' }).lean().cursor()) seen.push([d.ssn, d.age]);
          assert.deepEqual(
            seen.sort(([a], [b]) => a.localeCompare(b)),
            [
              ['lean-a-zz', 1],
              ['lean-b-zz', 2],
            ],
            'a lean cursor decrypts while the callback does not throw',
          );

          failing = true;
          const isAuditDown = (what) => (err) => {
            assert.equal(err.message, AUDIT_DOWN, `${what}: the callback's error reaches the consumer`);
            return true;
          };
          await assert.rejects(async () => {
            for await (const d of M.find({ name: 'lean' }).lean().cursor()) assert.fail(`the cursor returned ${d._id}`);
          }, isAuditDown('for await'));
          const cursor = M.find({ name: 'lean' }).lean().cursor();
          await assert.rejects(cursor.next(), isAuditDown('next()'));
          await cursor.close();
          await assert.rejects(
            M.find({ name: 'lean' })
              .lean()
              .cursor()
              .eachAsync(() => assert.fail('eachAsync was called with a document')),
            isAuditDown('eachAsync'),
          );
        },
      );

      it(
        'a tampered value fails a lean cursor read with AUTH_FAILED, without returning the document',
        { timeout: 60000 },
        async () => {
          const M = model('TamperedLeanCursor', {});
          const doc = await M.create({ name: 'tampered', ssn: 'tamper-zz', age: 5 });
          const stored = (await raw(M).findOne({ _id: doc._id })).ssn;
          const flipped = stored.slice(0, -1) + (stored.endsWith('0') ? '1' : '0'); // the ciphertext's last hex digit
          await raw(M).updateOne({ _id: doc._id }, { $set: { ssn: flipped } });
          await assert.rejects(
            async () => {
              for await (const d of M.find({ _id: doc._id }).lean().cursor())
                assert.fail(`the cursor returned ${d._id}`);
            },
            (err) => {
              assert.equal(err.code, 'ERR_FIELDCRYPT_AUTH_FAILED');
              return true;
            },
          );
        },
      );

      it('documentId: each document _id on reads whatever the filter; on updates, the _id the filter names', async () => {
        const events = [];
        const M = model('AuditIds', {
          onEncrypt: (e) => events.push(['encrypt', e]),
          onDecrypt: (e) => events.push(['decrypt', e]),
        });
        const [a, b] = await M.create([
          { name: 'same', ssn: 'ids-a-zz', age: 1 },
          { name: 'same', ssn: 'ids-b-zz', age: 2 },
        ]);
        const ids = (list) => list.map(([kind, e]) => `${kind} ${e.path} ${e.documentId}`).sort();
        const both = (kind) => [
          `${kind} age ${a._id}`,
          `${kind} age ${b._id}`,
          `${kind} ssn ${a._id}`,
          `${kind} ssn ${b._id}`,
        ];
        for (const [what, read] of [
          ['find by name', () => M.find({ name: 'same' })],
          ['find by name, lean', () => M.find({ name: 'same' }).lean()],
          [
            'find by $in of names, cursor',
            async () => {
              for await (const d of M.find({ name: { $in: ['same'] } }).cursor()) assert.ok(d.ssn);
            },
          ],
          [
            'find by name, lean cursor',
            () =>
              M.find({ name: 'same' })
                .lean()
                .cursor()
                .eachAsync(() => {}),
          ],
        ]) {
          events.length = 0;
          await read();
          assert.deepEqual(ids(events), both('decrypt'), what);
        }
        events.length = 0;
        await M.updateOne({ name: 'same', _id: b._id }, { $set: { ssn: 'ids-b2-zz' } });
        assert.deepEqual(ids(events), [`encrypt ssn ${b._id}`], 'an update whose filter names one _id');
        events.length = 0;
        await M.updateMany({ name: 'same' }, { $set: { age: 5 } });
        assert.deepEqual(ids(events), ['encrypt age undefined'], 'an update by another field: unknown');
        events.length = 0;
        const one = await M.findOne({ name: 'same', ssn: { $exists: true } }).sort({ _id: -1 });
        assert.equal(one.ssn, 'ids-b2-zz');
        assert.deepEqual(ids(events), [`decrypt age ${b._id}`, `decrypt ssn ${b._id}`]);
      });

      it('insertMany and bulkWrite report one onEncrypt event per value, with its document _id', async () => {
        const events = [];
        const M = model('AuditBulk', { onEncrypt: (e) => events.push(e) });
        const list = (filter = () => true) =>
          events
            .filter(filter)
            .map((e) => `${e.modelName} ${e.path} ${e.documentId} ${e.keyVersion}`)
            .sort();
        const inserted = await M.insertMany([
          { name: 'i1', ssn: 'bulk-1-zz', age: 10 },
          { name: 'i2', ssn: 'bulk-2-zz', age: 20 },
        ]);
        const expect = (docs, paths) => docs.flatMap((d) => paths.map((p) => `AuditBulk ${p} ${d._id} 01`)).sort();
        assert.deepEqual(list(), expect(inserted, ['age', 'ssn']), 'insertMany');
        for (const e of events)
          assert.deepEqual(Object.keys(e).sort(), ['documentId', 'keyVersion', 'modelName', 'path']);

        events.length = 0;
        const newId = new mongoose.Types.ObjectId();
        await M.bulkWrite([
          { insertOne: { document: { _id: newId, name: 'b1', ssn: 'bulk-3-zz', age: 30 } } },
          { updateOne: { filter: { _id: inserted[0]._id }, update: { $set: { ssn: 'bulk-4-zz' } } } },
          { replaceOne: { filter: { _id: inserted[1]._id }, replacement: { name: 'r', ssn: 'bulk-5-zz', age: 50 } } },
        ]);
        assert.deepEqual(
          list(),
          [
            `AuditBulk age ${newId} 01`,
            `AuditBulk ssn ${newId} 01`,
            `AuditBulk ssn ${inserted[0]._id} 01`,
            `AuditBulk age ${inserted[1]._id} 01`,
            `AuditBulk ssn ${inserted[1]._id} 01`,
          ].sort(),
          'bulkWrite insertOne, updateOne, replaceOne',
        );
        const stored = await raw(M).find().toArray();
        assert.equal(stored.length, 3);
        for (const d of stored)
          assert.ok(isEncrypted(d.ssn) && isEncrypted(d.age), 'what was audited is stored encrypted');
      });

      it('mongoose.plugin(fieldEncryption) plus schema.plugin: applied once, reads and writes work', async () => {
        const instance = new mongoose.Mongoose();
        instance.plugin(fieldEncryption, { onEncrypt: () => assert.fail('the global options were applied too') });
        const conn = await instance.createConnection(server.uri, { dbName: connection.name }).asPromise();
        try {
          const events = [];
          const schema = new instance.Schema({ name: String, ssn: { type: String, encrypted: true } });
          schema.plugin(fieldEncryption, { onEncrypt: (e) => events.push(e.path) });
          const M = conn.model('TwicePlugged', schema);
          const doc = await M.create({ name: 'twice', ssn: 'twice-zz' });
          assert.deepEqual(events, ['ssn'], "encrypted once, with the schema's own options");
          const stored = await conn.db.collection(M.collection.collectionName).findOne({ _id: doc._id });
          assert.equal(decrypt(stored.ssn), 'twice-zz', 'one layer of encryption');
          assert.equal((await M.findById(doc._id)).ssn, 'twice-zz', 'hydrated read');
          assert.equal((await M.findOne({ name: 'twice' }).lean()).ssn, 'twice-zz', 'lean read');
          await M.updateOne({ _id: doc._id }, { $set: { ssn: 'twice2-zz' } });
          const found = await M.findById(doc._id);
          assert.equal(found.ssn, 'twice2-zz', 'after an update');
          found.ssn = 'twice3-zz';
          await found.save();
          const after = await conn.db.collection(M.collection.collectionName).findOne({ _id: doc._id });
          assert.equal(decrypt(after.ssn), 'twice3-zz', 'save() encrypts once');
          assert.deepEqual(
            (await M.find({ name: 'twice' })).map((d) => d.ssn),
            ['twice3-zz'],
          );
        } finally {
          await conn.close();
        }
      });
    });
  }
});
