'use strict';

// Context binding in the core API: values bound to where they belong
// (AES-GCM additional data) decrypt only there. The additional data's
// encoding is pinned against node:crypto with an AAD built here by hand.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { randomKeyHex, nodeEncrypt, throwsCode } = require('./helpers');

const KEY = randomKeyHex();
const saved = process.env.ENCRYPTION_KEY;
process.env.ENCRYPTION_KEY = KEY;
const {
  encrypt,
  decrypt,
  encryptBuffer,
  decryptBuffer,
  reEncrypt,
  encryptMany,
  decryptMany,
  encryptManyAsync,
  decryptManyAsync,
  reloadKeys,
  FieldCryptError,
  errorCodes,
} = require('fieldcrypt');

before(() => reloadKeys());
after(() => {
  if (saved === undefined) delete process.env.ENCRYPTION_KEY;
  else process.env.ENCRYPTION_KEY = saved;
  reloadKeys();
});

const HERE = { collection: 'patients', path: 'ssn', id: '65f0a1b2c3d4e5f601234567' };
const SSN = '123-45-6789';

/** The documented additional data, built independently of lib/core/context.js. */
function aadOf(context) {
  const entries = Object.entries(context).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(['fieldcrypt.context.v1', entries]), 'utf8');
}

function nodeSeal(plaintext, aad) {
  const iv = crypto.randomBytes(16);
  const c = crypto.createCipheriv('aes-256-gcm', Buffer.from(KEY, 'hex'), iv);
  c.setAAD(aad);
  const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return `01:${iv.toString('hex')}:${c.getAuthTag().toString('hex')}:${ct.toString('hex')}`;
}

function nodeOpen(stored, aad) {
  const [, iv, tag, ct] = stored.split(':');
  const d = crypto.createDecipheriv('aes-256-gcm', Buffer.from(KEY, 'hex'), Buffer.from(iv, 'hex'));
  d.setAAD(aad);
  d.setAuthTag(Buffer.from(tag, 'hex'));
  return Buffer.concat([d.update(Buffer.from(ct, 'hex')), d.final()]).toString('utf8');
}

const code = (fn, expected) => throwsCode(fn, expected, FieldCryptError);

test('a bound value is AES-GCM with the documented additional data, both ways with node:crypto', () => {
  for (const text of ['', SSN, 'ünïcödé 🛂', 'x'.repeat(300), 'y'.repeat(200_000)]) {
    assert.equal(nodeOpen(encrypt(text, { context: HERE }), aadOf(HERE)), text);
    assert.equal(decrypt(nodeSeal(text, aadOf(HERE)), { context: HERE }), text);
  }
  // The order of the context's keys does not matter.
  const reordered = { path: 'ssn', id: HERE.id, collection: 'patients' };
  assert.equal(decrypt(encrypt(SSN, { context: reordered }), { context: HERE }), SSN);
});

test('a bound value read at another collection, path or document is CONTEXT_MISMATCH, never its plaintext', () => {
  const stored = encrypt(SSN, { context: HERE });
  for (const elsewhere of [
    { ...HERE, collection: 'staff' },
    { ...HERE, path: 'billing.number' },
    { ...HERE, id: '65f0a1b2c3d4e5f601234568' },
    { collection: 'patients', path: 'ssn' },
  ]) {
    const err = code(() => decrypt(stored, { context: elsewhere }), errorCodes.CONTEXT_MISMATCH);
    assert.match(err.message, /does not belong here/);
    assert.ok(!err.message.includes(SSN));
    code(() => decrypt(stored, { context: elsewhere, allowUnbound: true }), errorCodes.CONTEXT_MISMATCH);
  }
  // Read with no context at all: an authentication failure, as for a tampered value.
  code(() => decrypt(stored), errorCodes.AUTH_FAILED);
});

test('an unbound value read with a context is UNBOUND_VALUE unless allowUnbound (a migration window)', () => {
  const unbound = encrypt(SSN);
  const legacy = nodeEncrypt(KEY, SSN); // written by the node:crypto implementation
  for (const value of [unbound, legacy]) {
    const err = code(() => decrypt(value, { context: HERE }), errorCodes.UNBOUND_VALUE);
    assert.ok(!err.message.includes(SSN));
    assert.equal(decrypt(value, { context: HERE, allowUnbound: true }), SSN);
    assert.equal(decrypt(value), SSN);
  }
  // allowUnbound does not let a bound value through at the wrong place (see above), nor a tampered one.
  const tampered = unbound.slice(0, -2) + (unbound.endsWith('00') ? '01' : '00');
  code(() => decrypt(tampered, { context: HERE, allowUnbound: true }), errorCodes.CONTEXT_MISMATCH);
});

test('Buffers bind the same way', () => {
  const bytes = Buffer.from([0, 1, 2, 250, 255]);
  const stored = encryptBuffer(bytes, { context: HERE });
  assert.deepEqual(decryptBuffer(stored, { context: HERE }), bytes);
  code(() => decryptBuffer(stored, { context: { ...HERE, id: 'other' } }), errorCodes.CONTEXT_MISMATCH);
  code(() => decryptBuffer(encryptBuffer(bytes), { context: HERE }), errorCodes.UNBOUND_VALUE);
  assert.deepEqual(decryptBuffer(encryptBuffer(bytes), { context: HERE, allowUnbound: true }), bytes);
});

test('batches bind every value to their context; failures name the index', async () => {
  const values = Array.from({ length: 2000 }, (_, i) => `${i}-${'v'.repeat(i % 50)}`);
  for (const [many, manyDecrypt] of [
    [encryptMany, decryptMany],
    [encryptManyAsync, decryptManyAsync],
  ]) {
    const stored = await many(values, { context: HERE });
    assert.equal(nodeOpen(stored[7], aadOf(HERE)), values[7]);
    assert.deepEqual(await manyDecrypt(stored, { context: HERE }), values);
    const mixed = [...stored];
    mixed[1234] = encrypt(values[1234]);
    await assert.rejects(
      async () => manyDecrypt(mixed, { context: HERE }),
      (err) => err.code === errorCodes.UNBOUND_VALUE && err.index === 1234,
    );
    assert.deepEqual(await manyDecrypt(mixed, { context: HERE, allowUnbound: true }), values);
    mixed[1500] = encrypt(values[1500], { context: { ...HERE, path: 'other' } });
    await assert.rejects(
      async () => manyDecrypt(mixed, { context: HERE, allowUnbound: true }),
      (err) => err.code === errorCodes.CONTEXT_MISMATCH && err.index === 1500,
    );
  }
  // Long values go value by value: bound all the same.
  const long = ['z'.repeat(5000), 'w'.repeat(6000)];
  const stored = encryptMany(long, { context: HERE });
  assert.equal(nodeOpen(stored[1], aadOf(HERE)), long[1]);
  code(() => decryptMany(stored, { context: { ...HERE, id: 'x' } }), errorCodes.CONTEXT_MISMATCH);
});

test('reEncrypt binds, rotates and moves values inside the addon', () => {
  const unbound = nodeEncrypt(KEY, SSN);
  // Bind an unbound value in place.
  const bound = reEncrypt(unbound, '01', { context: HERE, fromContext: null });
  assert.equal(nodeOpen(bound, aadOf(HERE)), SSN);
  // Rotate a bound value: read and written in the same context by default.
  const rotated = reEncrypt(bound, '01', { context: HERE });
  assert.notEqual(rotated, bound);
  assert.equal(decrypt(rotated, { context: HERE }), SSN);
  // Bound or not, with allowUnbound (what a migration does).
  assert.equal(decrypt(reEncrypt(unbound, '01', { context: HERE, allowUnbound: true }), { context: HERE }), SSN);
  assert.equal(decrypt(reEncrypt(bound, '01', { context: HERE, allowUnbound: true }), { context: HERE }), SSN);
  // Without allowUnbound, an unbound value is refused, and a bound one read at the wrong place too.
  code(() => reEncrypt(unbound, '01', { context: HERE }), errorCodes.UNBOUND_VALUE);
  code(() => reEncrypt(bound, '01', { context: { ...HERE, id: 'x' } }), errorCodes.CONTEXT_MISMATCH);
  // Move: read in one context, written in another.
  const there = { ...HERE, id: 'another' };
  const moved = reEncrypt(bound, '01', { context: there, fromContext: HERE });
  assert.equal(decrypt(moved, { context: there }), SSN);
  // Unbind (to phase binding out).
  assert.equal(decrypt(reEncrypt(bound, '01', { context: null, fromContext: HERE })), SSN);
});

test('the decrypting calls ignore a second argument that is not an object, as before (stored.map(decrypt))', async () => {
  const stored = ['a', 'b', 'c'].map((v) => encrypt(v));
  assert.deepEqual(stored.map(decrypt), ['a', 'b', 'c']);
  assert.deepEqual(
    stored
      .map((s) => encryptBuffer(Buffer.from(decrypt(s))))
      .map(decryptBuffer)
      .map(String),
    ['a', 'b', 'c'],
  );
  assert.deepEqual([stored].map(decryptMany), [['a', 'b', 'c']]);
  assert.deepEqual(await Promise.all([stored].map(decryptManyAsync)), [['a', 'b', 'c']]);
});

test('the encoding writes strings exactly as JSON.stringify does, escapes included', () => {
  const { jsonString, encodeContext } = require('../lib/core/context');
  const samples = [
    '',
    'plain',
    '{"$oid":"65f0"}',
    'back\\slash',
    'tab\there',
    'nul\u0000',
    '\u001f',
    'é€😀',
    '\ud800',
    'x\udc00y',
    '"\\\n',
  ];
  for (const s of samples) assert.equal(jsonString(s), JSON.stringify(s), JSON.stringify(s));
  for (const s of samples) {
    const context = { [s || 'k']: s, a: 'b' };
    assert.equal(encodeContext(context, 't'), aadOf(context).toString('utf8'));
  }
});

test('a context object changed between calls is encoded again (its last encoding is reused only while unchanged)', () => {
  const context = { collection: 'patients', path: 'ssn', id: '1' };
  const stored = encrypt(SSN, { context });
  assert.equal(decrypt(stored, { context }), SSN);
  context.id = '2';
  code(() => decrypt(stored, { context }), errorCodes.CONTEXT_MISMATCH);
  context.id = '1';
  assert.equal(decrypt(stored, { context }), SSN);
  context.extra = 'x';
  code(() => decrypt(stored, { context }), errorCodes.CONTEXT_MISMATCH);
  delete context.extra;
  delete context.id;
  context.id = '1'; // same entries, another key order: the same context
  assert.equal(decrypt(stored, { context }), SSN);
});

test('a reused context object is encoded again when every value changes, or a name changes under the same value', () => {
  // The cache check must compare every name and every value: found by
  // mutation testing (a check that stopped at the first equal value, or
  // compared values only, reused the old encoding here).
  const single = { id: '1' };
  const stored = encrypt(SSN, { context: single });
  single.id = '2';
  code(() => decrypt(stored, { context: single }), errorCodes.CONTEXT_MISMATCH);
  single.id = '1';
  assert.equal(decrypt(stored, { context: single }), SSN);
  delete single.id;
  single.row = '1'; // another name, the same value
  code(() => decrypt(stored, { context: single }), errorCodes.CONTEXT_MISMATCH);
  assert.equal(decrypt(encrypt(SSN, { context: single }), { context: { row: '1' } }), SSN);
});

test('contexts are validated, naming the entry but never a value', () => {
  for (const bad of [{}, [], 'patients', 42, { collection: 'patients', id: 42 }, { path: null }]) {
    const err = code(() => encrypt(SSN, { context: bad }), errorCodes.INVALID_ARGUMENT);
    assert.match(err.message, /options\.context/);
    assert.ok(!err.message.includes(SSN));
  }
  code(() => decrypt(encrypt(SSN), { context: HERE, allowUnbound: 'yes' }), errorCodes.INVALID_ARGUMENT);
  // context: null or undefined is no context.
  assert.equal(decrypt(encrypt(SSN, { context: null }), { context: undefined }), SSN);
});
