'use strict';

// examples/patients-api as a user runs it: the compiled service in its own
// process (dist/server.js) on a free loopback port, every command of its
// README walkthrough run as written (curl and the scripts, address
// rewritten), then the legacy path: plaintext patients loaded as the old
// service stored them, migrated with the CLI, searched, the master key
// rotated (twice; the old keys deleted and the service restarted), searched
// again, deleted. Also `npm run example:patients`'s launcher.

const test = require('node:test');
const { describe, before, after } = test;
const assert = require('node:assert/strict');
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const mongoose = require('mongoose');

const { startServer, withTimeout } = require('./harness');
const { buildExample, EXAMPLE, DIST } = require('./example-helpers');
const { walkthrough } = require('../examples/patients-api/walkthrough');

const it = (name, fn) => test.it(name, (t) => withTimeout(fn(t), 120_000));
const ROOT = path.join(__dirname, '..');
const TOKEN = 'walkthrough-token-0123456789';
const CIPHERTEXT = /^\d\d:[0-9a-f]{32}:[0-9a-f]{32}:([0-9a-f]{2})*$/;

/** Runs a shell command from the repository root; resolves { code, stdout, stderr }. */
function sh(command, env) {
  return new Promise((resolve) => {
    execFile('bash', ['-c', command], { cwd: ROOT, env, maxBuffer: 1 << 24 }, (err, stdout, stderr) =>
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Starts dist/server.js; resolves { url, stop(), output() } once it listens. */
function startService(env) {
  const child = spawn(process.execPath, [path.join(DIST, 'server.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return new Promise((resolve, reject) => {
    const onData = (chunk) => {
      output += chunk;
      const match = /LISTENING (\S+)/.exec(output);
      if (match) resolve({ url: match[1], output: () => output, stop: () => (child.kill('SIGTERM'), exited) });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => (output += chunk));
    child.once('exit', (code) => reject(new Error(`the service exited with ${code}: ${output}`)));
  });
}

/** What each walkthrough curl command must answer (by its first line). */
function expectation(command) {
  const first = command.split('\n')[0];
  if (first.includes('-X POST')) return (json) => assert.equal(json.status, 'success');
  if (first.includes('-X PUT')) return (json) => assert.deepEqual(json, { status: 'success', modified_count: 1 });
  if (first.includes('-X DELETE'))
    return (json) => assert.deepEqual(json, { status: 'success', message: 'Patient deleted' });
  if (first.includes('/ssns?'))
    return (json) =>
      assert.deepEqual(
        json.map((p) => p.patientId),
        [12345678],
      );
  return (json) => assert.equal(json.patientId, 12345678, `${first} found ${JSON.stringify(json)}`);
}

describe('examples/patients-api walkthrough (README commands, a separate service process)', () => {
  let server;
  let service;
  let dir;
  let env;
  let connection;
  const logs = [];

  before(async () => {
    buildExample();
    server = await startServer();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'patients-walkthrough-'));
    env = {
      ...process.env,
      MONGODB_URI: server.uri,
      MONGODB_DB: 'fieldcrypt_example_walkthrough',
      PATIENTS_MASTER_KEY_DIR: path.join(dir, 'keys'),
      PATIENTS_KEY_VAULT_NAMESPACE: 'fieldcrypt_example_walkthrough.__keyVault',
      PATIENTS_API_TOKENS: `walker:${TOKEN}`,
      PORT: '0',
    };
    for (const name of Object.keys(env)) if (/^ENCRYPTION_(INDEX_)?KEY/.test(name)) delete env[name];
    connection = await mongoose.createConnection(server.uri, { dbName: env.MONGODB_DB }).asPromise();
    await connection.dropDatabase();
  });

  after(async () => {
    if (service) logs.push(await service.stop().then(() => service.output()));
    if (connection) {
      await connection.dropDatabase();
      await connection.close();
    }
    if (server) await server.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const get = async (url, trusted = true) => {
    const res = await fetch(service.url + url, { headers: trusted ? { authorization: `Bearer ${TOKEN}` } : {} });
    return res.json();
  };
  const restart = async () => {
    logs.push(await service.stop().then(() => service.output()));
    service = await startService(env);
  };

  it('runs every command of the README walkthrough, in order, as written', async () => {
    const steps = walkthrough('http://127.0.0.1:5000');
    assert.ok(steps.filter((s) => s.kind === 'curl').length >= 9, 'the README lost its curl commands');
    for (const step of steps) {
      if (step.kind === 'script') {
        const result = await sh(step.command, env);
        assert.equal(result.code, 0, `${step.command}: ${result.stderr}`);
        logs.push(result.stdout + result.stderr);
        if (!service) service = await startService(env);
        continue;
      }
      const command = step.command.split('http://127.0.0.1:5000').join(service.url);
      const result = await sh(`${command} -sS -H 'Authorization: Bearer ${TOKEN}' -w '\\n%{http_code}'`, env);
      assert.equal(result.code, 0, `${command}: ${result.stderr}`);
      const lines = result.stdout.trimEnd().split('\n');
      const status = Number(lines.pop());
      assert.ok(status >= 200 && status < 300, `${command.split('\n')[0]} answered ${status}: ${lines.join('\n')}`);
      expectation(command)(JSON.parse(lines.join('\n')));
    }
  });

  it('the migrated legacy patients are encrypted, indexed and found; a master key rotation changes no document', async () => {
    const raw = connection.db.collection('patients');
    const grace = await raw.findOne({ patientId: 34567890 });
    assert.match(grace.patientRecord.ssn, CIPHERTEXT);
    assert.match(grace.patientRecord.ssn_bidx, /^\d\d:[0-9a-f]{64}$/);
    assert.equal((await get('/patients/ssn/555-66-7777')).patientId, 34567890);
    assert.equal((await get('/patients/medications/Metformin')).patientId, 45678901);
    assert.equal((await get('/patients/billing?type=Visa&number=4333333333333333')).patientId, 34567890);

    const before = await raw.find({}).sort({ patientId: 1 }).toArray();
    const rotated = await sh('node examples/patients-api/dist/scripts/rotate-key.js', env);
    assert.equal(rotated.code, 0, rotated.stderr);
    assert.deepEqual(await raw.find({}).sort({ patientId: 1 }).toArray(), before, 'a rotation changed documents');
    // Only the newest master key is left; the restarted service unwraps with it.
    const keys = fs.readdirSync(env.PATIENTS_MASTER_KEY_DIR).sort();
    const newest = keys
      .map((f) => [f, fs.statSync(path.join(env.PATIENTS_MASTER_KEY_DIR, f)).mtimeMs])
      .sort((a, b) => a[1] - b[1])
      .pop()[0];
    for (const f of keys) if (f !== newest) fs.rmSync(path.join(env.PATIENTS_MASTER_KEY_DIR, f));
    await restart();
    assert.equal((await get('/patients/ssn/555-66-7777')).patientRecord.ssn, '555-66-7777');
    assert.deepEqual(
      (await get('/patients/ssns?ssns=555-66-7777&ssns=222-33-4444')).map((p) => p.patientId).sort(),
      [34567890, 45678901],
    );
    const res = await fetch(`${service.url}/patients/34567890`, { method: 'DELETE' });
    assert.equal(res.status, 200);
    assert.equal(await get('/patients/ssn/555-66-7777'), null);
  });

  it('logs and script output never contain a plaintext or key material', async () => {
    const text = logs.join('\n') + service.output();
    for (const secret of ['987-65-4320', '527-35-3702', '4111111111111111', '555-66-7777', '4333333333333333'])
      assert.ok(!text.includes(secret), `${secret} in the output`);
    for (const f of fs.readdirSync(env.PATIENTS_MASTER_KEY_DIR)) {
      const key = fs.readFileSync(path.join(env.PATIENTS_MASTER_KEY_DIR, f));
      for (const form of [key.toString('hex'), key.toString('base64')]) assert.ok(!text.includes(form));
    }
  });
});

describe('npm run example:patients', () => {
  it('starts the service on an embedded FerretDB and prints the walkthrough with its address', async () => {
    buildExample();
    const child = spawn(process.execPath, [path.join(EXAMPLE, 'dev.js')], {
      env: { ...process.env, MONGODB_URI: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (out += c));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      await new Promise((resolve, reject) => {
        const timer = setInterval(() => {
          if (/curl -X DELETE http:\/\/127\.0\.0\.1:\d+\/patients\/12345678/.test(out)) resolve();
          else if (child.exitCode !== null) reject(new Error(out));
        }, 100);
        exited.then(() => clearInterval(timer));
        setTimeout(() => clearInterval(timer), 100_000);
      });
      const url = /running at (\S+)/.exec(out)[1];
      const res = await fetch(`${url}/patients`);
      assert.deepEqual(await res.json(), []);
      assert.match(out, /Authorization: Bearer \S+/);
    } finally {
      child.kill('SIGINT');
      await exited;
    }
  });
});
