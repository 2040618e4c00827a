#!/usr/bin/env node
'use strict';

/**
 * `npm run bench:search` or `npm run bench -- search` (issue 20): an indexed lookup of one document among
 * N (default 100,000) by an encrypted searchable value, against the same
 * lookup by a plaintext indexed field, in the same run on the same server.
 * Target: within 1.3x.
 *
 * Two collections of the same N documents (docData: name, SSN, email, address): in one
 * `ssn` is encrypted and its blind index is in `ssn_bidx`, in the other `ssn`
 * is in clear; each has a unique index on the looked-up path. Variants, each
 * a lookup of a random existing document that returns its SSN in clear:
 *
 *   driver:   the raw driver; encrypted = blindIndexAll(indexInput(ssn)) and
 *             findOne({ ssn_bidx }) (with $in while two index-key versions are live), then decrypt(ssn); plain =
 *             findOne({ ssn }).
 *   driver, index precomputed: the same, with the index values computed
 *             before the timing (what the database side costs: longer
 *             documents and index keys, plus the decryption).
 *   mongoose: Model.findOne({ ssn }) through the fieldEncryption plugin with
 *             `searchable: true` against a model without encryption. Measured
 *             only when the plugin rewrites such a query (otherwise it
 *             refuses it: then reported as not measured).
 *
 * Rounds interleave the variants (encrypted and plain alternating, in turn
 * first); a round's figure is the median time of its lookups; reported are the
 * medians of the rounds, their ranges, and the ratio encrypted / plain
 * (median, and the range of the per-round ratios).
 *
 * Server: MONGODB_URI when set; else mongo-java-server from the test harness
 * (in-memory, loads 100,000 documents in seconds; FerretDB v1 on SQLite takes
 * minutes for that). Its unique indexes are real indexes (a lookup does not
 * scan), which is why the indexes here are unique.
 *
 *   --n=100000 / BENCH_SEARCH_N   documents
 *   --rounds=15                   rounds (after one warm-up round)
 *   --lookups=200                 lookups per variant per round
 *   --quick                       n=10,000, 5 rounds, 100 lookups
 *   --out=DIR                     where RESULTS-search.md goes (bench/, or bench/out/ for quick runs)
 */

const fs = require('node:fs');
const path = require('node:path');
const { summarize, median } = require('./runner');
const { machineInfo } = require('./report');

const INDEX_KEY = '0f1e2d3c4b5a69788796a5b4c3d2e1f00112233445566778899aabbccddeeff0';
const ENC_KEY = '8c6f2a1e0d9b4c7a5e3f1b2d4a6c8e0f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d';
process.env.ENCRYPTION_KEY = process.env.ENCRYPTION_KEY || ENC_KEY;
process.env.ENCRYPTION_INDEX_KEY = process.env.ENCRYPTION_INDEX_KEY || INDEX_KEY;

const fieldcrypt = require('..');
const { blindIndexAll, blindIndexMany } = require('../lib/core/blind-index');
const { indexInput } = require('../lib/core/index-input');

/** A minimal learner record (bench/mongoose.js docData --minimal): unique SSNs. */
function docData(i) {
  return {
    name: `Person ${i}`,
    ssn: `${String(100 + (i % 900)).padStart(3, '0')}-${String(i % 100).padStart(2, '0')}-${String(i).padStart(6, '0')}`,
    email: `person.${i}@example.org`,
    address: `${i} Example Street, Apartment ${i % 50}, Springfield, 12345`,
  };
}

function options(argv = process.argv.slice(2)) {
  const flags = {};
  for (const arg of argv) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(arg);
    if (m) flags[m[1]] = m[2] === undefined ? true : m[2];
  }
  const quick = Boolean(flags.quick);
  const n = Number(flags.n || process.env.BENCH_SEARCH_N || (quick ? 10_000 : 100_000));
  const custom = flags.n || process.env.BENCH_SEARCH_N || flags.rounds || flags.lookups;
  return {
    quick,
    n,
    rounds: Number(flags.rounds || (quick ? 5 : 15)),
    lookups: Number(flags.lookups || (quick ? 100 : 200)),
    outDir: flags.out ? path.resolve(flags.out) : quick || custom ? path.join(__dirname, 'out') : __dirname,
  };
}

async function startServer() {
  if (process.env.MONGODB_URI) return { uri: process.env.MONGODB_URI, what: 'MONGODB_URI', stop: async () => {} };
  const harness = require('../test/harness');
  const server = await harness.startServer({ kind: 'mongo-java-server' });
  return { uri: server.uri, what: 'mongo-java-server 1.46 (memory backend, test harness)', stop: server.stop };
}

/** Loads both collections with the same N documents; returns the SSNs in order. */
async function load(db, n) {
  const enc = db.collection('search_encrypted');
  const plain = db.collection('search_plain');
  await Promise.all([enc.deleteMany({}), plain.deleteMany({})]);
  const ssns = [];
  const CHUNK = 5000;
  for (let from = 0; from < n; from += CHUNK) {
    const docs = [];
    for (let i = from; i < Math.min(n, from + CHUNK); i++) docs.push({ _id: i, ...docData(i) });
    for (const d of docs) ssns.push(d.ssn);
    const stored = fieldcrypt.encryptMany(docs.map((d) => d.ssn));
    const indexes = blindIndexMany(
      docs.map((d) => indexInput(d.ssn)),
      { collection: 'search_encrypted', path: 'ssn' },
    );
    await enc.insertMany(docs.map((d, k) => ({ ...d, ssn: stored[k], ssn_bidx: indexes[k] })));
    await plain.insertMany(docs);
  }
  await enc.createIndex({ ssn_bidx: 1 }, { unique: true });
  await plain.createIndex({ ssn: 1 }, { unique: true });
  return ssns;
}

async function timeLookups(fn, picks) {
  const times = [];
  for (const ssn of picks) {
    const t0 = process.hrtime.bigint();
    const found = await fn(ssn);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    if (found !== ssn) throw new Error('lookup returned the wrong document');
  }
  return median(times);
}

/** The Mongoose variant, or the reason it cannot be measured yet. */
async function mongooseVariant(uri, dbName) {
  const mongoose = require('mongoose');
  const conn = await mongoose.createConnection(uri, { dbName }).asPromise();
  const encSchema = new mongoose.Schema(
    // _id: Number, as loaded (an ObjectId _id would fail to cast on every hydration, in both models).
    {
      _id: Number,
      name: String,
      ssn: { type: String, encrypted: true, searchable: true },
      email: String,
      address: String,
    },
    { collection: 'search_encrypted', autoIndex: false }, // the bench built the indexes
  );
  encSchema.plugin(fieldcrypt.fieldEncryption);
  const Enc = conn.model('SearchEncrypted', encSchema);
  const Plain = conn.model(
    'SearchPlain',
    new mongoose.Schema(
      { _id: Number, name: String, ssn: String, email: String, address: String },
      { collection: 'search_plain', autoIndex: false },
    ),
  );
  try {
    const probe = await Enc.findOne({ ssn: docData(0).ssn });
    if (!probe || probe.ssn !== docData(0).ssn) throw new Error('the encrypted lookup found nothing');
  } catch (err) {
    await conn.close();
    return { reason: `the plugin does not rewrite the query yet (${err.code || err.message})` };
  }
  return {
    encrypted: async (ssn) => (await Enc.findOne({ ssn })).ssn,
    plain: async (ssn) => (await Plain.findOne({ ssn })).ssn,
    close: () => conn.close(),
  };
}

async function main() {
  const o = options();
  const server = await startServer();
  const { MongoClient } = require('mongodb');
  const client = await MongoClient.connect(server.uri);
  const dbName = 'fieldcrypt_bench_search';
  const db = client.db(dbName);
  const started = performance.now();
  const ssns = await load(db, o.n);
  const loadSeconds = (performance.now() - started) / 1000;
  const enc = db.collection('search_encrypted');
  const plain = db.collection('search_plain');
  const where = { collection: 'search_encrypted', path: 'ssn' };
  const variants = {
    driver: {
      encrypted: async (ssn) => {
        // One live index-key version: an equality; during a rotation: $in over the live versions.
        const all = blindIndexAll(indexInput(ssn), where);
        const doc = await enc.findOne({ ssn_bidx: all.length === 1 ? all[0] : { $in: all } });
        return fieldcrypt.decrypt(doc.ssn);
      },
      plain: async (ssn) => (await plain.findOne({ ssn })).ssn,
    },
    'driver, index precomputed': {
      encrypted: async (ssn) => fieldcrypt.decrypt((await enc.findOne({ ssn_bidx: precomputed.get(ssn) })).ssn),
      plain: async (ssn) => (await plain.findOne({ ssn })).ssn,
      prepare: (picks) => {
        precomputed.clear();
        for (const ssn of picks) precomputed.set(ssn, blindIndexAll(indexInput(ssn), where)[0]);
      },
    },
  };
  const precomputed = new Map();
  const m = await mongooseVariant(server.uri, dbName);
  const notMeasured = {};
  if (m.reason) notMeasured.mongoose = m.reason;
  else variants.mongoose = m;

  const samples = {};
  for (const v of Object.keys(variants)) samples[v] = { encrypted: [], plain: [] };
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  for (let round = -1; round < o.rounds; round++) {
    for (const [name, fns] of Object.entries(variants)) {
      const picks = Array.from({ length: o.lookups }, () => ssns[Math.floor(random() * ssns.length)]);
      if (fns.prepare) fns.prepare(picks);
      const order = round % 2 ? ['encrypted', 'plain'] : ['plain', 'encrypted'];
      for (const which of order) {
        const ms = await timeLookups(fns[which], picks);
        if (round >= 0) samples[name][which].push(ms);
      }
    }
    if (round >= 0) process.stderr.write(`round ${round + 1}/${o.rounds}\n`);
  }
  // The index computation alone (indexInput + blindIndexAll), per lookup.
  const computeRounds = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < 5000; i++) blindIndexAll(indexInput(ssns[i % ssns.length]), where);
    computeRounds.push(Number(process.hrtime.bigint() - t0) / 5000 / 1000);
  }
  const results = {};
  for (const [name, s] of Object.entries(samples)) {
    const perRound = s.encrypted.map((x, r) => x / s.plain[r]);
    results[name] = {
      encrypted: summarize(s.encrypted),
      plain: summarize(s.plain),
      ratio: { value: median(s.encrypted) / median(s.plain), min: Math.min(...perRound), max: Math.max(...perRound) },
    };
  }
  if (variants.mongoose) await variants.mongoose.close();
  await db.dropDatabase();
  await client.close();
  await server.stop();
  const report = write(o, server.what, loadSeconds, results, notMeasured, summarize(computeRounds));
  process.stdout.write(report);
}

function write(o, serverWhat, loadSeconds, results, notMeasured, compute) {
  const f = (x) => x.toFixed(3);
  const lines = [
    '# Search benchmark (blind-index lookups)',
    '',
    `\`node bench/search.js\`${o.quick ? ' --quick' : ''}: one document among ${o.n.toLocaleString('en-US')} found by its SSN, encrypted (blind index in \`ssn_bidx\`) against plaintext, unique index on each; ${o.rounds} interleaved rounds of ${o.lookups} lookups per variant (after a warm-up round); a round's figure is its median lookup.`,
    '',
    `Server: ${serverWhat}; loading both collections took ${loadSeconds.toFixed(1)} s. ${new Date().toISOString().slice(0, 10)}.`,
    '',
    '| variant | encrypted, ms (median, range) | plaintext, ms (median, range) | encrypted ÷ plaintext (median, range of rounds) | target 1.3× |',
    '| :-- | --: | --: | --: | :-: |',
  ];
  for (const [name, r] of Object.entries(results)) {
    lines.push(
      `| ${name} | ${f(r.encrypted.median)} (${f(r.encrypted.min)}–${f(r.encrypted.max)}) | ${f(r.plain.median)} (${f(r.plain.min)}–${f(r.plain.max)}) | ${r.ratio.value.toFixed(2)}× (${r.ratio.min.toFixed(2)}–${r.ratio.max.toFixed(2)}) | ${r.ratio.value <= 1.3 ? 'met' : 'not met'} |`,
    );
  }
  for (const [name, reason] of Object.entries(notMeasured)) lines.push(`| ${name} | not measured: ${reason} | | | |`);
  lines.push(
    '',
    `Computing the index value of a lookup (indexInput + blindIndexAll, lib/core/blind-index.js as built): ${compute.median.toFixed(1)} µs median of 5 rounds of 5,000 (${compute.min.toFixed(1)}–${compute.max.toFixed(1)}).`,
  );
  const info = machineInfo();
  lines.push(
    '',
    `Machine: ${info.cpu}, ${info.cores} cores, Node ${info.node}, load average ${info.loadavg.join(' ')} at the end.`,
    '',
  );
  const text = lines.join('\n');
  fs.mkdirSync(o.outDir, { recursive: true });
  fs.writeFileSync(path.join(o.outDir, 'RESULTS-search.md'), text);
  return text;
}

module.exports = { main };

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
