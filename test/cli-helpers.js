'use strict';

/**
 * Helpers for test/cli-*.test.js: run bin/fieldcrypt.js as a child process
 * against the test server (MONGODB_URI, set by test/run.js; or a server the
 * file starts itself with the harness), and open the file's own database.
 */

const { spawn } = require('node:child_process');
const path = require('node:path');
const { startServer } = require('./harness');

const BIN = path.join(__dirname, '..', 'bin', 'fieldcrypt.js');

const KEY_01 = '8c6f2a1e0d9b4c7a5e3f1b2d4a6c8e0f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d';
const KEY_02 = '3b1e9d7c5a3f1e0d2c4b6a8f0e1d3c5b7a9f0e2d4c6b8a0f1e3d5c7b9a1f2e4d';

// The test process decrypts with the same keys as the CLI children.
for (const name of Object.keys(process.env)) if (name.startsWith('ENCRYPTION_KEY')) delete process.env[name];
process.env.ENCRYPTION_KEY = KEY_01;
process.env.ENCRYPTION_KEY_V02 = KEY_02;

/** The environment for a CLI child: the test keys, `extra` on top (undefined removes). */
function cliEnv(uri, extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env))
    if (!k.startsWith('ENCRYPTION_KEY') && !k.startsWith('NODE_TEST')) env[k] = v;
  Object.assign(env, { MONGODB_URI: uri, ENCRYPTION_KEY: KEY_01, ENCRYPTION_KEY_V02: KEY_02 }, extra);
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete env[k];
  return env;
}

/** Starts the CLI; returns the child plus a promise of { code, signal, stdout, stderr }. */
function spawnCli(args, { uri, env, cwd } = {}) {
  const child = spawn(process.execPath, [BIN, ...args], {
    env: cliEnv(uri, env),
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d));
  const done = new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done, output: () => ({ stdout, stderr }) };
}

function runCli(args, options) {
  return spawnCli(args, options).done;
}

/** The JSON summary a `--json` run printed (the last JSON document on stdout). */
function jsonOf(result) {
  const start = result.stdout.indexOf('{');
  if (start < 0) throw new Error(`no JSON on stdout:\n${result.stdout}\nstderr:\n${result.stderr}`);
  return JSON.parse(result.stdout.slice(start));
}

/**
 * The test server and this file's own database (dropped first and at close):
 * { uri, dbName, db, client, close }.
 */
async function openCliDatabase(testFile) {
  const server = await startServer();
  const { MongoClient } = require('mongodb');
  const client = await MongoClient.connect(server.uri, { serverSelectionTimeoutMS: 15_000 });
  const dbName = `fieldcrypt_test_${path.basename(testFile, '.test.js').replace(/[^a-zA-Z0-9]/g, '_')}`;
  const db = client.db(dbName);
  await db.dropDatabase();
  return {
    uri: server.uri,
    dbName,
    db,
    client,
    async close() {
      try {
        await db.dropDatabase();
      } finally {
        await client.close();
        await server.stop();
      }
    },
  };
}

/** A small seeded PRNG (mulberry32), so that a failing random run can be replayed. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

module.exports = { BIN, KEY_01, KEY_02, cliEnv, spawnCli, runCli, jsonOf, openCliDatabase, prng, sleep };
