'use strict';

// examples/patients-api with AWS KMS: the service's data keys wrapped by a
// CMK on a real KMS API (moto, started by the harness on loopback, the real
// @aws-sdk/client-kms pointed at it). make-data-key creates both keys under
// the CMK; the service (its own process) stores and finds patients;
// rotate-key rewraps them under a second CMK with no document changed; the
// restarted service, with the first CMK disabled, still finds them.

const test = require('node:test');
const { describe, before, after } = test;
const assert = require('node:assert/strict');
const { execFile, spawn } = require('node:child_process');
const path = require('node:path');
const mongoose = require('mongoose');
const kmsSdk = require('@aws-sdk/client-kms');

const { startServer, withTimeout } = require('./harness');
const { startMoto } = require('./moto');
const { buildExample, DIST, httpRequest, SEED } = require('./example-helpers');

const it = (name, fn) => test.it(name, (t) => withTimeout(fn(t), 120_000));
const TOKEN = 'aws-walkthrough-token-0123456789';

function script(name, env) {
  return new Promise((resolve) => {
    execFile(process.execPath, [path.join(DIST, 'scripts', `${name}.js`)], { env }, (err, stdout, stderr) =>
      resolve({ code: err ? (err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

function startService(env) {
  const child = spawn(process.execPath, [path.join(DIST, 'server.js')], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (chunk) => {
      output += chunk;
      const match = /LISTENING (\S+)/.exec(output);
      if (match) resolve({ url: match[1], output: () => output, stop: () => (child.kill('SIGTERM'), exited) });
    });
    child.stderr.on('data', (chunk) => (output += chunk));
    child.once('exit', (code) => reject(new Error(`the service exited with ${code}: ${output}`)));
  });
}

describe('examples/patients-api on AWS KMS (moto)', () => {
  let server;
  let moto;
  let kms;
  let connection;
  let service;
  let env;
  let cmks;

  before(async () => {
    buildExample();
    server = await startServer();
    moto = await startMoto();
    const { region, endpoint, accessKeyId, secretAccessKey } = moto.clientOptions;
    kms = new kmsSdk.KMSClient({ region, endpoint, credentials: { accessKeyId, secretAccessKey } });
    cmks = [];
    for (let i = 0; i < 2; i++) cmks.push((await kms.send(new kmsSdk.CreateKeyCommand({}))).KeyMetadata.Arn);
    env = {
      ...process.env,
      MONGODB_URI: server.uri,
      MONGODB_DB: 'fieldcrypt_example_aws',
      PATIENTS_KEY_VAULT_NAMESPACE: 'fieldcrypt_example_aws.__keyVault',
      PATIENTS_KMS_KEY_ID: cmks[0],
      PATIENTS_API_TOKENS: `aws-walker:${TOKEN}`,
      AWS_REGION: region,
      AWS_ENDPOINT_URL_KMS: endpoint,
      AWS_ACCESS_KEY_ID: accessKeyId,
      AWS_SECRET_ACCESS_KEY: secretAccessKey,
      PORT: '0',
    };
    for (const name of Object.keys(env)) if (/^ENCRYPTION_(INDEX_)?KEY/.test(name)) delete env[name];
    connection = await mongoose.createConnection(server.uri, { dbName: env.MONGODB_DB }).asPromise();
    await connection.dropDatabase();
  });

  after(async () => {
    if (service) await service.stop();
    if (connection) {
      await connection.dropDatabase();
      await connection.close();
    }
    if (moto) await moto.stop();
    if (server) await server.stop();
  });

  const call = async (method, url, body) => {
    const res = await httpRequest(service.url + url, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body && JSON.stringify(body),
    });
    return { status: res.status, json: res.text ? JSON.parse(res.text) : undefined };
  };

  it('make-data-key wraps both data keys under the CMK; the service stores and finds patients', async () => {
    const made = await script('make-data-key', env);
    assert.equal(made.code, 0, made.stderr);
    const vault = await connection.db.collection('__keyVault').find({}).sort({ purpose: 1 }).toArray();
    assert.deepEqual(
      vault.map((d) => [d.purpose, d.masterKey.provider, d.masterKey.key]),
      [
        ['encryption', 'aws', cmks[0]],
        ['index', 'aws', cmks[0]],
      ],
    );
    service = await startService(env);
    assert.equal((await call('POST', '/patients', SEED)).status, 201);
    assert.equal((await call('GET', '/patients/ssn/987-65-4320')).json.patientRecord.ssn, '987-65-4320');
    assert.equal((await call('GET', '/patients/billing', SEED.patientRecord.billing)).json.patientId, SEED.patientId);
  });

  it('rotate-key rewraps under a second CMK: no document changes, and the first CMK is no longer needed', async () => {
    const before = await connection.db.collection('patients').find({}).toArray();
    const rotated = await script('rotate-key', { ...env, PATIENTS_NEW_KMS_KEY_ID: cmks[1] });
    assert.equal(rotated.code, 0, rotated.stderr);
    const vault = await connection.db.collection('__keyVault').find({}).toArray();
    assert.deepEqual(new Set(vault.map((d) => d.masterKey.key)), new Set([cmks[1]]));
    assert.deepEqual(await connection.db.collection('patients').find({}).toArray(), before);

    await kms.send(new kmsSdk.DisableKeyCommand({ KeyId: cmks[0].split('/').pop() }));
    await service.stop();
    service = await startService({ ...env, PATIENTS_KMS_KEY_ID: cmks[1] });
    const found = await call('GET', '/patients/medications/Levothyroxine');
    assert.equal(found.json.patientRecord.ssn, '987-65-4320');
    assert.equal((await call('DELETE', `/patients/${SEED.patientId}`)).json.status, 'success');
  });
});
