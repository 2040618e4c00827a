#!/usr/bin/env node
'use strict';

/**
 * `npm run bench`: fieldcrypt against node:crypto, mongoose-field-encryption
 * and @47ng/cloak, side by side in one process, by interleaved rounds (see
 * runner.js). Prints a table and writes RESULTS.md, chart.svg and
 * results.json (see config.js for options and where they go).
 *
 *   npm run bench                      full run (~2-3 min on 2 cores), then the search
 *                                      lookup below (unfiltered, not quick)
 *   BENCH_QUICK=1 npm run bench        ~20 s smoke run
 *   npm run bench -- --sizes=1k,1m --impls=fieldcrypt,node
 *   npm run bench -- mongoose          save/find with and without encryption (bench/mongoose.js)
 *   npm run bench -- leak              RSS over 5M calls (bench/leak.js)
 *   npm run bench -- search            a lookup among 100,000 by a searchable encrypted value (bench/search.js)
 */

const config = require('./config');
const { loadImplementations, indexEntrants } = require('./impls');
const { runCase, ratio } = require('./runner');
const report = require('./report');
const batch = require('./batch');

/** Deterministic printable-ASCII text of `bytes` bytes. */
function asciiText(bytes) {
  const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,-_@';
  let x = 0x2545f491;
  let s = '';
  for (let i = 0; i < bytes; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    s += alphabet[(x >>> 0) % alphabet.length];
  }
  return s;
}

/** Text of exactly `bytes` UTF-8 bytes mixing 1-, 2-, 3- and 4-byte characters. */
function multiByteText(bytes) {
  const chars = ['a', 'é', 'ß', '€', '中', '😀'];
  let s = '';
  let n = 0;
  for (let i = 0; ; i++) {
    const c = chars[i % chars.length];
    const len = Buffer.byteLength(c);
    if (n + len > bytes) break;
    s += c;
    n += len;
  }
  return s + 'a'.repeat(bytes - n);
}

function textFor(size) {
  const text = size.multiByte ? multiByteText(size.bytes) : asciiText(size.bytes);
  if (Buffer.byteLength(text) !== size.bytes) throw new Error(`bad test text for ${size.label}`);
  return text;
}

/** The timed function for one implementation, operation and plaintext. */
function entrant(impl, op, text) {
  const input = impl.input ? impl.input(text) : text;
  if (op === 'encrypt') return { id: impl.id, fn: () => impl.encrypt(input) };
  if (op === 'roundtrip') return { id: impl.id, fn: () => impl.decrypt(impl.encrypt(input)) };
  // decrypt: cycle through a few distinct ciphertexts made beforehand.
  const pool = Array.from({ length: 8 }, () => impl.encrypt(input));
  return { id: impl.id, fn: (i) => impl.decrypt(pool[i & 7]) };
}

/**
 * What an IV costs from each source, in ns (medians of `rounds` rounds of
 * `count` IVs, interleaved by the addon): fieldcrypt's pooled OS generator,
 * the OS asked per IV, and a user-space generator.
 */
function ivCosts(rounds, count) {
  const native = require('../lib/core/native').load();
  const samples = [[], [], []];
  for (let r = 0; r < rounds; r++) native.ivSourceCosts(count).forEach((ns, k) => samples[k].push(ns));
  const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
  const [pool, osEach, userSpace] = samples.map(median);
  return { rounds, count, pool, osEach, userSpace };
}

/**
 * Blind index values per second next to encrypts per second, for short
 * values (11-character identifiers), one at a time and in batches of 1000.
 */
function indexValues(opts) {
  const values = Array.from({ length: 1000 }, (_, i) => `${String(100 + (i % 900)).padStart(3, '0')}-45-${1000 + i}`);
  const { single, batch: many } = indexEntrants(values);
  const timing = { rounds: opts.rounds, sliceMs: opts.sliceMs, warmupMs: opts.warmupMs };
  return {
    valueLength: values[0].length,
    batchSize: values.length,
    single: runCase(single, timing),
    batch: runCase(many, timing),
  };
}

function log(msg) {
  process.stderr.write(`${msg}\n`);
}

async function micro(opts) {
  const started = new Date();
  const t0 = Date.now();
  const loadStart = require('node:os')
    .loadavg()
    .map((x) => +x.toFixed(2));
  const loaded = loadImplementations();
  let impls = loaded.impls;
  if (opts.impls) impls = impls.filter((i) => opts.impls.includes(i.id));
  for (const s of loaded.skipped) log(`skipping ${s.id}: ${s.reason}`);
  if (impls.length === 0) throw new Error('no implementation left to run');

  log(
    `bench: ${impls.map((i) => i.label).join(', ')}; sizes ${opts.sizes.map((s) => s.label).join(', ')}; ` +
      `${opts.rounds} rounds x ${opts.sliceMs} ms${opts.quick ? ' (quick)' : ''}`,
  );

  const cases = [];
  for (const size of opts.sizes) {
    const text = textFor(size);
    for (const op of opts.ops) {
      const entrants = impls.map((impl) => entrant(impl, op, text));
      const results = runCase(entrants, { rounds: opts.rounds, sliceMs: opts.sliceMs, warmupMs: opts.warmupMs });
      const c = { size, op, results, ratios: {} };
      const fc = results.get('fieldcrypt');
      if (fc)
        for (const impl of impls) if (impl.id !== 'fieldcrypt') c.ratios[impl.id] = ratio(fc, results.get(impl.id));
      const node = results.get('node');
      c.vsNode = {};
      if (node) for (const impl of impls) c.vsNode[impl.id] = ratio(results.get(impl.id), node);
      cases.push(c);
      log(`  ${size.label.padEnd(12)} ${op.padEnd(9)} ${report.caseLine(c, impls)}`);
    }
  }

  let batchResults = null;
  if (opts.batch) batchResults = await batch.run(require('..'), impls, opts, log);
  const ivs = ivCosts(opts.quick ? 3 : 9, opts.quick ? 50_000 : 200_000);
  const index = opts.impls && !opts.impls.includes('fieldcrypt') ? null : indexValues(opts);

  const run = {
    started,
    seconds: (Date.now() - t0) / 1000,
    opts,
    impls,
    skipped: loaded.skipped,
    cases,
    batch: batchResults,
    ivCosts: ivs,
    index,
    machine: report.machineInfo(),
    loadStart,
  };
  process.stdout.write(report.textTables(run));
  const files = report.writeAll(run, opts.outDir);
  log(`\nwrote ${files.join(', ')} in ${run.seconds.toFixed(0)} s`);
}

async function main() {
  const opts = config.parse();
  if (opts.command === 'mongoose') return require('./mongoose').main();
  if (opts.command === 'leak') return require('./leak').main();
  if (opts.command === 'search') return require('./search').main();
  if (opts.command !== 'micro')
    throw config.usage(`unknown command "${opts.command}" (use mongoose, leak, search or nothing)`);
  await micro(opts);
  // The full run also measures an indexed lookup by a searchable value against a plaintext one.
  if (!opts.quick && !opts.filtered) await require('./search').main();
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err && err.usage ? `bench: ${err.message}` : err);
    process.exit(1);
  });
}

module.exports = { asciiText, multiByteText };
