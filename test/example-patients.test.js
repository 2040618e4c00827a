'use strict';

// examples/patients-api end to end, over real HTTP on loopback: every route,
// what is stored (raw documents through the driver), what is sent to the
// server (command monitoring), what responses and logs contain, the audit log.
// The README walkthrough and the legacy path run in test/example-patients-walkthrough.test.js.

const test = require('node:test');
const { describe, before, after } = test;
const assert = require('node:assert/strict');
const mongoose = require('mongoose');

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer, withTimeout } = require('./harness');
const { buildExample, exampleModule, keysForTest, httpRequest, SEED, OTHER } = require('./example-helpers');

const it = (name, fn) => test.it(name, (t) => withTimeout(fn(t), 60_000));

const CIPHERTEXT = /^\d\d:[0-9a-f]{32}:[0-9a-f]{32}:([0-9a-f]{2})*$/;
const INDEX = /^\d\d:[0-9a-f]{64}$/;
const TOKEN = 'trusted-token-0123456789';
const SECRETS = [
  '987-65-4320',
  '527-35-3702',
  '4111111111111111',
  '5111 1111 1111 1111',
  'Atorvastatin',
  'Levothyroxine',
];

describe('examples/patients-api', () => {
  let server;
  let connection;
  let http;
  let base;
  let keys;
  let dir;
  const logLines = [];
  const commands = [];

  const call = async (method, path, { body, rawBody, trusted = false, headers = {} } = {}) => {
    const res = await httpRequest(base + path, {
      method,
      headers: {
        ...(body !== undefined || rawBody !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(trusted ? { authorization: `Bearer ${TOKEN}` } : {}),
        ...headers,
      },
      body: rawBody ?? (body === undefined ? undefined : JSON.stringify(body)),
    });
    const { text } = res;
    return { status: res.status, text, json: text ? JSON.parse(text) : undefined };
  };
  const raw = () => connection.db.collection('patients');
  const audit = () => connection.db.collection('audit');

  before(async () => {
    buildExample();
    server = await startServer();
    connection = await mongoose
      .createConnection(server.uri, { dbName: 'fieldcrypt_example_patients', monitorCommands: true })
      .asPromise();
    await connection.dropDatabase();
    connection.getClient().on('commandStarted', (event) => commands.push(JSON.stringify(event.command)));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'patients-e2e-'));
    keys = (await keysForTest(connection, dir)).vault;
    const { createApp } = exampleModule('app');
    const { parseTokens } = exampleModule('caller');
    const app = createApp({ connection, tokens: parseTokens(`alice:${TOKEN}`), log: (line) => logLines.push(line) });
    await connection.model('Patient').syncIndexes();
    await new Promise((resolve) => {
      http = app.listen(0, '127.0.0.1', resolve);
    });
    base = `http://127.0.0.1:${http.address().port}`;
  });

  after(async () => {
    if (http) await new Promise((resolve) => http.close(resolve));
    if (keys) await keys.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
    if (connection) {
      await connection.dropDatabase();
      await connection.close();
    }
    if (server) await server.stop();
  });

  it('POST /patients stores ciphertext and index values, and sends no plaintext', async () => {
    commands.length = 0;
    const res = await call('POST', '/patients', { body: SEED });
    assert.equal(res.status, 201);
    assert.equal(res.json.status, 'success');
    assert.match(res.json.inserted_id, /^[0-9a-f]{24}$/);
    assert.equal((await call('POST', '/patients', { body: OTHER })).status, 201);

    const stored = await raw().findOne({ patientId: SEED.patientId });
    assert.equal(stored.firstName, 'Jon');
    assert.match(stored.patientRecord.ssn, CIPHERTEXT);
    assert.match(stored.patientRecord.billing, CIPHERTEXT);
    assert.equal(stored.medications.length, 2);
    for (const m of stored.medications) assert.match(m, CIPHERTEXT);
    assert.match(stored.patientRecord.ssn_bidx, INDEX);
    assert.match(stored.patientRecord.billing_bidx, INDEX);
    assert.equal(stored.medications_bidx.length, 2);
    for (const m of stored.medications_bidx) assert.match(m, INDEX);
    const text = JSON.stringify(stored) + commands.join('\n');
    for (const secret of SECRETS) assert.ok(!text.includes(secret), `${secret} reached the server`);
  });

  it('GET /patients?firstName=Jon returns the one patient, without SSN or card number for an anonymous caller', async () => {
    const res = await call('GET', '/patients?firstName=Jon');
    assert.equal(res.status, 200);
    assert.equal(res.json.patientId, SEED.patientId);
    assert.deepEqual(res.json.patientRecord, { billing: { type: 'Visa' } });
    assert.deepEqual(res.json.medications, SEED.medications);
    assert.ok(!res.text.includes('987-65-4320') && !res.text.includes('4111111111111111'));
    assert.ok(!/_bidx|\d\d:[0-9a-f]{32}:/.test(res.text), 'index values or ciphertext in a response');
  });

  it('a trusted caller sees the SSN and card number, and each SSN decryption is audited', async () => {
    await audit().deleteMany({});
    const res = await call('GET', '/patients?firstName=Jon', { trusted: true });
    assert.deepEqual(res.json.patientRecord, SEED.patientRecord);
    const entries = await audit().find({}).toArray();
    assert.equal(entries.length, 1);
    assert.equal(entries[0].who, 'alice');
    assert.equal(entries[0].field, 'patientRecord.ssn');
    assert.equal(String(entries[0].patient), res.json._id);
    assert.ok(entries[0].at instanceof Date);

    await audit().deleteMany({});
    await call('GET', '/patients?firstName=Jon');
    assert.equal(await audit().countDocuments(), 0, 'an anonymous read decrypted an SSN');
    const wrong = await call('GET', '/patients?firstName=Jon', {
      headers: { authorization: 'Bearer not-a-token-at-all' },
    });
    assert.equal(wrong.json.patientRecord.ssn, undefined);
  });

  it('GET /patients lists every patient', async () => {
    const res = await call('GET', '/patients', { trusted: true });
    assert.deepEqual(
      res.json.map((p) => p.patientId),
      [SEED.patientId, OTHER.patientId].sort((a, b) => a - b),
    );
  });

  it('GET /patients/ssn/:ssn finds by SSN through the index, sending only index values', async () => {
    commands.length = 0;
    const res = await call('GET', '/patients/ssn/987-65-4320', { trusted: true });
    assert.equal(res.json.patientId, SEED.patientId);
    assert.equal(res.json.patientRecord.ssn, '987-65-4320');
    const find = commands.find((c) => c.includes('"find"'));
    assert.match(find, /ssn_bidx/);
    assert.ok(!commands.join('\n').includes('987-65-4320'));
    assert.equal((await call('GET', '/patients/ssn/000-00-0000')).json, null);
  });

  it('GET /patients/ssns finds by a list of SSNs', async () => {
    const res = await call('GET', `/patients/ssns?ssns=987-65-4320&ssns=${OTHER.patientRecord.ssn}&ssns=111-11-1111`);
    assert.deepEqual(res.json.map((p) => p.patientId).sort(), [SEED.patientId, OTHER.patientId].sort());
    assert.equal((await call('GET', '/patients/ssns')).status, 400);
  });

  it('GET /patients/medications/:medication finds by one medication', async () => {
    const res = await call('GET', '/patients/medications/Levothyroxine');
    assert.equal(res.json.patientId, SEED.patientId);
    assert.equal((await call('GET', '/patients/medications/Aspirin')).json, null);
  });

  it('GET /patients/billing finds by the whole billing object, from a JSON body or query parameters', async () => {
    commands.length = 0;
    const body = await call('GET', '/patients/billing', { body: { type: 'Visa', number: '4111111111111111' } });
    assert.equal(body.json.patientId, SEED.patientId);
    const reordered = await call('GET', '/patients/billing', { body: { number: '4111111111111111', type: 'Visa' } });
    assert.equal(reordered.json.patientId, SEED.patientId, 'key order must not matter');
    const query = await call('GET', '/patients/billing?type=Visa&number=4111111111111111');
    assert.equal(query.json.patientId, SEED.patientId);
    assert.equal((await call('GET', '/patients/billing?type=Visa&number=4000000000000000')).json, null);
    assert.ok(!commands.join('\n').includes('4111111111111111'));
    assert.equal((await call('GET', '/patients/billing?type=Visa')).status, 400);
  });

  it('PUT /patients/:patientId with dotted keys re-encrypts and re-indexes', async () => {
    commands.length = 0;
    const res = await call('PUT', `/patients/${SEED.patientId}`, {
      body: {
        'patientRecord.ssn': '527-35-3702',
        medications: ['Atorvastatin', 'test'],
        'patientRecord.billing': { type: 'MasterCard', number: '5111 1111 1111 1111' },
      },
    });
    assert.deepEqual(res.json, { status: 'success', modified_count: 1 });
    const stored = await raw().findOne({ patientId: SEED.patientId });
    assert.match(stored.patientRecord.ssn, CIPHERTEXT);
    assert.equal(stored.medications_bidx.length, 2);
    assert.ok(!commands.join('\n').includes('527-35-3702'));
    assert.equal((await call('GET', '/patients/ssn/527-35-3702')).json.patientId, SEED.patientId);
    assert.equal((await call('GET', '/patients/ssn/987-65-4320')).json, null, 'the old SSN still matches');
    assert.equal((await call('GET', '/patients/medications/test')).json.patientId, SEED.patientId);
    assert.equal((await call('GET', '/patients/medications/Levothyroxine')).json, null);
    const card = await call('GET', '/patients/billing', {
      body: { type: 'MasterCard', number: '5111 1111 1111 1111' },
    });
    assert.equal(card.json.patientId, SEED.patientId);
  });

  it('bad input gets a JSON 4xx, never a stack, never a value in the log', async () => {
    const malformed = await call('POST', '/patients', { rawBody: '{"patientRecord": {"ssn": "987-65-4320"' });
    assert.equal(malformed.status, 400);
    assert.equal(malformed.json.status, 'failure');
    assert.equal((await call('PUT', '/patients/999', { body: { firstName: 'X' } })).status, 404);
    assert.equal((await call('DELETE', '/patients/999')).status, 404);
    assert.equal((await call('PUT', `/patients/${SEED.patientId}`, { body: { $where: '1' } })).status, 400);
    assert.equal((await call('PUT', '/patients/abc', { body: { firstName: 'X' } })).status, 400);
    assert.equal((await call('GET', '/nowhere')).status, 404);
    // A write the library refuses: part of an object that is encrypted as a whole.
    const refused = await call('PUT', `/patients/${SEED.patientId}`, { body: { 'patientRecord.billing.number': '1' } });
    assert.equal(refused.status, 400);
    assert.match(refused.json.code, /^ERR_FIELDCRYPT_/);
    assert.equal((await call('GET', '/patients/billing?type=Visa')).status, 400);
    for (const res of [malformed, refused]) assert.ok(!/\bat .*\(.*:\d+:\d+\)/.test(res.text), 'a stack trace');
    const log = logLines.join('\n');
    for (const secret of SECRETS) assert.ok(!log.includes(secret), `${secret} in a log line`);
  });

  it('DELETE /patients/:patientId deletes', async () => {
    const res = await call('DELETE', `/patients/${SEED.patientId}`);
    assert.deepEqual(res.json, { status: 'success', message: 'Patient deleted' });
    assert.equal(await raw().countDocuments({ patientId: SEED.patientId }), 0);
  });
});
