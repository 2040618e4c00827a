'use strict';

// Key loading from the environment, each case in a child process whose
// environment is only PATH plus what the case needs. Every case also checks
// that neither key hex nor plaintext appears anywhere in the child's output.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { STRICT_FORMAT_RE, randomKeyHex, nodeEncrypt, nodeDecrypt, runChild, assertNoSecrets } = require('./helpers');

// The child reads the plaintext from FC_PLAINTEXT so that it never appears in
// the script text (which Node would print next to an uncaught error).
const PLAINTEXT = `Pässport-${crypto.randomBytes(6).toString('hex')}-✓`;

// Runs `body` after a prelude defining `f` (the package, required before any
// key is set), `attempt(fn)` and `report(obj)`; returns the parsed report.
const PRELUDE = `
'use strict';
const f = require('fieldcrypt');
const P = process.env.FC_PLAINTEXT;
function attempt(fn) {
  try {
    const value = fn();
    return { ok: true, value };
  } catch (e) {
    return { ok: false, code: e.code, name: e.name, message: e.message, stack: String(e.stack),
      isFieldCryptError: e instanceof f.FieldCryptError, keys: Object.keys(e) };
  }
}
function report(obj) { process.stdout.write(JSON.stringify(obj)); }
`;

function run(body, env, secrets) {
  const result = runChild(PRELUDE + body, { FC_PLAINTEXT: PLAINTEXT, ...env });
  const all = [PLAINTEXT, ...secrets];
  assertNoSecrets(result.stdout, all, 'child stdout');
  assertNoSecrets(result.stderr, all, 'child stderr');
  assert.equal(result.status, 0, `child failed: ${result.stderr}`);
  assert.equal(result.stderr, '', 'child wrote to stderr');
  return JSON.parse(result.stdout);
}

function assertFailure(r, code) {
  assert.equal(r.ok, false, `expected ${code}, got a value`);
  assert.equal(r.code, code, r.message);
  assert.equal(r.name, 'FieldCryptError');
  assert.equal(r.isFieldCryptError, true);
}

test('no key set: the module loads, and fails only on use with "Encryption key not found"', () => {
  const stored01 = nodeEncrypt(randomKeyHex(), 'x');
  const r = run(
    `report({
      versions: f.loadedKeyVersions(),
      isEnc: f.isEncrypted(process.env.FC_STORED),
      version: f.getKeyVersion(process.env.FC_STORED),
      enc: attempt(() => f.encrypt(P)),
      dec: attempt(() => f.decrypt(process.env.FC_STORED)),
      re: attempt(() => f.reEncrypt(process.env.FC_STORED, '01')),
      again: attempt(() => f.encrypt(P)),
    });`,
    { FC_STORED: stored01 },
    [],
  );
  assert.deepEqual(r.versions, []);
  assert.equal(r.isEnc, true);
  assert.equal(r.version, '01');
  for (const k of ['enc', 'dec', 're', 'again']) {
    assertFailure(r[k], 'ERR_FIELDCRYPT_KEY_NOT_FOUND');
    assert.match(r[k].message, /^Encryption key not found/);
    assert.match(r[k].message, /\bENCRYPTION_KEY\b/);
  }
});

test('an uncaught key error prints the code and message, and no plaintext', () => {
  const result = runChild(`require('fieldcrypt').encrypt(process.env.FC_PLAINTEXT);`, { FC_PLAINTEXT: PLAINTEXT });
  assert.notEqual(result.status, 0);
  assert.match(result.stderr, /Encryption key not found/);
  assert.match(result.stderr, /ERR_FIELDCRYPT_KEY_NOT_FOUND/);
  assertNoSecrets(result.stdout + result.stderr, [PLAINTEXT]);
});

test('a key set after require (dotenv loaded late) works', () => {
  const key = randomKeyHex();
  const r = run(
    `const failed = attempt(() => f.encrypt(P));
    process.env.ENCRYPTION_KEY = process.env.FC_LATE_KEY;
    const stored = f.encrypt(P);
    report({ failed, stored, roundTrip: f.decrypt(stored) === P, versions: f.loadedKeyVersions() });`,
    { FC_LATE_KEY: key },
    [key],
  );
  assertFailure(r.failed, 'ERR_FIELDCRYPT_KEY_NOT_FOUND');
  assert.match(r.stored, STRICT_FORMAT_RE);
  assert.match(r.stored, /^01:/);
  assert.equal(nodeDecrypt(key, r.stored), PLAINTEXT);
  assert.equal(r.roundTrip, true);
  assert.deepEqual(r.versions, ['01']);
});

test('a key set after require, before first use, works (no failure first)', () => {
  const key = randomKeyHex();
  const r = run(
    `process.env.ENCRYPTION_KEY = process.env.FC_LATE_KEY;
    report({ stored: f.encrypt(P) });`,
    { FC_LATE_KEY: key },
    [key],
  );
  assert.equal(nodeDecrypt(key, r.stored), PLAINTEXT);
});

test('a key in the environment at start works; ENCRYPTION_KEY_V01 alone works', () => {
  for (const name of ['ENCRYPTION_KEY', 'ENCRYPTION_KEY_V01']) {
    const key = randomKeyHex();
    const r = run(
      `report({ stored: f.encrypt(P), dec: f.decrypt(process.env.FC_STORED) === P });`,
      {
        [name]: key,
        FC_STORED: nodeEncrypt(key, PLAINTEXT),
      },
      [key],
    );
    assert.equal(nodeDecrypt(key, r.stored), PLAINTEXT, name);
    assert.equal(r.dec, true, name);
  }
});

test('a short key → "Invalid encryption key length", mentioning 64 hex', () => {
  const key = randomKeyHex().slice(0, 40);
  const r = run(
    `report({ enc: attempt(() => f.encrypt(P)), dec: attempt(() => f.decrypt(process.env.FC_STORED)) });`,
    { ENCRYPTION_KEY: key, FC_STORED: nodeEncrypt(randomKeyHex(), 'x') },
    [key],
  );
  for (const k of ['enc', 'dec']) {
    assertFailure(r[k], 'ERR_FIELDCRYPT_INVALID_KEY_LENGTH');
    assert.match(r[k].message, /^Invalid encryption key length/);
    assert.match(r[k].message, /64 hex/);
  }
});

test('a 64-character non-hex key → ERR_FIELDCRYPT_INVALID_KEY', () => {
  const real = randomKeyHex();
  for (const key of [`${real.slice(0, 62)}zz`, `g${real.slice(1)}`, real.replace(/^(.{30})../, '$1 x')]) {
    assert.equal(key.length, 64);
    const r = run(`report({ enc: attempt(() => f.encrypt(P)) });`, { ENCRYPTION_KEY: key }, [
      real.slice(1, 30),
      real.slice(32, 62),
    ]);
    assertFailure(r.enc, 'ERR_FIELDCRYPT_INVALID_KEY');
    assert.match(r.enc.message, /64 hexadecimal/);
  }
});

test('ENCRYPTION_KEY and ENCRYPTION_KEY_V01 set and different → ERR_FIELDCRYPT_KEY_CONFLICT', () => {
  const a = randomKeyHex();
  const b = randomKeyHex();
  const r = run(
    `report({
      enc: attempt(() => f.encrypt(P)),
      dec: attempt(() => f.decrypt(process.env.FC_STORED)),
      reload: attempt(() => f.reloadKeys()),
    });`,
    { ENCRYPTION_KEY: a, ENCRYPTION_KEY_V01: b, FC_STORED: nodeEncrypt(a, PLAINTEXT) },
    [a, b],
  );
  for (const k of ['enc', 'dec', 'reload']) {
    assertFailure(r[k], 'ERR_FIELDCRYPT_KEY_CONFLICT');
    assert.match(r[k].message, /ENCRYPTION_KEY and ENCRYPTION_KEY_V01/);
  }
});

test('ENCRYPTION_KEY and ENCRYPTION_KEY_V01 set and equal → no conflict', () => {
  const a = randomKeyHex();
  const r = run(`report({ stored: f.encrypt(P) });`, { ENCRYPTION_KEY: a, ENCRYPTION_KEY_V01: a }, [a]);
  assert.equal(nodeDecrypt(a, r.stored), PLAINTEXT);
});

test('ENCRYPTION_KEY_VERSION=02 with ENCRYPTION_KEY_V02 writes 02:, and 01 values stay readable', () => {
  const k1 = randomKeyHex();
  const k2 = randomKeyHex();
  const r = run(
    `report({ stored: f.encrypt(P), old: f.decrypt(process.env.FC_STORED) === P, versions: f.loadedKeyVersions() });`,
    { ENCRYPTION_KEY: k1, ENCRYPTION_KEY_V02: k2, ENCRYPTION_KEY_VERSION: '02', FC_STORED: nodeEncrypt(k1, PLAINTEXT) },
    [k1, k2],
  );
  assert.match(r.stored, /^02:/);
  assert.match(r.stored, STRICT_FORMAT_RE);
  assert.equal(nodeDecrypt(k2, r.stored), PLAINTEXT);
  assert.equal(r.old, true);
  assert.deepEqual(r.versions, ['01', '02']);
});

test('ENCRYPTION_KEY_VERSION=02 with only ENCRYPTION_KEY_V02 (no version 01 key)', () => {
  const k2 = randomKeyHex();
  const r = run(
    `report({ stored: f.encrypt(P), old: attempt(() => f.decrypt(process.env.FC_STORED)) });`,
    {
      ENCRYPTION_KEY_V02: k2,
      ENCRYPTION_KEY_VERSION: '02',
      FC_STORED: nodeEncrypt(randomKeyHex(), 'x'),
    },
    [k2],
  );
  assert.equal(nodeDecrypt(k2, r.stored), PLAINTEXT);
  assertFailure(r.old, 'ERR_FIELDCRYPT_KEY_NOT_FOUND');
  assert.match(r.old.message, /ENCRYPTION_KEY \(or ENCRYPTION_KEY_V01\)/);
});

test('ENCRYPTION_KEY_VERSION=02 without ENCRYPTION_KEY_V02 → KEY_NOT_FOUND naming ENCRYPTION_KEY_V02', () => {
  const k1 = randomKeyHex();
  const r = run(`report({ enc: attempt(() => f.encrypt(P)) });`, { ENCRYPTION_KEY: k1, ENCRYPTION_KEY_VERSION: '02' }, [
    k1,
  ]);
  assertFailure(r.enc, 'ERR_FIELDCRYPT_KEY_NOT_FOUND');
  assert.match(r.enc.message, /\bENCRYPTION_KEY_V02\b/);
});

test('ENCRYPTION_KEY_VERSION=2 → ERR_FIELDCRYPT_INVALID_KEY_VERSION on encrypt; decrypt is unaffected', () => {
  const k1 = randomKeyHex();
  const r = run(
    `report({
      enc: attempt(() => f.encrypt(P)),
      explicit: attempt(() => f.encrypt(P, { keyVersion: '01' })),
      dec: attempt(() => f.decrypt(process.env.FC_STORED) === P),
      reload: attempt(() => f.reloadKeys()),
    });`,
    { ENCRYPTION_KEY: k1, ENCRYPTION_KEY_VERSION: '2', FC_STORED: nodeEncrypt(k1, PLAINTEXT) },
    [k1],
  );
  for (const k of ['enc', 'reload']) {
    assertFailure(r[k], 'ERR_FIELDCRYPT_INVALID_KEY_VERSION');
    assert.match(r[k].message, /ENCRYPTION_KEY_VERSION/);
  }
  assert.equal(r.explicit.ok, true);
  assert.equal(nodeDecrypt(k1, r.explicit.value), PLAINTEXT);
  assert.deepEqual(r.dec, { ok: true, value: true });
});

test('a key with surrounding whitespace or a CRLF line end is trimmed', () => {
  const k1 = randomKeyHex();
  const r = run(`report({ stored: f.encrypt(P) });`, { ENCRYPTION_KEY: `  ${k1}\r\n` }, [k1]);
  assert.equal(nodeDecrypt(k1, r.stored), PLAINTEXT);
});

test('a wrong key for an existing version → AUTH_FAILED, no key or plaintext in the output', () => {
  const k1 = randomKeyHex();
  const other = randomKeyHex();
  const r = run(
    `report({ dec: attempt(() => f.decrypt(process.env.FC_STORED)) });`,
    {
      ENCRYPTION_KEY: k1,
      FC_STORED: nodeEncrypt(other, PLAINTEXT),
    },
    [k1, other],
  );
  assertFailure(r.dec, 'ERR_FIELDCRYPT_AUTH_FAILED');
});
