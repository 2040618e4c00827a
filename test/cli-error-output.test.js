'use strict';

// The CLI never prints a value: on every error path (a tampered value, a
// value bound to another document, a server error on one document: a
// duplicate key, a document validation failure) its stdout and stderr, with
// and without --json, hold neither a stored value (before or after the run)
// nor a plaintext. Each run is a child process on the test server.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { runCli, jsonOf, openCliDatabase } = require('./cli-helpers');
const { encrypt, errorCodes } = require('..');
const { storedValueContext } = require('../lib/core/context');
const { isFerretDB } = require('./plugin-helpers');

const plain = (tag, i) => `PLAIN-${tag}-${i}-secret-zz`;

/** A stored value with one hex digit of its ciphertext changed. */
function tamper(stored) {
  const i = stored.length - 3;
  return stored.slice(0, i) + (stored[i] === '0' ? '1' : '0') + stored.slice(i + 1);
}

/** Asserts that no secret (nor its first 24 characters, nor a hex run of it) is in the output. */
function assertNoValue(result, secrets, what) {
  const output = `${result.stdout}\n${result.stderr}`;
  for (const secret of secrets) {
    if (typeof secret !== 'string' || secret.length < 8) continue;
    assert.ok(!output.includes(secret), `${what}: the output holds a value (${secret.length} chars):\n${output}`);
    // Parts too: an IV, a tag, a ciphertext, the start of a plaintext.
    const parts = secret.includes(':') ? secret.split(':').filter((p) => p.length >= 16) : [secret.slice(0, 24)];
    for (const part of parts)
      assert.ok(!output.includes(part), `${what}: the output holds part of a value:\n${output}`);
  }
}

describe('CLI: no value in any error output', () => {
  let t;
  const common = (name) => ['--uri', t.uri, '--db', t.dbName, '--collection', name, '--field', 'ssn'];
  const storedValues = async (name) => (await t.db.collection(name).find().toArray()).map((d) => d.ssn);

  before(async () => {
    t = await openCliDatabase(__filename);
  });
  after(() => t && t.close());

  /** Runs `args` with and without --json; checks the exit code, the errors reported, and that no value is printed. */
  async function check(name, args, { secrets, errors, code = 1, errorCode }) {
    for (const json of [false, true]) {
      const before = await storedValues(name);
      const r = await runCli([...args, ...(json ? ['--json'] : [])], { uri: t.uri });
      const what = `${args[0]}${json ? ' --json' : ''}`;
      assert.equal(r.code, code, `${what}: ${r.stderr}`);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('fieldcrypt: error: '));
      assert.equal(lines.length, errors, `${what}: one error line per failed value:\n${r.stderr}`);
      if (errorCode) for (const line of lines) assert.match(line, errorCode, what);
      if (json) {
        const [c] = jsonOf(r).collections;
        assert.equal(c.errors, errors, what);
        assert.equal(c.firstErrors.length, errors, what);
      }
      assertNoValue(r, [...secrets, ...before, ...(await storedValues(name))], what);
    }
  }

  it('a tampered value: rotate, decrypt, status, encrypt', async () => {
    const coll = t.db.collection('tampered');
    const plaintexts = [0, 1, 2].map((i) => plain('tampered', i));
    const originals = plaintexts.map((p) => encrypt(p));
    await coll.insertMany([
      { i: 0, ssn: tamper(originals[0]) },
      { i: 1, ssn: originals[1] },
      { i: 2, ssn: plaintexts[2] },
    ]);
    const secrets = [...plaintexts, ...originals];
    await check('tampered', ['rotate', ...common('tampered'), '--to', '02', '--quiet'], {
      secrets,
      errors: 1,
      errorCode: new RegExp(`\\[${errorCodes.AUTH_FAILED}\\]`),
    });
    await check('tampered', ['decrypt', ...common('tampered'), '--yes', '--quiet'], {
      secrets,
      errors: 1,
      errorCode: new RegExp(`\\[${errorCodes.AUTH_FAILED}\\]`),
    });
    // status and encrypt do not decrypt: no error, and still no value printed.
    for (const command of ['status', 'encrypt']) {
      const r = await runCli([command, ...common('tampered'), '--quiet'], { uri: t.uri });
      assertNoValue(r, [...secrets, ...(await storedValues('tampered'))], command);
    }
  });

  it('a value bound to another document: bind, rotate, decrypt, status', async () => {
    const { EJSON, ObjectId } = require('mongodb').BSON;
    const coll = t.db.collection('elsewhere');
    const victim = new ObjectId();
    const context = storedValueContext('elsewhere', 'ssn', EJSON.stringify(victim, { relaxed: false }));
    const plaintexts = [0, 1].map((i) => plain('elsewhere', i));
    await coll.insertMany([
      { i: 0, ssn: encrypt(plaintexts[0], { context }) },
      { i: 1, ssn: encrypt(plaintexts[1]) },
    ]);
    const bound = [...common('elsewhere'), '--bind', 'document', '--quiet'];
    const errorCode = new RegExp(`\\[${errorCodes.CONTEXT_MISMATCH}\\]`);
    await check('elsewhere', ['bind', ...bound], { secrets: plaintexts, errors: 1, errorCode });
    await check('elsewhere', ['rotate', ...bound, '--to', '02'], { secrets: plaintexts, errors: 1, errorCode });
    await check('elsewhere', ['decrypt', ...bound, '--yes'], { secrets: plaintexts, errors: 1, errorCode });
    const r = await runCli(['status', ...bound, '--json'], { uri: t.uri });
    assert.equal(jsonOf(r).collections[0].fields.ssn.binding.elsewhere, 1);
    assertNoValue(r, [...plaintexts, ...(await storedValues('elsewhere'))], 'status');
  });

  it('a duplicate key (decrypt into a unique index): server error code only', async (t2) => {
    const coll = t.db.collection('dupkey');
    const p = plain('dupkey', 0);
    const stored = [encrypt(p), encrypt(p), encrypt(plain('dupkey', 1))];
    await coll.insertMany(stored.map((ssn, i) => ({ i, ssn })));
    await coll.createIndex({ ssn: 1 }, { unique: true });
    // Does the server enforce it? (A probe outside the run.)
    let enforced = false;
    try {
      await coll.insertOne({ i: 99, ssn: stored[2] });
      await coll.deleteOne({ i: 99 });
    } catch (err) {
      enforced = err.code === 11000;
    }
    if (!enforced)
      return t2.skip(`${process.env.FIELDCRYPT_TEST_SERVER || 'this server'} does not enforce unique indexes`);
    // Which outcome is right depends on the server, not on what the CLI printed.
    const ferret = await isFerretDB({ db: t.db });
    const secrets = [p, plain('dupkey', 1), ...stored];
    for (const json of [false, true]) {
      const before = await storedValues('dupkey');
      const r = await runCli(['decrypt', ...common('dupkey'), '--yes', '--quiet', ...(json ? ['--json'] : [])], {
        uri: t.uri,
      });
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.split('\n').filter((l) => l.startsWith('fieldcrypt: error: '));
      if (!ferret) {
        // MongoDB, mongo-java-server: a per-document error, the run goes on.
        assert.equal(lines.length, 1, r.stderr);
        assert.match(lines[0], /server error 11000/);
      } else {
        // FerretDB v1 reports the update's duplicate key as an internal error, which stops the run.
        assert.match(r.stderr, /the database refused an operation: server error \d+/);
      }
      assertNoValue(r, [...secrets, ...before, ...(await storedValues('dupkey'))], `decrypt${json ? ' --json' : ''}`);
    }
    const docs = await coll.find().sort({ i: 1 }).toArray();
    assert.ok(docs.filter((d) => d.ssn === p).length <= 1, 'never two equal values under a unique index');
  });

  it('a document validation failure (a validator that refuses ciphertext): server error code only', async (t2) => {
    try {
      await t.db.createCollection('validated', {
        validator: { $jsonSchema: { properties: { ssn: { bsonType: 'string', maxLength: 40 } } } },
      });
    } catch (err) {
      return t2.skip(`the server refuses collection validators (${err.codeName || err.code})`);
    }
    const coll = t.db.collection('validated');
    const plaintexts = [0, 1].map((i) => plain('valid', i));
    let enforced = false;
    try {
      await coll.insertOne({ i: 99, ssn: 'x'.repeat(60) });
      await coll.deleteOne({ i: 99 });
    } catch (err) {
      enforced = err.code === 121;
    }
    if (!enforced) return t2.skip(`${process.env.FIELDCRYPT_TEST_SERVER || 'this server'} does not enforce validators`);
    await coll.insertMany(plaintexts.map((ssn, i) => ({ i, ssn })));
    await check('validated', ['encrypt', ...common('validated'), '--quiet'], {
      secrets: plaintexts,
      errors: 2,
      errorCode: /server error 121/,
    });
  });
});
