#!/usr/bin/env node
'use strict';

/**
 * The `fieldEncryption` plugin's part of `npm run bench:mongoose`: what the
 * plugin's write and read paths cost beyond what the longer stored values
 * cost, compared with what decrypting those values costs on its own.
 *
 * Three models with the schema `{ name, ssn, email, address, n }`: plain;
 * "same size" (the three strings stored in clear, padded to the length of
 * their stored values, 2n + 69 characters); and "plugin" (the three strings
 * encrypted by the plugin). In each round, the models taking turns (the
 * order rotating each turn, so that a shared machine's drift falls on all
 * alike), each model
 *
 *   insertMany: inserts N documents into an emptied collection;
 *   find:       `find({})`, hydrated;
 *   lean:       `find({}).lean()`;
 *   cursor:     `find({}).cursor()`, every document;
 *   findOne:    `findOne({ _id })` for FIND_ONE_IDS documents;
 *
 * and `decrypt` is the pure decryption of the plugin collection's 3 × N
 * stored values (read raw from the driver, untimed), `decrypt()` in a loop,
 * timed in the same turns. Reads are repeated READ_REPEATS times per round
 * (the mean is the round's time). The figure the plugin is judged by:
 * (plugin − same size) ÷ decrypt, per read, from the medians and per round.
 * Each timing also records this process's CPU time (process.cpuUsage(), all
 * its threads): the same figure in CPU time leaves out the server's own work
 * and the time spent waiting for a core, which on a shared machine swamp
 * the wall-clock difference of a few milliseconds.
 *
 * Server: MONGODB_URI when set; else test/harness.js's mongo-java-server
 * (in-memory: the server's own cost is small and steady).
 *
 *   --n=1000 / BENCH_MONGOOSE_N      documents per round
 *   --rounds=10 / BENCH_ROUNDS       rounds (after one warm-up round)
 *   --quick / BENCH_QUICK=1          n=200, 3 rounds
 *   --out=DIR / BENCH_OUT            where RESULTS-mongoose.md is (its plugin section is replaced)
 */

const fs = require('node:fs');
const path = require('node:path');
const { KEY_HEX } = require('./impls');
const { summarize, median } = require('./runner');
const { machineInfo } = require('./report');
const { options } = require('./mongoose');
const { STORED_HEADER } = require('../lib/core/limits');

const FIELDS = ['ssn', 'email', 'address'];
const READ_REPEATS = 5;
const FIND_ONE_IDS = 50;
const READS = ['find', 'lean', 'cursor', 'findOne'];
const PHASES = ['insertMany', ...READS];
const storedLength = (n) => 2 * n + STORED_HEADER;
const SECTION = '## The fieldEncryption plugin';

function docData(i) {
  return {
    name: `Person ${i}`,
    ssn: `${String(100 + (i % 900)).padStart(3, '0')}-${String(i % 100).padStart(2, '0')}-${String(i).padStart(4, '0')}`,
    email: `person.${i}@example.org`,
    address: `${i} Example Street, Apartment ${i % 50}, Springfield, 12345`,
    n: i,
  };
}

function models(mongoose, connection, fc) {
  const { Schema } = mongoose;
  const shape = () => ({ name: String, ssn: String, email: String, address: String, n: Number });
  const enc = new Schema(shape());
  enc.plugin(fc.fieldEncryption, { fields: FIELDS });
  return [
    { id: 'plain', model: connection.model('BenchPluginPlain', new Schema(shape())) },
    {
      id: 'padded',
      model: connection.model('BenchPluginPadded', new Schema(shape())),
      prepare: (d) => {
        for (const f of FIELDS) d[f] = d[f].padEnd(storedLength(d[f].length), '~');
        return d;
      },
    },
    { id: 'plugin', model: connection.model('BenchPluginEncrypted', enc) },
  ];
}

const seconds = (start) => Number(process.hrtime.bigint() - start) / 1e9;
const cpuSeconds = (start) => {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1e6;
};
const rotate = (list, k) => [...list.slice(k % list.length), ...list.slice(0, k % list.length)];

/** Each read: resolves to the number of documents it read. */
const readers = {
  find: async (m) => (await m.model.find({})).length,
  lean: async (m) => (await m.model.find({}).lean()).length,
  cursor: async (m) => {
    let count = 0;
    for await (const doc of m.model.find({}).cursor()) if (doc) count++;
    return count;
  },
  findOne: async (m) => {
    let count = 0;
    for (const id of m.ids) if (await m.model.findOne({ _id: id })) count++;
    return count;
  },
};

async function round(order, n, fc) {
  const res = {};
  for (const m of order) {
    await m.model.deleteMany({});
    res[m.id] = Object.fromEntries(PHASES.map((p) => [p, 0]));
  }
  for (const m of rotate(order, 0)) {
    const docs = [];
    for (let i = 0; i < n; i++) docs.push(m.prepare ? m.prepare(docData(i)) : docData(i));
    const t = process.hrtime.bigint();
    await m.model.insertMany(docs);
    res[m.id].insertMany = seconds(t);
    const step = Math.max(1, Math.floor(n / FIND_ONE_IDS));
    m.ids = (await m.model.find({}, { _id: 1 }).lean()).filter((_, i) => i % step === 0).map((d) => d._id);
  }
  // The plugin collection's stored values, for the pure decryption.
  const plugin = order.find((m) => m.id === 'plugin');
  const stored = [];
  for (const raw of await plugin.model.collection.find({}).toArray()) for (const f of FIELDS) stored.push(raw[f]);
  const ones = (FIND_ONE_IDS / n) * stored.length;
  res.decrypt = Object.fromEntries(READS.map((p) => [p, 0]));
  // The same timings in this process's CPU time.
  res.cpu = Object.fromEntries(['plain', 'padded', 'plugin', 'decrypt'].map((id) => [id, {}]));
  for (const id of Object.keys(res.cpu)) for (const p of READS) res.cpu[id][p] = 0;

  for (let k = 0; k < READ_REPEATS; k++) {
    for (const read of READS) {
      for (const m of rotate(order, k)) {
        const c = process.cpuUsage();
        const t = process.hrtime.bigint();
        const count = await readers[read](m);
        res[m.id][read] += seconds(t) / READ_REPEATS;
        res.cpu[m.id][read] += cpuSeconds(c) / READ_REPEATS;
        const want = read === 'findOne' ? m.ids.length : n;
        if (count !== want) throw new Error(`${m.id} ${read}: read ${count} documents, expected ${want}`);
      }
      // The same values decrypted one by one, in the same turn.
      const c = process.cpuUsage();
      const t = process.hrtime.bigint();
      let chars = 0;
      const count = read === 'findOne' ? Math.round(ones) : stored.length;
      for (let i = 0; i < count; i++) chars += fc.decrypt(stored[i]).length;
      res.decrypt[read] += seconds(t) / READ_REPEATS;
      res.cpu.decrypt[read] += cpuSeconds(c) / READ_REPEATS;
      if (chars === 0) throw new Error('nothing decrypted');
    }
  }

  // Untimed checks: the plugin stored ciphertext and reads back the values.
  const first = await plugin.model.findOne({ n: 0 }).lean();
  for (const f of FIELDS) if (first[f] !== docData(0)[f]) throw new Error(`plugin: ${f} reads back wrong`);
  const raw = await plugin.model.collection.findOne({ n: 0 });
  for (const f of FIELDS) if (!fc.isEncrypted(raw[f])) throw new Error(`plugin: ${f} stored in clear`);
  return res;
}

const ms = (s) => (s * 1000).toFixed(2);
const cell = (s) => `${ms(s.median)} (${ms(s.min)}–${ms(s.max)})`;

/** (plugin − same size) ÷ decrypt from the medians, with its per-round range. */
function excess(times, read) {
  const perRound = times.plugin[read].map((p, r) => (p - times.padded[read][r]) / times.decrypt[read][r]);
  const value = (median(times.plugin[read]) - median(times.padded[read])) / median(times.decrypt[read]);
  return { value, min: Math.min(...perRound), max: Math.max(...perRound), median: median(perRound) };
}

async function connectServer() {
  if (process.env.MONGODB_URI) return { uri: process.env.MONGODB_URI, what: 'MONGODB_URI', stop: async () => {} };
  const harness = require(path.join(__dirname, '..', 'test', 'harness.js'));
  const server = await harness.startServer({ kind: 'mongo-java-server' });
  return { uri: server.uri, what: 'mongo-java-server from test/harness.js (in-memory)', stop: server.stop };
}

async function main() {
  const opts = options(10);
  const fc = require('..');
  fc.configureKeys({ '01': KEY_HEX });
  const mongoose = require('mongoose');
  const started = new Date();
  const server = await connectServer();
  process.stderr.write(
    `bench:mongoose (plugin): ${server.what}; Mongoose ${mongoose.version}; N=${opts.n}, ${opts.rounds} rounds + 1 warm-up\n`,
  );
  const connection = await mongoose
    .createConnection(server.uri, { dbName: 'fieldcrypt_bench_plugin', serverSelectionTimeoutMS: 15000 })
    .asPromise();
  const order = models(mongoose, connection, fc);
  const times = { plain: {}, padded: {}, plugin: {}, decrypt: {} };
  for (const id of Object.keys(times)) for (const p of PHASES) times[id][p] = [];
  const cpu = { plain: {}, padded: {}, plugin: {}, decrypt: {} };
  for (const id of Object.keys(cpu)) for (const p of READS) cpu[id][p] = [];
  try {
    await connection.dropDatabase();
    for (let r = 0; r <= opts.rounds; r++) {
      const res = await round(rotate(order, r), opts.n, fc);
      if (r === 0) continue; // warm-up
      for (const id of Object.keys(times))
        for (const p of PHASES) if (res[id][p] !== undefined) times[id][p].push(res[id][p]);
      for (const id of Object.keys(cpu)) for (const p of READS) cpu[id][p].push(res.cpu[id][p]);
      process.stderr.write(
        `  round ${r}: ${READS.map((p) => `${p} ${['plain', 'padded', 'plugin', 'decrypt'].map((id) => ms(res[id][p])).join(' / ')}`).join(', ')} ms\n`,
      );
    }
    await connection.dropDatabase();
  } finally {
    await connection.close();
    await server.stop();
  }

  const lines = [];
  lines.push(
    '| operation | plain, ms | same size, ms | plugin, ms | decryption alone, ms | (plugin − same size) ÷ decryption (per round) |',
    '| :-- | --: | --: | --: | --: | --: |',
  );
  for (const p of PHASES) {
    const s = (id) => (times[id][p].length ? cell(summarize(times[id][p])) : '–');
    let ratioCell = '–';
    if (READS.includes(p)) {
      const e = excess(times, p);
      ratioCell = `**${e.value.toFixed(2)}** (${e.min.toFixed(2)}–${e.max.toFixed(2)})`;
    }
    lines.push(`| ${p} | ${s('plain')} | ${s('padded')} | **${s('plugin')}** | ${s('decrypt')} | ${ratioCell} |`);
  }
  const cpuLines = [
    '| operation | plain, CPU ms | same size, CPU ms | plugin, CPU ms | decryption alone, CPU ms | (plugin − same size) ÷ decryption (per round) |',
    '| :-- | --: | --: | --: | --: | --: |',
  ];
  for (const p of READS) {
    const s = (id) => cell(summarize(cpu[id][p]));
    const e = excess(cpu, p);
    cpuLines.push(
      `| ${p} | ${s('plain')} | ${s('padded')} | **${s('plugin')}** | ${s('decrypt')} | **${e.value.toFixed(2)}** (${e.min.toFixed(2)}–${e.max.toFixed(2)}) |`,
    );
  }
  process.stdout.write(`\n${lines.join('\n')}\n\nCPU time of this process:\n${cpuLines.join('\n')}\n`);

  const m = machineInfo();
  const section = [
    SECTION,
    '',
    `Generated by \`npm run bench:mongoose\`${opts.quick ? ' (quick smoke run)' : ''} on ${started.toISOString().replace(/\.\d+Z$/, 'Z')};`,
    `${m.cpu}, ${m.cores} cores; Node ${m.node}; Mongoose ${mongoose.version}. Server: ${server.what}.`,
    `N=${opts.n} documents \`{ name, ssn, email, address, n }\`, median of ${opts.rounds} rounds after a warm-up (min–max over rounds).`,
    '',
    'Models: **plain**; **same size** (ssn, email, address stored in clear, padded to the length of their stored values);',
    '**plugin** (the three strings encrypted by the `fieldEncryption` plugin). Per round: `insertMany` of N documents; then,',
    `${READ_REPEATS} times each (the mean is the round's time), the models taking turns in a rotating order: \`find({})\` (hydrated),`,
    `\`find({}).lean()\`, a cursor over \`find({})\`, and \`findOne({ _id })\` for ${FIND_ONE_IDS} documents. **Decryption alone** is`,
    '`decrypt()` in a loop over the same stored values (3 per document read), timed in the same turn.',
    '',
    'The last column is what the plugin costs beyond the longer values, in units of the decryption it does: (plugin − same size) ÷',
    'decryption alone, from the medians; in brackets its range over the rounds (a single round is noisy: the server shares the two cores).',
    '',
    ...lines,
    '',
    "The same reads in CPU time of the benchmark's process (`process.cpuUsage()`, all its threads, so the collector's",
    "helpers too): this leaves out the server's own work and the waits for a core, which on a shared machine are most of",
    'the wall-clock noise.',
    '',
    ...cpuLines,
    '',
  ].join('\n');
  // The section goes at the end of RESULTS-mongoose.md (bench/mongoose.js writes the rest), replacing an older one.
  fs.mkdirSync(opts.outDir, { recursive: true });
  const file = path.join(opts.outDir, 'RESULTS-mongoose.md');
  const before = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '# fieldcrypt Mongoose benchmark\n';
  const at = before.indexOf(SECTION);
  fs.writeFileSync(file, `${(at < 0 ? before : before.slice(0, at)).trimEnd()}\n\n${section}`);
  process.stderr.write(`wrote ${path.relative(process.cwd(), file)}\n`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

module.exports = { main, docData };
