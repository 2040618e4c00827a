'use strict';

// The CLI and signals (docs/cli.md): SIGTERM, like a first Ctrl-C, finishes
// the batches in flight, saves the checkpoint and exits 143 (128 + 15), and
// --resume continues after it; a second Ctrl-C exits at once (130). Each run
// is a child process (bin/fieldcrypt.js) on the test server.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnCli, runCli, jsonOf, openCliDatabase, sleep } = require('./cli-helpers');
const { decrypt, isEncrypted } = require('..');

const plaintextOf = (i) => `TERM-${i}-zz`;

describe('CLI signals', () => {
  let t;

  before(async () => {
    t = await openCliDatabase(__filename);
  });
  after(() => t && t.close());

  async function seed(name, n) {
    const docs = Array.from({ length: n }, (_, i) => ({ i, ssn: plaintextOf(i) }));
    await t.db.collection(name).insertMany(docs);
    return t.db.collection(name);
  }

  const argsFor = (name, batchSize) => [
    'encrypt',
    '--uri',
    t.uri,
    '--db',
    t.dbName,
    '--collection',
    name,
    '--field',
    'ssn',
    '--batch-size',
    String(batchSize),
    '--concurrency',
    '1',
    '--progress-interval',
    '1',
  ];

  /** Waits until the run has saved a checkpoint and is still running; false if it exited first. */
  async function runningWithCheckpoint(name, run) {
    let exited = false;
    run.done.finally(() => (exited = true));
    const checkpoints = t.db.collection('fieldcrypt_checkpoints');
    for (let i = 0; i < 800 && !exited; i++) {
      const saved = await checkpoints.findOne({ collection: name });
      if (saved && saved.lastId !== undefined && saved.status === 'running') return !exited;
      await sleep(10);
    }
    return false;
  }

  it('SIGTERM finishes the batches in flight, saves the checkpoint, exits 143; --resume completes', async () => {
    const coll = await seed('term', 300);
    const args = argsFor('term', 10);
    const run = spawnCli(args, { uri: t.uri });
    assert.ok(await runningWithCheckpoint('term', run), 'the run was still going after its first checkpoint');
    run.child.kill('SIGTERM');
    const res = await run.done;
    assert.equal(res.signal, null, `handled, not killed by the signal: ${res.stderr}`);
    assert.equal(res.code, 143, res.stderr);
    assert.match(res.stderr, /SIGTERM: finishing the batches in flight and saving the checkpoint/);
    assert.match(
      res.stderr,
      /interrupted; the checkpoint is saved\. Continue with:\n {2}fieldcrypt encrypt .* --resume\n/,
    );
    const saved = await t.db.collection('fieldcrypt_checkpoints').findOne({ collection: 'term' });
    assert.equal(saved.status, 'interrupted');
    const upTo = await coll.find({ _id: { $lte: saved.lastId } }).toArray();
    assert.ok(upTo.length > 0 && upTo.length < 300, `part of the work was done (${upTo.length} of 300)`);
    for (const doc of upTo) assert.equal(decrypt(doc.ssn), plaintextOf(doc.i), 'done up to the checkpoint');

    const resumed = await runCli([...args, '--resume', '--json', '--quiet'], { uri: t.uri });
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /resuming after _id/);
    assert.equal(jsonOf(resumed).collections[0].documents, 300 - upTo.length, '--resume starts after the checkpoint');
    for (const doc of await coll.find().toArray()) {
      assert.ok(isEncrypted(doc.ssn), `doc ${doc.i} encrypted`);
      assert.equal(decrypt(doc.ssn), plaintextOf(doc.i), `doc ${doc.i} encrypted exactly once`);
    }
  });

  it('a second Ctrl-C (SIGINT) exits at once with 130', async () => {
    // The second signal has to arrive while the batches in flight finish:
    // large batches make that take a while; a run that finished first is retried.
    for (const [attempt, batchSize] of [200, 500, 1000].entries()) {
      const name = `again${attempt}`;
      await seed(name, 3000);
      const run = spawnCli(argsFor(name, batchSize), { uri: t.uri });
      if (!(await runningWithCheckpoint(name, run))) {
        await run.done;
        continue;
      }
      run.child.kill('SIGINT');
      for (let i = 0; i < 500 && !/SIGINT: finishing/.test(run.output().stderr); i++) await sleep(2);
      run.child.kill('SIGINT');
      const res = await run.done;
      if (!/again: exiting now/.test(res.stderr) && /interrupted; the checkpoint is saved/.test(res.stderr)) {
        // The batches in flight were done before the second signal came.
        assert.equal(res.code, 130, res.stderr);
        continue;
      }
      assert.equal(res.signal, null, res.stderr);
      assert.equal(res.code, 130, res.stderr);
      assert.match(res.stderr, /SIGINT: finishing the batches in flight/);
      assert.match(
        res.stderr,
        /SIGINT again: exiting now \(safe: every write is a compare-and-swap; rerun with --resume\)/,
      );
      assert.doesNotMatch(res.stderr, /interrupted; the checkpoint is saved/, 'it did not wait for the batches');
      return;
    }
    assert.fail('in 3 runs, a second SIGINT during the batches in flight never made the CLI exit at once');
  });
});
