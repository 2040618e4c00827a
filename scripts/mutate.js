#!/usr/bin/env node
'use strict';

/**
 * `npm run mutate`: mutation testing, not part of `npm test`. Runs
 *
 *   js    StrykerJS (stryker.config.json) on the lib/ files it lists, against
 *         the fast suites (__test__/*.test.js, no database server) through
 *         the TAP runner: each test file is one test, and each mutant runs
 *         only the files that executed its code;
 *   rust  cargo mutants (.cargo/mutants.toml) on src/format.rs,
 *         src/keyring.rs and src/cipher.rs against `cargo test --lib`, built
 *         with the `mutants` profile (Cargo.toml);
 *
 * and prints, for each, the time it took and its score (killed / (killed +
 * survived); timeouts count as killed, unviable mutants are left out).
 *
 *   npm run mutate                         # both
 *   npm run mutate -- js                   # StrykerJS only
 *   npm run mutate -- rust                 # cargo mutants only
 *   npm run mutate -- rust --file src/batch.rs   # more arguments go to the tool
 *
 * Each tool runs under `nice -n MUTATE_NICE` (default 15): on this project's
 * shared two-core machines each takes about half an hour with the scope
 * configured (docs/testing.md, "Mutation testing", has the figures).
 * cargo mutants mutates the source tree in place (so the `mutants` profile's
 * build in target/ is reused): do not edit src/ while it runs; it puts each
 * file back after its mutants, and `git diff src/` shows anything left after
 * a hard kill.
 *
 * Installs what is missing: cargo-mutants into .cache/cargo-mutants
 * (git-ignored), StrykerJS (devDependencies) with `npm install`. Reports:
 * reports/mutation/ (Stryker's JSON and HTML) and mutants.out/ (cargo
 * mutants' outcomes.json, caught.txt, missed.txt...), both git-ignored.
 */

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const CARGO_MUTANTS_VERSION = '27.1.0';
const installRoot = path.join(root, '.cache', 'cargo-mutants');
const cargoMutantsBin = path.join(installRoot, 'bin');
const niceness = process.env.MUTATE_NICE || '15';

function fail(message) {
  console.error(`mutate: ${message}`);
  process.exit(2);
}

function run(command, args, options = {}) {
  const result = spawnSync('nice', ['-n', niceness, command, ...args], { cwd: root, stdio: 'inherit', ...options });
  if (result.error) fail(`${command}: ${result.error.message}`);
  return result.status;
}

function ensureStryker() {
  try {
    require.resolve('@stryker-mutator/core/package.json', { paths: [root] });
    require.resolve('@stryker-mutator/tap-runner/package.json', { paths: [root] });
  } catch {
    console.log('mutate: installing the devDependencies (StrykerJS)');
    if (spawnSync('npm', ['install', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' }).status !== 0) {
      fail('npm install failed');
    }
  }
}

function ensureCargoMutants() {
  const bin = path.join(cargoMutantsBin, 'cargo-mutants');
  const version = fs.existsSync(bin) ? spawnSync(bin, ['mutants', '--version'], { encoding: 'utf8' }).stdout : '';
  if (version && version.includes(CARGO_MUTANTS_VERSION)) return;
  console.log(`mutate: installing cargo-mutants ${CARGO_MUTANTS_VERSION} into .cache/cargo-mutants`);
  const args = ['install', '--locked', '--root', installRoot, 'cargo-mutants', '--version', CARGO_MUTANTS_VERSION];
  if (run('cargo', args) !== 0) fail('could not install cargo-mutants');
}

function score(killed, survived) {
  const tested = killed + survived;
  return tested === 0 ? 'n/a' : `${((100 * killed) / tested).toFixed(1)}%`;
}

function minutes(ms) {
  return `${(ms / 60000).toFixed(1)} min`;
}

/** StrykerJS; returns its summary line. */
function runStryker(extra) {
  ensureStryker();
  const started = Date.now();
  const core = path.dirname(require.resolve('@stryker-mutator/core/package.json', { paths: [root] }));
  const status = run(process.execPath, [path.join(core, 'bin', 'stryker.js'), 'run', ...extra]);
  const took = Date.now() - started;
  const report = path.join(root, 'reports', 'mutation', 'stryker.json');
  if (status !== 0 || !fs.existsSync(report))
    return { ok: false, line: `js: StrykerJS failed (exit ${status}) after ${minutes(took)}` };
  const counts = {};
  for (const file of Object.values(JSON.parse(fs.readFileSync(report, 'utf8')).files)) {
    for (const mutant of file.mutants) counts[mutant.status] = (counts[mutant.status] || 0) + 1;
  }
  const killed = (counts.Killed || 0) + (counts.Timeout || 0);
  const survived = (counts.Survived || 0) + (counts.NoCoverage || 0);
  const detail = Object.entries(counts)
    .map(([status, n]) => `${status} ${n}`)
    .join(', ');
  return { ok: true, line: `js: score ${score(killed, survived)} (${detail}) in ${minutes(took)}` };
}

/** cargo mutants; returns its summary line. */
function runCargoMutants(extra) {
  ensureCargoMutants();
  const started = Date.now();
  const env = { ...process.env, PATH: `${cargoMutantsBin}${path.delimiter}${process.env.PATH}` };
  // The property tests save the failing cases of mutants in proptest-regressions/:
  // not regressions of the real code, so removed again unless it was there before.
  const regressions = path.join(root, 'proptest-regressions');
  const hadRegressions = fs.existsSync(regressions);
  const status = run('cargo', ['mutants', '--in-place', ...extra], { env });
  if (!hadRegressions) fs.rmSync(regressions, { recursive: true, force: true });
  const took = Date.now() - started;
  const outcomes = path.join(root, 'mutants.out', 'outcomes.json');
  // cargo mutants exits 2 when mutants survived, 3 on timeouts: both are results.
  if (![0, 2, 3].includes(status) || !fs.existsSync(outcomes)) {
    return { ok: false, line: `rust: cargo mutants failed (exit ${status}) after ${minutes(took)}` };
  }
  const { caught = 0, missed = 0, timeout = 0, unviable = 0 } = JSON.parse(fs.readFileSync(outcomes, 'utf8'));
  const line =
    `rust: score ${score(caught + timeout, missed)} (caught ${caught}, missed ${missed}, timeout ${timeout}, ` +
    `unviable ${unviable}) in ${minutes(took)}; missed mutants: mutants.out/missed.txt`;
  return { ok: true, line };
}

function main() {
  const [which = 'all', ...extra] = process.argv.slice(2);
  if (!['all', 'js', 'rust'].includes(which))
    fail(`unknown tool ${JSON.stringify(which)} (js, rust, or none for both)`);
  if (which === 'all' && extra.length) fail('name the tool (js or rust) to pass it arguments');
  const results = [];
  if (which !== 'rust') results.push(runStryker(extra));
  if (which !== 'js') results.push(runCargoMutants(extra));
  for (const { line } of results) console.log(`mutate: ${line}`);
  process.exit(results.every((result) => result.ok) ? 0 : 1);
}

main();
