#!/usr/bin/env node
'use strict';

/**
 * `npm run fuzz`: runs the cargo-fuzz targets of fuzz/ for a fixed time each
 * and prints, per run, the executions, time, executions per second, crashes
 * and corpus size. Exits non-zero if any run crashed (a panic, a mismatch
 * between implementations, a sanitizer report) or failed to build. Not part
 * of `npm test`. See fuzz/README.md.
 *
 *   npm run fuzz                          # every run, 60 s each
 *   FUZZ_SECONDS=1200 npm run fuzz        # 20 minutes each
 *   npm run fuzz -- seal_open ghash       # some runs only
 *   FUZZ_PARALLEL=2 nice -n 10 npm run fuzz
 *
 * The runs: parse, seal_open (default flags: fieldcrypt's CLMUL code),
 * seal_open-soft-aes (`--cfg aes_backend="soft"`: RustCrypto's software AES
 * on every side, in its own target directory), ghash and blind_index.
 *
 * Needs the nightly toolchain (`cargo +nightly`); installs cargo-fuzz into
 * .cache/cargo-fuzz (git-ignored) the first time. Each run reads the
 * committed seeds (fuzz/seeds/<target>/) and keeps what it finds in
 * fuzz/corpus/<run>/; crashes go to fuzz/artifacts/<run>/, the output of
 * libFuzzer to fuzz/logs/<run>.log (all git-ignored).
 *
 * FUZZ_SECONDS  seconds per run (default 60)
 * FUZZ_PARALLEL runs at a time (default 1)
 * FUZZ_ARGS     more libFuzzer options, space-separated (e.g. `-max_len=8192`)
 * CARGO         the cargo binary (default `cargo`)
 */

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const fuzzDir = path.join(root, 'fuzz');
const cargo = process.env.CARGO || 'cargo';
const installRoot = path.join(root, '.cache', 'cargo-fuzz');
const cargoFuzzBin = path.join(installRoot, 'bin');

const RUNS = [
  { name: 'parse', target: 'parse' },
  { name: 'seal_open', target: 'seal_open' },
  {
    name: 'seal_open-soft-aes',
    target: 'seal_open',
    rustflags: '--cfg aes_backend="soft"',
    targetDir: path.join(fuzzDir, 'target', 'soft-aes'),
  },
  { name: 'ghash', target: 'ghash' },
  { name: 'blind_index', target: 'blind_index' },
];

function fail(message) {
  console.error(`fuzz: ${message}`);
  process.exit(2);
}

function positiveInt(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) fail(`${name} must be a positive integer, not ${JSON.stringify(raw)}`);
  return n;
}

/** PATH with our cargo-fuzz first, so that `cargo fuzz` finds it. */
function envWithCargoFuzz(extra = {}) {
  return { ...process.env, PATH: `${cargoFuzzBin}${path.delimiter}${process.env.PATH}`, ...extra };
}

function ensureCargoFuzz() {
  const nightly = spawnSync(cargo, ['+nightly', '--version'], { encoding: 'utf8' });
  if (nightly.error || nightly.status !== 0) {
    fail('the nightly toolchain is needed (`rustup toolchain install nightly`); `cargo +nightly --version` failed');
  }
  const exe = path.join(cargoFuzzBin, process.platform === 'win32' ? 'cargo-fuzz.exe' : 'cargo-fuzz');
  if (fs.existsSync(exe)) return;
  console.log(`fuzz: installing cargo-fuzz into ${path.relative(root, installRoot)}`);
  const r = spawnSync(cargo, ['install', 'cargo-fuzz', '--locked', '--root', installRoot], {
    cwd: root,
    stdio: 'inherit',
  });
  if (r.error || r.status !== 0) fail('`cargo install cargo-fuzz` failed');
}

function cargoFuzzArgs(command, run) {
  const args = ['+nightly', 'fuzz', command, run.target];
  if (run.targetDir) args.push('--target-dir', run.targetDir);
  return args;
}

function runEnv(run) {
  const rustflags = [process.env.RUSTFLAGS, run.rustflags].filter(Boolean).join(' ');
  return envWithCargoFuzz(rustflags ? { RUSTFLAGS: rustflags } : {});
}

function countFiles(dir) {
  return fs.existsSync(dir) ? fs.readdirSync(dir).length : 0;
}

/** Builds, then fuzzes one run; resolves to its figures. */
async function fuzz(run, seconds, extraArgs) {
  const build = spawnSync(cargo, cargoFuzzArgs('build', run), { cwd: root, stdio: 'inherit', env: runEnv(run) });
  if (build.error || build.status !== 0) return { run, failed: 'build failed' };

  const corpus = path.join(fuzzDir, 'corpus', run.name);
  const seeds = path.join(fuzzDir, 'seeds', run.target);
  const artifacts = path.join(fuzzDir, 'artifacts', run.name);
  const logs = path.join(fuzzDir, 'logs');
  for (const dir of [corpus, artifacts, logs]) fs.mkdirSync(dir, { recursive: true });
  const crashesBefore = countFiles(artifacts);
  const logPath = path.join(logs, `${run.name}.log`);
  const log = fs.createWriteStream(logPath);

  // the first corpus directory receives new inputs; the seeds are only read
  const args = [
    ...cargoFuzzArgs('run', run),
    corpus,
    seeds,
    '--',
    `-max_total_time=${seconds}`,
    '-print_final_stats=1',
    `-artifact_prefix=${artifacts}${path.sep}`,
    ...extraArgs,
  ];
  console.log(`fuzz: ${run.name}: ${seconds} s (log: ${path.relative(root, logPath)})`);
  const started = Date.now();
  const output = [];
  const code = await new Promise((resolve) => {
    const child = spawn(cargo, args, { cwd: root, env: runEnv(run), stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [child.stdout, child.stderr]) {
      stream.on('data', (chunk) => {
        log.write(chunk);
        output.push(chunk);
      });
    }
    child.on('close', (status, signal) => resolve(signal ? 128 : status));
  });
  await new Promise((resolve) => log.end(resolve));
  const text = Buffer.concat(output).toString('utf8');
  const stat = (key) => {
    const m = text.match(new RegExp(`stat::${key}:\\s+(\\d+)`));
    return m ? Number(m[1]) : null;
  };
  const done = text.match(/Done (\d+) runs in (\d+) second/);
  const crashes = countFiles(artifacts) - crashesBefore;
  const result = {
    run,
    seconds: done ? Number(done[2]) : Math.round((Date.now() - started) / 1000),
    executions: stat('number_of_executed_units') ?? (done ? Number(done[1]) : null),
    execPerSec: stat('average_exec_per_sec'),
    crashes,
    corpus: countFiles(corpus),
    code,
  };
  if (code !== 0 || crashes > 0) {
    result.failed = `libFuzzer exited with ${code}; see ${path.relative(root, logPath)}`;
    const artifact = text.match(/Test unit written to (\S+)/);
    if (artifact) result.artifact = path.relative(root, artifact[1]);
  }
  return result;
}

async function main() {
  const seconds = positiveInt('FUZZ_SECONDS', 60);
  const parallel = positiveInt('FUZZ_PARALLEL', 1);
  const extraArgs = (process.env.FUZZ_ARGS || '').split(/\s+/).filter(Boolean);
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !RUNS.some((r) => r.name === w));
  if (unknown.length) fail(`unknown run(s) ${unknown.join(', ')}; the runs: ${RUNS.map((r) => r.name).join(', ')}`);
  const runs = wanted.length ? RUNS.filter((r) => wanted.includes(r.name)) : RUNS;

  ensureCargoFuzz();
  const results = [];
  const queue = [...runs];
  // cargo builds one at a time; the fuzzing of one run overlaps the build
  // of the next when FUZZ_PARALLEL > 1
  await Promise.all(
    Array.from({ length: Math.min(parallel, queue.length) }, async () => {
      while (queue.length) results.push(await fuzz(queue.shift(), seconds, extraArgs));
    }),
  );

  results.sort((a, b) => runs.indexOf(a.run) - runs.indexOf(b.run));
  console.log('\n| run | seconds | executions | exec/s | crashes | corpus files |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of results) {
    if (r.failed === 'build failed') {
      console.log(`| ${r.run.name} | - | - | - | build failed | - |`);
    } else {
      console.log(`| ${r.run.name} | ${r.seconds} | ${r.executions} | ${r.execPerSec} | ${r.crashes} | ${r.corpus} |`);
    }
  }
  const failed = results.filter((r) => r.failed);
  for (const r of failed) {
    console.error(`fuzz: ${r.run.name}: ${r.failed}${r.artifact ? `; input: ${r.artifact}` : ''}`);
  }
  if (failed.length) {
    console.error('fuzz: reproduce with `cargo +nightly fuzz run <target> <artifact>` (see fuzz/README.md)');
    process.exit(1);
  }
}

main().catch((e) => fail(e.stack || String(e)));
