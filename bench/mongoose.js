#!/usr/bin/env node
'use strict';

/**
 * `npm run bench:mongoose` (or `npm run bench -- mongoose`): what field
 * encryption costs a Mongoose app end to end, on a real MongoDB-compatible
 * server.
 *
 * Three models with the same schema (a learner record, see docData, with
 * three String fields ssn, email, address); on one of them the three fields are encrypted with
 * `encryptFieldIfModified` pre-save hooks and read back with
 * `createDecryptMethod` methods; on another ("same size") they are stored in
 * clear but padded to the length their stored values would have (2n + 69
 * characters), a control that separates what the longer values cost from
 * what the encryption costs. In each round each model
 *
 *   save: saves N new documents one by one with doc.save(), into an emptied
 *         collection, SAVE_CHUNK at a time, the models taking turns;
 *   find: finds all N (hydrated documents);
 *   read: the same find, plus reading the three fields of the documents it
 *         found: decrypted through the methods, or plainly.
 *   (The find is repeated 10 times, the models taking turns; the mean is
 *   the round's time.)
 *
 * find's overhead is what the larger stored values cost (hex ciphertext is
 * over twice as long as the text); read minus find is the decryption.
 *
 * Overhead = encrypted (or same size) time / plain time - 1, from the medians
 * (and per round).
 *
 * Server: MONGODB_URI when set; else the test harness's FerretDB
 * (test/harness.js startServer(), which builds it on first use).
 *
 *   --minimal                        documents of just a name and the three fields
 *   --n=1000 / BENCH_MONGOOSE_N      documents per round
 *   --rounds=9 / BENCH_ROUNDS        rounds (after one warm-up round)
 *   --quick / BENCH_QUICK=1          n=200, 3 rounds
 *   --out=DIR / BENCH_OUT            where RESULTS-mongoose.md goes (bench/, or bench/out/ for quick runs)
 */

const fs = require('node:fs');
const path = require('node:path');
const { KEY_HEX } = require('./impls');
const { summarize, ratio, median } = require('./runner');
const { machineInfo } = require('./report');
const { STORED_HEADER } = require('../lib/core/limits');

const FIELDS = ['ssn', 'email', 'address'];
const MINIMAL = process.argv.includes('--minimal');
const FIND_REPEATS = 10;

/** The command line and environment of the Mongoose benchmarks (this file and mongoose-plugin.js). */
function options(defaultRounds = 9, argv = process.argv.slice(2), env = process.env) {
  const flags = {};
  for (const arg of argv) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(arg);
    if (m) flags[m[1]] = m[2] === undefined ? true : m[2];
  }
  const quick =
    Boolean(flags.quick) || (env.BENCH_QUICK !== undefined && env.BENCH_QUICK !== '' && env.BENCH_QUICK !== '0');
  const n = Number(flags.n || env.BENCH_MONGOOSE_N || (quick ? 200 : 1000));
  const rounds = Number(flags.rounds || env.BENCH_ROUNDS || (quick ? 3 : defaultRounds));
  const custom = flags.n || env.BENCH_MONGOOSE_N || flags.rounds || env.BENCH_ROUNDS;
  const out = flags.out || env.BENCH_OUT;
  return {
    quick,
    n,
    rounds,
    outDir: out ? path.resolve(out) : quick || custom ? path.join(__dirname, 'out') : __dirname,
  };
}

/**
 * A learner record as the apps we serve store it: identity, contact,
 * enrollment and a few flags in clear, plus the three encrypted values
 * (SSN, email, address). With `--minimal` only `name` and the three
 * encrypted fields (the worst case: almost the whole document encrypted).
 */
function docData(i, minimal = MINIMAL) {
  const doc = {
    name: `Person ${i}`,
    ssn: `${String(100 + (i % 900)).padStart(3, '0')}-${String(i % 100).padStart(2, '0')}-${String(i).padStart(4, '0')}`,
    email: `person.${i}@example.org`,
    address: `${i} Example Street, Apartment ${i % 50}, Springfield, 12345`,
  };
  if (minimal) return doc;
  return {
    ...doc,
    profile: {
      firstName: `Given${i}`,
      lastName: `Family${i % 977}`,
      preferredName: i % 3 ? '' : `Nick${i}`,
      dateOfBirth: new Date(Date.UTC(1990 + (i % 20), i % 12, 1 + (i % 28))),
      phone: `+1-555-${String(i % 10000).padStart(4, '0')}`,
      language: ['en', 'es', 'fr', 'de'][i % 4],
    },
    enrollment: {
      program: ['Nursing', 'Computer Science', 'Welding', 'Accounting'][i % 4],
      cohort: `2026-${(i % 3) + 1}`,
      startDate: new Date(Date.UTC(2026, i % 12, 1)),
      status: ['active', 'deferred', 'graduated'][i % 3],
      advisor: `Advisor ${i % 40}`,
      credits: (i % 120) + 0.5,
    },
    flags: { ferpaRelease: i % 2 === 0, financialAid: i % 5 === 0, international: i % 7 === 0 },
    notes: `Enrolled via partner college ${i % 30}; transcript received.`,
  };
}

async function connectServer() {
  const harnessPath = path.join(__dirname, '..', 'test', 'harness.js');
  if (process.env.MONGODB_URI) return { uri: process.env.MONGODB_URI, what: 'MONGODB_URI', stop: async () => {} };
  if (!fs.existsSync(harnessPath)) {
    throw new Error(
      'set MONGODB_URI to a MongoDB-compatible server (test/harness.js, which starts FerretDB, is not there)',
    );
  }
  const harness = require(harnessPath);
  const server = await harness.startServer();
  return {
    uri: server.uri,
    what: 'FerretDB from test/harness.js (SQLite backend)',
    stop: server.stop,
    bin: harness.FERRETDB_BIN,
  };
}

/** The stored length of an ASCII value of `n` characters, and back. */
const storedLength = (n) => 2 * n + STORED_HEADER;
const textLength = (stored) => (stored - STORED_HEADER) / 2;

function models(mongoose, connection, fc) {
  const { Schema } = mongoose;
  const shape = { name: String, ssn: String, email: String, address: String };
  if (!MINIMAL) {
    Object.assign(shape, {
      profile: {
        firstName: String,
        lastName: String,
        preferredName: String,
        dateOfBirth: Date,
        phone: String,
        language: String,
      },
      enrollment: {
        program: String,
        cohort: String,
        startDate: Date,
        status: String,
        advisor: String,
        credits: Number,
      },
      flags: { ferpaRelease: Boolean, financialAid: Boolean, international: Boolean },
      notes: String,
    });
  }

  const PlainSchema = new Schema(shape);
  const PaddedSchema = new Schema(shape);
  const EncSchema = new Schema(shape);
  for (const f of FIELDS) {
    EncSchema.pre('save', fc.encryptFieldIfModified(f));
    EncSchema.methods[`get${f[0].toUpperCase()}${f.slice(1)}`] = fc.createDecryptMethod(f);
  }
  return {
    plain: {
      id: 'plain',
      model: connection.model('BenchPlain', PlainSchema),
      read: (doc) => [doc.ssn, doc.email, doc.address],
    },
    padded: {
      id: 'padded',
      model: connection.model('BenchPadded', PaddedSchema),
      // docData's fields are ASCII, so the original length follows from the padded one.
      prepare: (data) => {
        for (const f of FIELDS) data[f] = data[f].padEnd(storedLength(data[f].length), '~');
        return data;
      },
      read: (doc) => [doc.ssn, doc.email, doc.address].map((v) => v.slice(0, textLength(v.length))),
    },
    encrypted: {
      id: 'encrypted',
      model: connection.model('BenchEncrypted', EncSchema),
      read: (doc) => [doc.getSsn(), doc.getEmail(), doc.getAddress()],
    },
  };
}

const seconds = (start) => Number(process.hrtime.bigint() - start) / 1e9;

/** Documents each model saves before the next model's turn (see round). */
const SAVE_CHUNK = 25;

/** `list` rotated left by `k`. */
const rotate = (list, k) => [...list.slice(k % list.length), ...list.slice(0, k % list.length)];

/**
 * One round for all the models, interleaved finely: each model saves
 * SAVE_CHUNK documents in turn (the order rotating every chunk) until each
 * has saved N, then each runs one find (and reads the fields of what it
 * found) in turn, FIND_REPEATS times. On a shared host the speed drifts
 * over seconds; a round that gave each model a block of its own (a second
 * of saves, then its finds) measured per-round ratios between the models
 * from -30% to +60%. Turns of 25-200 ms put every model through the same
 * drift.
 */
async function round(order, n, fc) {
  const res = {};
  for (const m of order) {
    await m.model.deleteMany({});
    res[m.id] = { save: 0, find: 0, read: 0, chars: 0 };
  }
  for (let from = 0, c = 0; from < n; from += SAVE_CHUNK, c++) {
    const to = Math.min(from + SAVE_CHUNK, n);
    for (const m of rotate(order, c)) {
      const t = process.hrtime.bigint();
      for (let i = from; i < to; i++) await new m.model(m.prepare ? m.prepare(docData(i)) : docData(i)).save();
      res[m.id].save += seconds(t);
    }
  }

  // Finds are much quicker than the saves: repeat them to time something
  // measurable. Each find's documents are then read, timed on their own:
  // `read` is the find plus the reading.
  const docs = {};
  for (let k = 0; k < FIND_REPEATS; k++) {
    for (const m of rotate(order, k)) {
      const t = process.hrtime.bigint();
      docs[m.id] = await m.model.find({});
      const found = seconds(t);
      for (const doc of docs[m.id]) for (const v of m.read(doc)) res[m.id].chars += v.length;
      res[m.id].find += found / FIND_REPEATS;
      res[m.id].read += seconds(t) / FIND_REPEATS;
    }
  }

  // Check (untimed) that the run did what it claims.
  for (const m of order) {
    if (docs[m.id].length !== n) throw new Error(`${m.id}: found ${docs[m.id].length} documents, saved ${n}`);
    const byName = new Map(docs[m.id].map((d) => [d.name, m.read(d)]));
    for (const i of [0, n - 1]) {
      const want = docData(i);
      if (String(byName.get(want.name)) !== String(FIELDS.map((f) => want[f])))
        throw new Error(`${m.id}: document ${i} reads back wrong`);
    }
    const raw = await m.model.collection.findOne({ name: docData(0).name });
    for (const f of FIELDS) {
      if (fc.isEncrypted(raw[f]) !== (m.id === 'encrypted'))
        throw new Error(`${m.id}: ${f} stored ${m.id === 'encrypted' ? 'in clear' : 'encrypted'}`);
      if (m.id !== 'plain' && raw[f].length !== storedLength(docData(0)[f].length))
        throw new Error(`${m.id}: ${f} is not of the stored length`);
    }
  }
  return res;
}

/**
 * A 95% interval for median(a) ÷ median(b) − 1, by a paired bootstrap: the
 * 2.5th and 97.5th percentiles over RESAMPLES resamplings of the rounds (a
 * round's times stay together). The seed is fixed, so the same samples give
 * the same interval.
 */
const RESAMPLES = 2000;
function interval(a, b) {
  let seed = 0x2545f491;
  const rand = () => {
    // mulberry32
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const n = a.length;
  const ra = new Array(n);
  const rb = new Array(n);
  const out = [];
  for (let k = 0; k < RESAMPLES; k++) {
    for (let i = 0; i < n; i++) {
      const j = Math.floor(rand() * n);
      ra[i] = a[j];
      rb[i] = b[j];
    }
    out.push(median(ra) / median(rb) - 1);
  }
  out.sort((x, y) => x - y);
  return { low: out[Math.floor(0.025 * RESAMPLES)], high: out[Math.ceil(0.975 * RESAMPLES) - 1] };
}

function pct(x) {
  return `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)}%`;
}

/** An overhead's 95% interval, "low to high". */
function span(o) {
  return `${pct(o.low)} to ${pct(o.high)}`;
}

/** An overhead's 95% interval and per-round range, "low to high; min to max". */
function spans(o) {
  return `${span(o)}; ${pct(o.min)} to ${pct(o.max)}`;
}

async function main() {
  const opts = options();
  const fc = require('..');
  fc.configureKeys({ '01': KEY_HEX });
  const mongoose = require('mongoose');
  const started = new Date();

  const server = await connectServer();
  process.stderr.write(
    `bench:mongoose: ${server.what}; Mongoose ${mongoose.version}; N=${opts.n}, ${opts.rounds} rounds + 1 warm-up\n`,
  );
  const connection = await mongoose
    .createConnection(server.uri, { dbName: 'fieldcrypt_bench', serverSelectionTimeoutMS: 15000 })
    .asPromise();
  let serverVersion = 'unknown';
  try {
    const info = await connection.db.admin().command({ buildInfo: 1 });
    serverVersion = info.version;
    if (info.ferretdbVersion !== undefined) {
      // The embedded FerretDB of the test harness reports "unknown"; its binary's path names the version.
      let v = info.ferretdbVersion;
      if (v === 'unknown' && server.bin) v = (/ferretdb-(v[\d.]+)/.exec(server.bin) || [])[1] || v;
      serverVersion = `FerretDB ${v} (reports MongoDB ${info.version})`;
    }
  } catch {
    // not essential
  }

  const ms = models(mongoose, connection, fc);
  const order = [ms.plain, ms.padded, ms.encrypted];
  const PHASES = ['save', 'find', 'read'];
  const times = { plain: {}, padded: {}, encrypted: {} };
  for (const id of Object.keys(times)) for (const phase of PHASES) times[id][phase] = [];
  try {
    await connection.dropDatabase();
    for (let r = 0; r <= opts.rounds; r++) {
      const res = await round(rotate(order, r), opts.n, fc);
      if (r > 0) {
        // Round 0 is the warm-up.
        for (const m of order) for (const phase of PHASES) times[m.id][phase].push(res[m.id][phase]);
        const last = (id, phase) => times[id][phase][r - 1];
        process.stderr.write(
          `  round ${r}: ` +
            PHASES.map((ph) => `${ph} ${order.map((m) => (last(m.id, ph) * 1000).toFixed(0)).join(' / ')} ms`).join(
              ', ',
            ) +
            ' (plain / same size / encrypted)\n',
        );
      }
    }
    await connection.dropDatabase();
  } finally {
    await connection.close();
    await server.stop();
  }

  // Rates, so that "higher is better" like everywhere else; overhead from times.
  const overhead = (a, b) => {
    const r = ratio(a, b);
    return { value: r.value - 1, min: r.min - 1, max: r.max - 1 };
  };
  const rows = PHASES.map((phase) => {
    const plain = summarize(times.plain[phase]);
    const padded = summarize(times.padded[phase]);
    const enc = summarize(times.encrypted[phase]);
    return {
      phase,
      plain,
      padded,
      enc,
      overhead: { ...overhead(enc, plain), ...interval(times.encrypted[phase], times.plain[phase]) },
      sizeOverhead: { ...overhead(padded, plain), ...interval(times.padded[phase], times.plain[phase]) },
    };
  });

  const descr = {
    save: `save ${opts.n} documents one by one (doc.save(), 3 fields encrypted by pre-save hooks)`,
    find: `\`find({})\` all ${opts.n} documents (hydrated); done ${FIND_REPEATS} times per round, the mean is the round's time`,
    read: `each of those finds plus reading the 3 fields of every document it found (decrypted by the createDecryptMethod methods; plain reads on the plain model, the padding cut off on the same-size one)`,
  };
  let text = `\nMongoose ${mongoose.version} on ${serverVersion}, N=${opts.n}, median of ${opts.rounds} rounds (min–max), ms\n`;
  text += `${'phase'.padEnd(8)}${'plain'.padEnd(22)}${'same size'.padEnd(22)}${'encrypted'.padEnd(22)}${'same size ÷ plain (95%)'.padEnd(34)}encrypted ÷ plain (95%; per-round range)\n`;
  for (const row of rows) {
    const cell = (s) => `${(s.median * 1000).toFixed(1)} (${(s.min * 1000).toFixed(0)}–${(s.max * 1000).toFixed(0)})`;
    text +=
      `${row.phase.padEnd(8)}${cell(row.plain).padEnd(22)}${cell(row.padded).padEnd(22)}${cell(row.enc).padEnd(22)}` +
      `${`${pct(row.sizeOverhead.value)} (${span(row.sizeOverhead)})`.padEnd(34)}${pct(row.overhead.value)} (${spans(row.overhead)})\n`;
  }
  process.stdout.write(text);

  const m = machineInfo();
  const md = [
    '# fieldcrypt Mongoose benchmark',
    '',
    `Generated by \`npm run bench:mongoose\`${opts.quick ? ' (quick smoke run)' : ''} on ${started.toISOString().replace(/\.\d+Z$/, 'Z')}.`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.os}; Node ${m.node}; Mongoose ${mongoose.version}; fieldcrypt ${require('../package.json').version}.`,
    '',
    `Server: ${serverVersion}, ${server.what === 'MONGODB_URI' ? 'at MONGODB_URI' : 'started by test/harness.js on the same machine (SQLite backend, data in a temp dir)'}.`,
    '',
    MINIMAL
      ? 'Method: three models with the same minimal schema `{ name, ssn, email, address }` (all String). On one, `ssn`, `email` and'
      : 'Method: three models with the same learner schema (name; profile: names, date of birth, phone, language; enrollment:' +
        ' program, cohort, start date, status, advisor, credits; three flags; notes; and three String fields ssn, email,' +
        ' address; about 600 bytes of BSON in clear). On one, `ssn`, `email` and',
    '`address` have `encryptFieldIfModified` pre-save hooks and `createDecryptMethod` methods. On another, **same size**, they',
    'are stored in clear but padded to the length of their stored values (2n + 69 characters): a control for what the',
    'longer values alone cost. One warm-up round, then',
    `${opts.rounds} rounds. Per round and model, into an emptied collection:`,
    '',
    `- **save**: ${descr.save};`,
    `- **find**: ${descr.find};`,
    `- **read**: ${descr.read}.`,
    '',
    `The models take turns: ${SAVE_CHUNK} saves each, then one find (and read) each, the order rotating every`,
    'turn, so that the drift of a shared machine over seconds falls on all three alike.',
    '',
    'The find overhead is the cost of the larger stored values (hex ciphertext is over twice the length of the text),',
    'which the same-size model pays too; read minus find is the cost of decrypting.',
    '',
    'Overhead = time ÷ plain time − 1, from the medians. In brackets: a 95% interval for it (a paired bootstrap over',
    `the rounds, ${RESAMPLES} resamples), then the range of the same ratio taken round by round. Each round`,
    'also checks that the encrypted model stored ciphertext and reads back the original values, and the other two did not.',
    'A single-process database on a shared machine is noisy: read the overhead, not the milliseconds.',
    '',
    '| phase | plain, ms (min–max) | same size, ms (min–max) | encrypted, ms (min–max) | same size ÷ plain (95%; per round) | encrypted ÷ plain (95%; per round) |',
    '| :-- | --: | --: | --: | --: | --: |',
    ...rows.map((row) => {
      const cell = (s) =>
        `**${(s.median * 1000).toFixed(1)}** (${(s.min * 1000).toFixed(0)}–${(s.max * 1000).toFixed(0)})`;
      return (
        `| ${row.phase} | ${cell(row.plain)} | ${cell(row.padded)} | ${cell(row.enc)} | ` +
        `${pct(row.sizeOverhead.value)} (${spans(row.sizeOverhead)}) | **${pct(row.overhead.value)}** (${spans(row.overhead)}) |`
      );
    }),
    '',
  ].join('\n');
  fs.mkdirSync(opts.outDir, { recursive: true });
  const file = path.join(opts.outDir, MINIMAL ? 'RESULTS-mongoose-minimal.md' : 'RESULTS-mongoose.md');
  fs.writeFileSync(file, md);
  process.stderr.write(`wrote ${path.relative(process.cwd(), file)}\n`);
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

module.exports = { main, options };
