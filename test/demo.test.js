'use strict';

// examples/demo.js (the README example, `npm run demo`) runs, on Mongoose 9
// and Mongoose 8, and shows ciphertext in the database and plaintext in the app.

const test = require('node:test');
const { describe, before, after } = test;
const assert = require('node:assert/strict');
const { execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { startServer, mongooseVersions, FERRETDB_BIN, withTimeout } = require('./harness');

// A timeout per test, so that a hang (say, a hook that never calls next) fails
// that test instead of stalling the run.
const it = (name, fn) => test.it(name, (t) => withTimeout(fn(t), 30_000));

const DEMO = path.join(__dirname, '..', 'examples', 'demo.js');
/** The JSON line of a stored `field` holding ciphertext. */
const STORED = (field) => new RegExp(`"${field}": "\\d\\d:[0-9a-f]{32}:[0-9a-f]{32}:([0-9a-f]{2})*"`);

/** Node arguments running the demo with `require('mongoose')` resolved to the given major. */
function demoArgs(major) {
  if (major === 9) return [DEMO];
  // Resolve 'mongoose' to the `mongoose8` alias, then run the demo unchanged.
  const preload = `
    const Module = require('node:module');
    const resolve = Module._resolveFilename;
    Module._resolveFilename = function (request, ...rest) {
      return resolve.call(this, request === 'mongoose' ? 'mongoose8' : request, ...rest);
    };
    console.error('demo runs on Mongoose ' + Module.createRequire(${JSON.stringify(DEMO)})('mongoose').version);
    require(${JSON.stringify(DEMO)});`;
  return ['-e', preload];
}

/** Runs the demo without any ENCRYPTION_KEY*; resolves with { stdout, stderr }, rejects on a non-zero exit. */
function runDemo(args, env) {
  const childEnv = { ...process.env, ...env };
  for (const name of Object.keys(childEnv)) if (name.startsWith('ENCRYPTION_KEY')) delete childEnv[name];
  for (const [name, value] of Object.entries(env)) if (value === undefined) delete childEnv[name];
  return new Promise((resolve, reject) => {
    // Killed after 25 s, before the test's own timeout, or when this process exits.
    const child = execFile(process.execPath, args, { env: childEnv, timeout: 25_000 }, (err, stdout, stderr) => {
      process.removeListener('exit', kill);
      if (err) {
        err.message += `\n--- demo stdout:\n${stdout}\n--- demo stderr:\n${stderr}`;
        reject(err);
      } else {
        resolve({ stdout, stderr });
      }
    });
    const kill = () => child.kill('SIGKILL');
    process.once('exit', kill);
  });
}

function assertDemoOutput(stdout) {
  assert.match(stdout, /ENCRYPTION_KEY is not set: using a throwaway key/);
  const [stored, decrypted] = stdout.split('Read back through Mongoose:');
  assert.ok(decrypted !== undefined, 'the demo prints the decrypted values');
  assert.match(stored, STORED('idNumber'), 'the stored document shows the passport number encrypted');
  assert.match(stored, STORED('alienRegistrationNumber'), 'the stored document shows the A-number encrypted');
  for (const plaintext of ['X1234567', 'A123456789']) {
    assert.ok(!stored.includes(plaintext), `the stored document does not contain ${plaintext}`);
  }
  assert.match(decrypted, /getDecryptedIdNumber\(\): +X1234567\n/);
  assert.match(decrypted, /alienRegistrationNumberPlain: +A123456789\n/);
}

describe('examples/demo.js', () => {
  let server;
  before(async () => {
    server = await startServer();
  });
  after(() => server.stop());

  for (const { major, label } of mongooseVersions()) {
    it(`runs against MONGODB_URI on ${label}`, async () => {
      const { stdout, stderr } = await runDemo(demoArgs(major), { MONGODB_URI: server.uri });
      assertDemoOutput(stdout);
      if (major !== 9) assert.match(stderr, new RegExp(`demo runs on Mongoose ${major}\\.`));
    });
  }

  it('without MONGODB_URI, starts its own FerretDB and removes its temp dir', async (t) => {
    if (!fs.existsSync(FERRETDB_BIN)) return t.skip('FerretDB is not built (the run uses an outside MONGODB_URI)');
    // The demo's FerretDB makes its temp dir in TMPDIR: a fresh one here, which must end up empty.
    const tmpdir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldcrypt-demo-test-'));
    try {
      const { stdout } = await runDemo(demoArgs(9), { MONGODB_URI: undefined, TMPDIR: tmpdir });
      assertDemoOutput(stdout);
      assert.deepEqual(fs.readdirSync(tmpdir), [], 'no temp dir is left behind');
    } finally {
      fs.rmSync(tmpdir, { recursive: true, force: true });
    }
  });
});
