#!/usr/bin/env node
'use strict';

/**
 * `npm run bench:cli`: the throughput of `fieldcrypt encrypt`'s loop against
 * the same loop without encryption.
 *
 * Two collections with the same N documents (a name and two string fields,
 * email and ssn). On one, the CLI's scan + compare-and-swap loop
 * (lib/cli/scan.js, with its checkpoint after every batch) encrypts both
 * fields; on the other, the very same loop writes an unencrypted transform
 * (the value plus a suffix). Same batch size, same concurrency. Rounds are
 * interleaved (order alternating), each on freshly seeded collections;
 * docs/s is N / seconds, and the ratio is encrypt / plain (medians).
 *
 * It also times the transform alone, without a database: what encrypting the
 * two fields of a document costs in CPU, to set against a server's per-update
 * cost.
 *
 * Server: MONGODB_URI when set; else the test harness's FerretDB v1 (SQLite).
 * On that server every update of one document scans the collection (it pushes
 * down nothing but a bare {_id} equality, and that one misses its index), so a
 * loop over N documents costs O(N^2): there the default N is 1,500, not
 * 100,000 (which would take hours for either loop).
 *
 *   --n=N            documents (default 100000 with MONGODB_URI, 1500 on the test FerretDB)
 *   --rounds=R       rounds (default 3)
 *   --batch-size=B   (default 500)   --concurrency=C (default 4)
 */

const fs = require('node:fs');
const path = require('node:path');

process.env.ENCRYPTION_KEY ??= '8c6f2a1e0d9b4c7a5e3f1b2d4a6c8e0f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d';

const { runScan } = require('../lib/cli/scan');
const { encryptTransform } = require('../lib/cli/values');
const { CheckpointStore } = require('../lib/cli/checkpoint');

function flags(argv = process.argv.slice(2)) {
  const out = {};
  for (const arg of argv) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(arg);
    if (m) out[m[1]] = m[2] === undefined ? true : m[2];
  }
  return out;
}

const FIELDS = ['email', 'ssn'];

function docData(i) {
  return {
    name: `Person ${i}`,
    email: `person.${i}@example.org`,
    ssn: `${String(100 + (i % 900)).padStart(3, '0')}-${String(i % 100).padStart(2, '0')}-${String(i).padStart(4, '0')}`,
  };
}

async function seed(coll, n) {
  await coll.drop().catch(() => {});
  for (let i = 0; i < n; i += 5000) {
    const docs = [];
    for (let j = i; j < Math.min(n, i + 5000); j++) docs.push(docData(j));
    await coll.insertMany(docs, { ordered: false });
  }
}

/** The unencrypted transform: same loop, same writes, the value plus a suffix. */
function plainTransform() {
  return (value) =>
    typeof value === 'string' && !value.endsWith('~')
      ? { kind: 'plaintext', action: 'change', value: `${value}~` }
      : { kind: 'plaintext', action: 'skip' };
}

async function timeLoop(db, collName, transform, opts, command) {
  const coll = db.collection(collName);
  const checkpoint = new CheckpointStore(db, { command, collection: collName, fields: FIELDS });
  await checkpoint.reset();
  const started = performance.now();
  const { totals } = await runScan({ coll, fields: FIELDS, transform, opts, checkpoint, stop: { requested: false } });
  const seconds = (performance.now() - started) / 1000;
  if (totals.updated !== totals.documents)
    throw new Error(`${command}: updated ${totals.updated} of ${totals.documents} documents`);
  return { seconds, docsPerSecond: totals.documents / seconds };
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

function cpuOnly(n) {
  const encrypt = encryptTransform({ dryRun: false });
  const plain = plainTransform();
  const docs = Array.from({ length: n }, (_, i) => docData(i));
  const time = (transform) => {
    const started = performance.now();
    for (const d of docs) for (const f of FIELDS) transform(d[f]);
    return (performance.now() - started) / 1000;
  };
  time(encrypt); // warm-up
  return { encrypt: time(encrypt), plain: time(plain) };
}

async function main() {
  const f = flags();
  let server;
  let uri = process.env.MONGODB_URI;
  let what = 'MONGODB_URI';
  if (!uri) {
    server = await require('../test/harness').startServer();
    uri = server.uri;
    what = 'FerretDB v1.24 (SQLite) from test/harness.js';
  }
  const n = Number(f.n || (server ? 1500 : 100_000));
  const rounds = Number(f.rounds || 3);
  const opts = {
    batchSize: Number(f['batch-size'] || 500),
    concurrency: Number(f.concurrency || 4),
    maxRetries: 10,
    dryRun: false,
  };
  const { MongoClient } = require('mongodb');
  const client = await MongoClient.connect(uri);
  const db = client.db('fieldcrypt_bench_cli');
  console.log(
    `fieldcrypt CLI throughput: ${n.toLocaleString('en-US')} documents x 2 string fields, batch size ${opts.batchSize}, concurrency ${opts.concurrency}, ${rounds} rounds`,
  );
  console.log(`server: ${what}; node ${process.version}`);
  const enc = [];
  const plain = [];
  try {
    await db.dropDatabase();
    for (let r = 0; r < rounds; r++) {
      await seed(db.collection('enc'), n);
      await seed(db.collection('plain'), n);
      const runEnc = async () =>
        enc.push(await timeLoop(db, 'enc', encryptTransform({ dryRun: false }), opts, 'encrypt'));
      const runPlain = async () => plain.push(await timeLoop(db, 'plain', plainTransform(), opts, 'plain'));
      if (r % 2) {
        await runPlain();
        await runEnc();
      } else {
        await runEnc();
        await runPlain();
      }
      console.log(
        `  round ${r + 1}: encrypt ${enc.at(-1).docsPerSecond.toFixed(0)} docs/s (${enc.at(-1).seconds.toFixed(1)} s), plain CAS loop ${plain.at(-1).docsPerSecond.toFixed(0)} docs/s (${plain.at(-1).seconds.toFixed(1)} s), ratio ${(enc.at(-1).docsPerSecond / plain.at(-1).docsPerSecond).toFixed(3)}`,
      );
    }
    await db.dropDatabase();
  } finally {
    await client.close();
    if (server) await server.stop();
  }
  const e = median(enc.map((x) => x.docsPerSecond));
  const p = median(plain.map((x) => x.docsPerSecond));
  console.log(
    `median: encrypt ${e.toFixed(0)} docs/s, plain ${p.toFixed(0)} docs/s, ratio ${(e / p).toFixed(3)} (target >= 0.8)`,
  );
  const cpuN = 100_000;
  const cpu = cpuOnly(cpuN);
  console.log(
    `transform alone, no database, ${cpuN.toLocaleString('en-US')} documents x 2 fields: encrypt ${cpu.encrypt.toFixed(2)} s (${((cpu.encrypt / cpuN) * 1e6).toFixed(2)} us/doc), plain ${cpu.plain.toFixed(2)} s`,
  );
  if (f.out)
    fs.writeFileSync(
      path.resolve(f.out),
      JSON.stringify({ n, rounds, opts, what, enc, plain, ratio: e / p, cpu }, null, 2),
    );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
