'use strict';

// The CLI's safety guarantees on the real test database:
// - SIGKILL at random moments, several times, then a rerun: every value is
//   encrypted exactly once and decrypts to its original (and at every moment
//   in between, each value is either its plaintext or a ciphertext of it);
// - SIGINT stops after the batches in flight, saves the checkpoint, says how to
//   resume, exits 130; --resume then finishes without rescanning;
// - an application writing while the migration runs loses nothing;
// - --partition i/N runs in parallel cover every document exactly once.
//
// FERRETDB NOTE: on the FerretDB v1 (SQLite) test server every update costs a
// scan of the collection, so these collections are a few hundred documents.
// FIELDCRYPT_CRASH_SEED=<n> replays a crash run; FIELDCRYPT_CRASH_RUNS sets how many kills.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnCli, runCli, jsonOf, openCliDatabase, prng, sleep } = require('./cli-helpers');
const { decrypt, isEncrypted } = require('..');

function person(i) {
  return {
    i,
    ssn: `SSN-${i}-${'x'.repeat(i % 7)}`,
    ids: [
      { kind: 'passport', n: `P${i}` },
      { kind: 'dl', n: `D-${i}` },
    ],
    note: `note ${i}`,
  };
}
const FIELD_ARGS = ['--field', 'ssn', '--field', 'ids.n'];

/**
 * Checks every document against its expected plaintexts: each value is either
 * still the plaintext (allowed when `final` is false) or a well-formed
 * ciphertext that decrypts to exactly the plaintext (so never encrypted twice).
 */
function checkDocs(docs, expected, { final, context }) {
  assert.equal(docs.length, expected.size, `${context}: document count`);
  let encrypted = 0;
  for (const doc of docs) {
    const want = expected.get(doc.i);
    const pairs = [[doc.ssn, want.ssn], ...doc.ids.map((x, k) => [x.n, want.ids[k].n])];
    for (const [stored, plain] of pairs) {
      if (isEncrypted(stored)) {
        assert.equal(decrypt(stored), plain, `${context}: doc ${doc.i} decrypts to its original`);
        encrypted++;
      } else {
        assert.ok(!final, `${context}: doc ${doc.i} still holds plaintext after the final run`);
        assert.equal(stored, plain, `${context}: doc ${doc.i} plaintext unchanged`);
      }
    }
    assert.equal(doc.note, want.note, `${context}: other fields untouched`);
    assert.deepEqual(
      doc.ids.map((x) => x.kind),
      ['passport', 'dl'],
    );
  }
  return encrypted;
}

describe('CLI safety', () => {
  let t;
  const common = () => ['--uri', t.uri, '--db', t.dbName];

  before(async () => {
    t = await openCliDatabase(__filename);
  });
  after(() => t && t.close());

  async function seed(name, n) {
    const coll = t.db.collection(name);
    const expected = new Map();
    const docs = [];
    for (let i = 0; i < n; i++) {
      docs.push(person(i));
      expected.set(i, person(i));
    }
    await coll.insertMany(docs);
    return { coll, expected };
  }

  it('SIGKILL at random points, then a rerun: every value encrypted exactly once', async (t2) => {
    const seed0 = Number(process.env.FIELDCRYPT_CRASH_SEED || Math.floor(Math.random() * 2 ** 31));
    const runs = Number(process.env.FIELDCRYPT_CRASH_RUNS || 5);
    const random = prng(seed0);
    const context = (k) => `crash run ${k} (replay with FIELDCRYPT_CRASH_SEED=${seed0})`;
    const { coll, expected } = await seed('crash', 500);
    const args = [
      'encrypt',
      ...common(),
      '--collection',
      'crash',
      ...FIELD_ARGS,
      '--batch-size',
      '25',
      '--concurrency',
      '3',
      '--quiet',
    ];
    let killed = 0;
    const checkpoints = t.db.collection('fieldcrypt_checkpoints');
    for (let k = 0; k < runs; k++) {
      // Alternate a resumed run and a plain rerun: both must be correct.
      const run = spawnCli(k % 2 ? [...args, '--resume'] : args, { uri: t.uri });
      let exited = false;
      run.done.finally(() => (exited = true));
      // Kill after a random number of checkpoint saves (0: during start-up),
      // plus a random delay, so the kill lands at any point whatever the
      // server's speed: between batches, inside one, during a save.
      const saves = Math.floor(random() * 12);
      const extra = Math.floor(random() * (saves ? 60 : 600));
      let seen = 0;
      let last;
      while (!exited && seen < saves) {
        const saved = await checkpoints.findOne({ collection: 'crash' }, { projection: { updatedAt: 1 } });
        const stamp = saved && saved.updatedAt && saved.updatedAt.getTime();
        if (stamp && stamp !== last) {
          seen++;
          last = stamp;
        }
        await sleep(5);
      }
      await sleep(extra);
      if (!exited) {
        run.child.kill('SIGKILL');
        const res = await run.done;
        // The child may have finished on its own just before the signal (it
        // had exited, its pipes not yet closed): then it must have succeeded.
        if (res.signal === 'SIGKILL') killed++;
        else assert.equal(res.code, 0, `${context(k)}: ${res.stderr}`);
      } else {
        const res = await run.done;
        assert.equal(res.code, 0, `${context(k)}: ${res.stderr}`);
      }
      checkDocs(await coll.find().toArray(), expected, { final: false, context: context(k) });
      if (process.env.FIELDCRYPT_TEST_VERBOSE)
        console.error(`${context(k)}: killed after ${seen} checkpoint saves + ${extra} ms`);
    }
    const last = await runCli([...args, '--resume'], { uri: t.uri });
    assert.equal(last.code, 0, `${context('final')}: ${last.stderr}`);
    // A resumed run only covers what is after the checkpoint: a plain rerun
    // scans everything and must find nothing left to do.
    const check = await runCli([...args, '--json'], { uri: t.uri });
    assert.equal(check.code, 0, check.stderr);
    assert.equal(
      jsonOf(check).collections[0].updated,
      0,
      `${context('check')}: a full rerun after the final run has nothing left to encrypt`,
    );
    const encrypted = checkDocs(await coll.find().toArray(), expected, { final: true, context: context('final') });
    assert.equal(encrypted, 3 * 500);
    assert.ok(killed >= 1, `${context('all')}: at least one run was killed`);
    t2.diagnostic(
      `crash test: ${killed} of ${runs} runs killed with SIGKILL, seed ${seed0}; all 1,500 values encrypted exactly once`,
    );
  });

  it('SIGINT finishes the batches in flight, saves the checkpoint, exits 130; --resume completes', async () => {
    const { coll, expected } = await seed('interrupt', 300);
    const args = [
      'encrypt',
      ...common(),
      '--collection',
      'interrupt',
      ...FIELD_ARGS,
      '--batch-size',
      '10',
      '--concurrency',
      '2',
      '--progress-interval',
      '1',
    ];
    const run = spawnCli(args, { uri: t.uri });
    const checkpoints = t.db.collection('fieldcrypt_checkpoints');
    for (let i = 0; i < 400; i++) {
      const saved = await checkpoints.findOne({ collection: 'interrupt' });
      if (saved && saved.lastId !== undefined && saved.status === 'running') break;
      await sleep(25);
    }
    run.child.kill('SIGINT');
    const res = await run.done;
    assert.equal(res.code, 130, res.stderr);
    assert.match(res.stderr, /SIGINT: finishing the batches in flight/);
    assert.match(res.stderr, /Continue with:\n {2}fieldcrypt encrypt .* --resume\n/);
    assert.doesNotMatch(res.stderr, /SSN-|P\d|D-\d/, 'no plaintext in the output');
    const saved = await checkpoints.findOne({ collection: 'interrupt' });
    assert.equal(saved.status, 'interrupted');
    const done = checkDocs(await coll.find().toArray(), expected, { final: false, context: 'after SIGINT' });
    assert.ok(done > 0 && done < 900, `part of the work was done (${done} of 900 values)`);
    // Documents up to the checkpoint are all done.
    const upTo = await coll.find({ _id: { $lte: saved.lastId } }).toArray();
    for (const doc of upTo) assert.ok(isEncrypted(doc.ssn), 'every document up to the checkpoint is encrypted');

    const resumed = await runCli([...args, '--resume', '--json', '--quiet'], { uri: t.uri });
    assert.equal(resumed.code, 0, resumed.stderr);
    const [c] = jsonOf(resumed).collections;
    assert.equal(c.documents, 300 - upTo.length, '--resume starts after the checkpoint');
    checkDocs(await coll.find().toArray(), expected, { final: true, context: 'after --resume' });
  });

  it('an application writing during the migration loses nothing', async () => {
    const { coll, expected } = await seed('concurrent', 300);
    const ids = (
      await coll
        .find({}, { projection: { i: 1 } })
        .sort({ _id: 1 })
        .toArray()
    ).map((d) => d._id);
    const batchSize = 20;
    const concurrency = 2;
    const args = [
      'encrypt',
      ...common(),
      '--collection',
      'concurrent',
      ...FIELD_ARGS,
      '--batch-size',
      String(batchSize),
      '--concurrency',
      String(concurrency),
      '--json',
      '--quiet',
    ];
    const checkpoints = t.db.collection('fieldcrypt_checkpoints');
    const run = spawnCli(args, { uri: t.uri });
    let finished = false;
    run.done.finally(() => (finished = true));
    const random = prng(1234);
    let writes = 0;
    // The application: plaintext writes (as an app without the plugin makes)
    // to target fields and to other fields. It writes to documents the
    // migration has read (its cursor reads ahead) but not yet updated, so its
    // compare-and-swap updates miss and retry. It keeps clear of the batches in
    // flight: FerretDB v1 (SQLite) does not apply two updates of one document
    // atomically (each reads a snapshot, then rewrites the whole document), so
    // there two overlapping writers can lose a write whatever the client does.
    const margin = (concurrency + 2) * batchSize;
    while (!finished && writes < 150) {
      const saved = await checkpoints.findOne({ collection: 'concurrent' });
      const done = saved && saved.lastId ? ids.findIndex((id) => id.equals(saved.lastId)) + 1 : 0;
      const from = done + margin;
      if (from >= ids.length) break;
      const i = from + Math.floor(random() * (ids.length - from));
      const want = expected.get(i);
      if (random() < 0.5) {
        want.ssn = `NEW-${i}-${writes}`;
        await coll.updateOne({ _id: ids[i] }, { $set: { ssn: want.ssn } });
      } else {
        want.note = `edited ${writes}`;
        want.ids[1].n = `DL-${i}-${writes}`;
        await coll.updateOne({ _id: ids[i] }, { $set: { note: want.note, 'ids.1.n': want.ids[1].n } });
      }
      writes++;
      await sleep(10);
    }
    const res = await run.done;
    assert.equal(res.code, 0, res.stderr);
    const [c] = jsonOf(res).collections;
    assert.ok(writes > 10, `the application wrote during the run (${writes} writes)`);
    assert.ok(
      c.conflicts > 0,
      `some compare-and-swap updates met a concurrent write and were retried (${c.conflicts})`,
    );
    checkDocs(await coll.find().toArray(), expected, {
      final: true,
      context: `concurrent writer (${writes} writes, ${c.conflicts} conflicts)`,
    });
    // Nothing is left for a rerun.
    const rerun = await runCli(args, { uri: t.uri });
    assert.equal(jsonOf(rerun).collections[0].updated, 0);
  });

  it('--partition i/3 in three parallel processes covers every document exactly once', async () => {
    const { coll, expected } = await seed('parts', 240);
    // Other _id types too: strings and numbers.
    for (let i = 240; i < 300; i++) {
      const doc = { _id: i % 2 ? `person-${i}` : i, ...person(i) };
      expected.set(i, person(i));
      await coll.insertOne(doc);
    }
    const runs = [0, 1, 2].map((p) =>
      runCli(
        [
          'encrypt',
          ...common(),
          '--collection',
          'parts',
          ...FIELD_ARGS,
          '--partition',
          `${p}/3`,
          '--batch-size',
          '20',
          '--json',
          '--quiet',
        ],
        { uri: t.uri },
      ),
    );
    const results = await Promise.all(runs);
    let documents = 0;
    let changed = 0;
    for (const r of results) {
      assert.equal(r.code, 0, r.stderr);
      const [c] = jsonOf(r).collections;
      assert.equal(c.scanned, 300, 'each partition scans every _id');
      assert.ok(c.documents > 50, `each partition gets a share (${c.documents})`);
      documents += c.documents;
      changed += c.perField.ssn.changed + c.perField['ids.n'].changed;
    }
    assert.equal(documents, 300, 'the partitions cover every document once');
    assert.equal(changed, 900, 'every value was encrypted by exactly one partition');
    checkDocs(await coll.find().toArray(), expected, { final: true, context: 'partitions' });
    const checkpoints = await t.db.collection('fieldcrypt_checkpoints').find({ collection: 'parts' }).toArray();
    assert.deepEqual(
      checkpoints.map((c) => c.status),
      ['done', 'done', 'done'],
      'one checkpoint per partition',
    );
  });
});
