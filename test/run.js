#!/usr/bin/env node
'use strict';

/**
 * `npm run test:mongoose`: builds FerretDB if needed, starts it, runs every
 * test/*.test.js against it (`node --test`, MONGODB_URI set), then stops the
 * server and removes its data, also when tests fail or the run is
 * interrupted. Exits with the test run's exit code.
 *
 * With MONGODB_URI already set, runs against that server and starts nothing.
 */

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { ensureFerretDB, startServer, signalExitCode } = require('./harness');

let testRun; // the `node --test` child, once started
let interrupted = false;

// The first SIGINT/SIGTERM during the tests goes on to the test run; its exit
// then takes the normal path below (stop the server, exit). Otherwise, or on
// a second signal, exit now: the harness's exit hook kills the server (or the
// build) and removes its temp dir.
function onSignal(signal) {
  if (testRun && testRun.exitCode === null && !interrupted) {
    interrupted = true;
    testRun.kill(signal);
    return;
  }
  process.exit(signalExitCode(signal));
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

async function main() {
  const files = fs
    .readdirSync(__dirname)
    .filter((name) => name.endsWith('.test.js'))
    .sort()
    .map((name) => path.join(__dirname, name));

  if (!process.env.MONGODB_URI) await ensureFerretDB();
  const server = await startServer({ handleSignals: false });
  try {
    testRun = spawn(process.execPath, ['--test', '--test-concurrency=1', '--test-timeout=300000', ...files], {
      stdio: 'inherit',
      env: { ...process.env, MONGODB_URI: server.uri },
    });
    return await new Promise((resolve, reject) => {
      testRun.once('error', reject);
      testRun.once('exit', (code, signal) => resolve(signal ? signalExitCode(signal) : code));
    });
  } finally {
    await server.stop();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
