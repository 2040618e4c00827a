'use strict';

/**
 * Benchmark settings from argv and the environment (argv wins):
 *
 *   --quick            BENCH_QUICK=1       ~20 s smoke run (fewer, shorter rounds)
 *   --sizes=10,1k,mb1k BENCH_SIZES=...     sizes: 10, 100, 1k, 64k, 1m, mb1k (1 KiB multi-byte UTF-8)
 *   --impls=a,b        BENCH_IMPLS=...     fieldcrypt, node, mfe, cloak, fcbuf, fcbound
 *   --ops=encrypt,...  BENCH_OPS=...       encrypt, decrypt, roundtrip
 *   --rounds=N         BENCH_ROUNDS=N      interleaved rounds per case
 *   --slice=MS         BENCH_SLICE_MS=MS   time per implementation per round
 *   --no-batch         BENCH_BATCH=0       skip the batch-API section
 *   --out=DIR          BENCH_OUT=DIR       where RESULTS.md, chart.svg, results.json go
 *
 * A full default run writes into bench/; a quick or filtered run writes into
 * bench/out/ (git-ignored) so that it never replaces the published results.
 */

const path = require('node:path');

const SIZES = {
  10: { id: '10', label: '10 B', bytes: 10 },
  100: { id: '100', label: '100 B', bytes: 100 },
  '1k': { id: '1k', label: '1 KiB', bytes: 1024 },
  '64k': { id: '64k', label: '64 KiB', bytes: 64 * 1024 },
  '1m': { id: '1m', label: '1 MiB', bytes: 1024 * 1024 },
  mb1k: { id: 'mb1k', label: '1 KiB UTF-8', bytes: 1024, multiByte: true },
};
const OPS = ['encrypt', 'decrypt', 'roundtrip'];
const IMPL_ALIASES = {
  fieldcrypt: 'fieldcrypt',
  fc: 'fieldcrypt',
  node: 'node',
  'node:crypto': 'node',
  mfe: 'mfe',
  'mongoose-field-encryption': 'mfe',
  cloak: 'cloak',
  '@47ng/cloak': 'cloak',
  fcbuf: 'fcbuf',
  fcbound: 'fcbound',
  bound: 'fcbound',
};

/** An error in the command line: reported without a stack trace. */
function usage(message) {
  return Object.assign(new Error(message), { usage: true });
}

function list(value, known, what) {
  const items = String(value)
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  for (const item of items) {
    if (!(item in known)) throw usage(`unknown ${what} "${item}"; known: ${Object.keys(known).join(', ')}`);
  }
  return items;
}

function parse(argv = process.argv.slice(2), env = process.env) {
  const flags = {};
  const positional = [];
  for (const arg of argv) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(arg);
    if (m) flags[m[1]] = m[2] === undefined ? true : m[2];
    else positional.push(arg);
  }
  const pick = (flag, envName) => (flags[flag] !== undefined ? flags[flag] : env[envName]);
  const truthy = (v) => v !== undefined && v !== '' && v !== '0' && v !== 'false' && v !== false;

  const quick = truthy(pick('quick', 'BENCH_QUICK'));
  const sizesArg = pick('sizes', 'BENCH_SIZES');
  const implsArg = pick('impls', 'BENCH_IMPLS');
  const opsArg = pick('ops', 'BENCH_OPS');
  const roundsArg = pick('rounds', 'BENCH_ROUNDS');
  const sliceArg = pick('slice', 'BENCH_SLICE_MS');
  const batchArg = flags['no-batch'] ? '0' : env.BENCH_BATCH;
  const filtered = Boolean(
    sizesArg || implsArg || opsArg || roundsArg || sliceArg || flags['no-batch'] || env.BENCH_BATCH,
  );

  const sizes = sizesArg ? list(sizesArg, SIZES, 'size').map((s) => SIZES[s]) : Object.values(SIZES);
  const impls = implsArg
    ? [...new Set(list(implsArg, IMPL_ALIASES, 'implementation').map((i) => IMPL_ALIASES[i]))]
    : null;
  const ops = opsArg ? list(opsArg, Object.fromEntries(OPS.map((o) => [o, o])), 'operation') : OPS;

  const rounds = roundsArg ? Number(roundsArg) : quick ? 5 : 9;
  if (!Number.isInteger(rounds) || rounds < 1) throw usage('rounds must be a positive integer');
  const sliceMs = sliceArg ? Number(sliceArg) : quick ? 25 : 100;
  const warmupMs = quick ? 60 : 300;

  const outArg = pick('out', 'BENCH_OUT');
  const outDir = outArg ? path.resolve(outArg) : quick || filtered ? path.join(__dirname, 'out') : __dirname;

  return {
    command: positional[0] || 'micro',
    quick,
    filtered,
    sizes,
    impls,
    ops,
    rounds,
    sliceMs,
    warmupMs,
    batch: batchArg === undefined ? true : truthy(batchArg),
    // Batch section: values per batch for the sync comparison, values for the async run.
    batchSize: 1000,
    asyncValues: quick ? 20000 : 100000,
    // Async rounds swing with the host (a 2-vCPU VM): more rounds for a steadier median.
    asyncRounds: quick ? 3 : 21,
    outDir,
  };
}

module.exports = { parse, usage, SIZES, OPS };
