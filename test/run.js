#!/usr/bin/env node
'use strict';

/**
 * `npm run test:mongoose`: runs the test/*.test.js files (`node --test`)
 * against each of the harness's servers in turn (see test/harness.js):
 *
 *   1. FerretDB v1.24 (SQLite): every file. It rejects positional updates:
 *      the checks that need them are reported as skipped;
 *   2. mongo-java-server 1.46 (memory backend), which executes them: the
 *      suites those checks are in (SECOND_SERVER_SUITES: the plugin's write
 *      paths, with and without binding, its blind-index writes and queries,
 *      and the CLI's per-document server errors), where they run in full and
 *      a rejection fails. The other suites add nothing there that FerretDB
 *      does not check.
 *
 * Each run gets its own server (built into .cache/ first if needed), with
 * MONGODB_URI and FIELDCRYPT_TEST_SERVER=<kind> set for the tests; the server
 * is stopped and its data removed afterwards, also when tests fail or the run
 * is interrupted. Exits with the first failing run's exit code (0 when all
 * pass). FIELDCRYPT_TEST_SERVERS=ferretdb (a comma-separated list) runs only
 * the servers named.
 *
 * File arguments (`node test/run.js test/plugin-search-queries.test.js`)
 * run only the files named. With MONGODB_URI already set, runs once against
 * that server and starts nothing.
 *
 * The key vault's AWS tests start their own moto server (test/moto.js); it
 * is installed (a Python venv under .cache/) before any test runs.
 */

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { ensureFerretDB, ensureMongoJavaServer, startServer, signalExitCode, log, SERVER_KINDS } = require('./harness');
const { ensureMoto } = require('./moto');

const BUILD = { ferretdb: ensureFerretDB, 'mongo-java-server': ensureMongoJavaServer };

/** The files each server runs: all of them, or those named. */
const SECOND_SERVER_SUITES = [
  'plugin-writes.test.js',
  'plugin-array-filters.test.js',
  'plugin-binding.test.js',
  'plugin-refusals.test.js',
  'plugin-search-writes.test.js',
  'plugin-search-queries.test.js',
  'plugin-search-interplay.test.js',
  'cli-error-output.test.js',
];
const SUITES = { ferretdb: null, 'mongo-java-server': SECOND_SERVER_SUITES };

let testRun; // the `node --test` child running now, once started
let interrupted = null; // the signal that interrupted the tests

// The first SIGINT/SIGTERM during the tests goes on to the test run; its exit
// then takes the normal path below (stop the server, run no other server,
// exit). Otherwise, or on a second signal, exit now: the harness's exit hook
// kills the server (or the build) and removes its temp dir.
function onSignal(signal) {
  if (testRun && testRun.exitCode === null && !interrupted) {
    interrupted = signal;
    testRun.kill(signal);
    return;
  }
  process.exit(signalExitCode(signal));
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

/** The servers to run on: FIELDCRYPT_TEST_SERVERS, or all of them, in order. */
function serverKinds() {
  const setting = (process.env.FIELDCRYPT_TEST_SERVERS || '').trim();
  if (!setting) return SERVER_KINDS;
  const kinds = setting.split(',').map((kind) => kind.trim());
  for (const kind of kinds) {
    if (!SERVER_KINDS.includes(kind)) {
      throw new Error(`FIELDCRYPT_TEST_SERVERS: unknown server ${JSON.stringify(kind)} (${SERVER_KINDS.join(', ')})`);
    }
  }
  return kinds;
}

/** Runs the test files with `env` added to ours; resolves with the exit code. */
function runTests(files, env) {
  testRun = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=300000', ...files], {
    stdio: 'inherit',
    env: { ...process.env, ...env },
  });
  return new Promise((resolve, reject) => {
    testRun.once('error', reject);
    testRun.once('exit', (code, signal) => resolve(signal ? signalExitCode(signal) : code));
  });
}

async function main() {
  // `node test/run.js test/a.test.js b.test.js`: only the files named (each server still runs only its suites).
  const named = new Set(process.argv.slice(2).map((arg) => path.basename(arg)));
  const files = fs
    .readdirSync(__dirname)
    .filter((name) => name.endsWith('.test.js') && (named.size === 0 || named.has(name)))
    .sort()
    .map((name) => path.join(__dirname, name));
  if (files.length === 0) throw new Error(`no test file matches ${[...named].join(', ')}`);

  if (process.env.MONGODB_URI) {
    await ensureMoto();
    log('running the tests against MONGODB_URI');
    return runTests(files, {});
  }

  const kinds = serverKinds();
  // Both builds first (one at a time: they are CPU-bound), so that a missing tool fails before any test runs;
  // and moto (the AWS KMS API of test/key-vault-aws.test.js), installed into .cache/ on a fresh clone.
  for (const kind of kinds) await BUILD[kind]();
  await ensureMoto();

  const results = [];
  for (const kind of kinds) {
    if (interrupted) break;
    const only = SUITES[kind];
    const suites = only ? files.filter((file) => only.includes(path.basename(file))) : files;
    // (`node --test` without files would look for tests everywhere.)
    if (suites.length === 0) continue;
    const server = await startServer({ kind, handleSignals: false });
    log(`running the tests against ${kind} at ${server.uri}`);
    const started = performance.now();
    let code;
    try {
      code = await runTests(suites, { MONGODB_URI: server.uri, FIELDCRYPT_TEST_SERVER: kind });
    } finally {
      await server.stop();
    }
    results.push({ kind, code, seconds: (performance.now() - started) / 1000 });
  }
  for (const { kind, code, seconds } of results) {
    log(`${kind}: ${code === 0 ? 'passed' : `FAILED (exit ${code})`} in ${seconds.toFixed(1)} s`);
  }
  const failed = results.find((result) => result.code !== 0);
  if (failed) return failed.code;
  return interrupted ? signalExitCode(interrupted) : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
