'use strict';

// The CLI and context binding, on the real test database: `status` counts
// bound, unbound and elsewhere-bound values of bound fields; `bind` binds
// existing values in place (inside the addon, compare-and-swap, idempotent)
// and reports values bound elsewhere without touching them; `encrypt`,
// `rotate` and `decrypt` honour the binding. Each run is a child process.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { runCli, jsonOf, openCliDatabase } = require('./cli-helpers');
const { encrypt, decrypt, getKeyVersion, errorCodes } = require('..');
const { storedValueContext } = require('../lib/core/context');

const PLAINTEXTS = ['111-11-1111', '222-22-2222', '333-33-3333', '444-44-4444'];

describe('CLI: context binding', () => {
  let ctx;
  let EJSON;
  let ObjectId;
  const ids = {};
  const documentContext = (id) => storedValueContext('patients', 'ssn', EJSON.stringify(id, { relaxed: false }));
  const args = (command, ...more) => [
    command,
    '--uri',
    ctx.uri,
    '--db',
    ctx.dbName,
    '--collection',
    'patients',
    '--field',
    'ssn',
    '--bind',
    'document',
    '--json',
    '--quiet',
    ...more,
  ];
  const raw = async (key) => (await ctx.db.collection('patients').findOne({ _id: ids[key] })).ssn;

  before(async () => {
    ctx = await openCliDatabase(__filename);
    ({ EJSON, ObjectId } = require('mongodb').BSON);
    ids.a = new ObjectId();
    ids.b = 'patient-b'; // a string _id: its context differs from an ObjectId's
    ids.c = new ObjectId();
    ids.d = new ObjectId();
    ids.e = new ObjectId();
    await ctx.db.collection('patients').insertMany([
      { _id: ids.a, ssn: encrypt(PLAINTEXTS[0]) },
      { _id: ids.b, ssn: encrypt(PLAINTEXTS[1]) },
      { _id: ids.c, ssn: PLAINTEXTS[2] },
      { _id: ids.d, ssn: '' },
      // Bound to another document: what a stolen write that copies a victim's value looks like.
      { _id: ids.e, ssn: encrypt(PLAINTEXTS[3], { context: documentContext(new ObjectId()) }) },
    ]);
  });
  after(() => ctx.close());

  it('status counts bound, unbound and elsewhere-bound values and is not ok', async () => {
    const r = await runCli(args('status'), { uri: ctx.uri });
    assert.equal(r.code, 1, r.stderr);
    const field = jsonOf(r).collections[0].fields.ssn;
    assert.deepEqual(field.binding, { mode: 'document', bound: 0, unbound: 2, elsewhere: 1 });
    assert.equal(field.ok, false);
  });

  it('bind binds unbound values in place, reports the one bound elsewhere, and prints no value', async () => {
    const before = { e: await raw('e') };
    const r = await runCli(args('bind'), { uri: ctx.uri });
    assert.equal(r.code, 1, 'exit 1: an error was found');
    const summary = jsonOf(r);
    const field = summary.collections[0].perField.ssn;
    assert.equal(field.changed, 2);
    assert.equal(field.errors, 1);
    assert.match(
      r.stderr,
      new RegExp(`_id ObjectId\\("${ids.e.toHexString()}"\\), path ssn: .*\\[${errorCodes.CONTEXT_MISMATCH}\\]`),
    );
    for (const secret of [...PLAINTEXTS, before.e]) {
      assert.ok(!r.stderr.includes(secret) && !r.stdout.includes(secret), 'no plaintext or stored value printed');
    }
    for (const [key, plaintext] of [
      ['a', PLAINTEXTS[0]],
      ['b', PLAINTEXTS[1]],
    ]) {
      const stored = await raw(key);
      assert.equal(decrypt(stored, { context: documentContext(ids[key]) }), plaintext);
      assert.throws(() => decrypt(stored), { code: errorCodes.AUTH_FAILED });
      const other = key === 'a' ? ids.b : ids.a;
      assert.throws(() => decrypt(stored, { context: documentContext(other) }), { code: errorCodes.CONTEXT_MISMATCH });
    }
    assert.equal(await raw('c'), PLAINTEXTS[2], 'plaintext is left for encrypt');
    assert.equal(await raw('d'), '');
    assert.equal(await raw('e'), before.e, 'a value bound elsewhere is never rewritten');
  });

  it('bind again changes nothing', async () => {
    const a = await raw('a');
    const r = await runCli(args('bind'), { uri: ctx.uri });
    const field = jsonOf(r).collections[0].perField.ssn;
    assert.equal(field.changed, 0);
    assert.equal(field.bound, 2);
    assert.equal(await raw('a'), a);
  });

  it('encrypt and rotate write bound values; decrypt reads them', async () => {
    await ctx.db.collection('patients').deleteOne({ _id: ids.e });
    let r = await runCli(args('encrypt'), { uri: ctx.uri });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(decrypt(await raw('c'), { context: documentContext(ids.c) }), PLAINTEXTS[2]);

    r = await runCli(args('rotate', '--to', '02'), { uri: ctx.uri });
    assert.equal(r.code, 0, r.stderr);
    for (const [key, i] of [
      ['a', 0],
      ['b', 1],
      ['c', 2],
    ]) {
      const stored = await raw(key);
      assert.equal(getKeyVersion(stored), '02');
      assert.equal(decrypt(stored, { context: documentContext(ids[key]) }), PLAINTEXTS[i]);
    }

    r = await runCli([...args('status')], { uri: ctx.uri, env: { ENCRYPTION_KEY_VERSION: '02' } });
    assert.equal(r.code, 0, r.stdout);
    assert.deepEqual(jsonOf(r).collections[0].fields.ssn.binding, {
      mode: 'document',
      bound: 3,
      unbound: 0,
      elsewhere: 0,
    });

    r = await runCli(args('decrypt', '--yes'), { uri: ctx.uri });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual([await raw('a'), await raw('b'), await raw('c')], PLAINTEXTS.slice(0, 3));
  });

  it('rotate binds unbound values on a bound field as it re-encrypts them', async () => {
    await ctx.db.collection('patients').updateOne({ _id: ids.a }, { $set: { ssn: encrypt(PLAINTEXTS[0]) } });
    const r = await runCli(args('rotate', '--to', '02'), { uri: ctx.uri });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(decrypt(await raw('a'), { context: documentContext(ids.a) }), PLAINTEXTS[0]);
  });

  it('a config target binds by collection', async () => {
    const coll = ctx.db.collection('staff');
    const { insertedId } = await coll.insertOne({ ssn: encrypt('555-55-5555'), phone: encrypt('555-0100') });
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'fieldcrypt-')), 'fieldcrypt.config.js');
    fs.writeFileSync(
      file,
      `module.exports = { targets: [{ collection: 'staff', fields: ['ssn', 'phone'], bind: { ssn: 'collection' } }] };`,
    );
    const r = await runCli(['bind', '--uri', ctx.uri, '--db', ctx.dbName, '--config', file, '--json', '--quiet'], {
      uri: ctx.uri,
    });
    assert.equal(r.code, 2, 'phone is not bound: bind refuses the target');
    assert.match(r.stderr, /staff\.phone is not a bound field/);
    fs.writeFileSync(
      file,
      `module.exports = { targets: [{ collection: 'staff', fields: ['ssn'], bind: 'collection' }] };`,
    );
    const ok = await runCli(['bind', '--uri', ctx.uri, '--db', ctx.dbName, '--config', file, '--json', '--quiet'], {
      uri: ctx.uri,
    });
    assert.equal(ok.code, 0, ok.stderr);
    const doc = await coll.findOne({ _id: insertedId });
    assert.equal(decrypt(doc.ssn, { context: storedValueContext('staff', 'ssn') }), '555-55-5555');
    assert.equal(decrypt(doc.phone), '555-0100', 'an unbound field is left unbound');
  });

  it("a config model takes its bindings from its schema (the plugin's bind option)", async () => {
    const coll = ctx.db.collection('members');
    const { insertedId } = await coll.insertOne({ name: 'M', ssn: encrypt('666-66-6666'), note: encrypt('hello') });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldcrypt-cli-binding-'));
    try {
      const file = path.join(dir, 'fieldcrypt.config.js');
      fs.writeFileSync(
        file,
        `const mongoose = require(${JSON.stringify(require.resolve('mongoose'))});
const { fieldEncryption } = require(${JSON.stringify(path.join(__dirname, '..'))});
const m = new mongoose.Mongoose();
const schema = new m.Schema({ name: String, ssn: { type: String, encrypted: true, bind: 'document' }, note: { type: String, encrypted: true } });
schema.plugin(fieldEncryption);
const Member = m.model('Member', schema, 'members');
module.exports = { db: ${JSON.stringify(ctx.dbName)}, targets: [{ model: Member, fields: ['ssn'] }] };
`,
      );
      const r = await runCli(['bind', '--config', file, '--json', '--quiet'], { uri: ctx.uri });
      assert.equal(r.code, 0, r.stderr);
      const doc = await coll.findOne({ _id: insertedId });
      const context = storedValueContext('members', 'ssn', EJSON.stringify(insertedId, { relaxed: false }));
      assert.equal(decrypt(doc.ssn, { context }), '666-66-6666');
      assert.equal(decrypt(doc.note), 'hello');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('usage errors: bind without a binding, an unknown mode, --bind without --field', async () => {
    const base = ['--uri', ctx.uri, '--db', ctx.dbName, '--collection', 'patients'];
    let r = await runCli(['bind', ...base, '--field', 'ssn'], { uri: ctx.uri });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /patients\.ssn is not a bound field/);
    r = await runCli(['bind', ...base, '--field', 'ssn', '--bind', 'row'], { uri: ctx.uri });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--bind expects collection or document/);
    r = await runCli(['status', ...base, '--bind', 'document'], { uri: ctx.uri });
    assert.equal(r.code, 2);
  });
});
