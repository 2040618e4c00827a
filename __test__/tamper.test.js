'use strict';

// Any change to a stored value's IV, tag or ciphertext is detected.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { STRICT_FORMAT_RE, randomKeyHex, nodeEncrypt, throwsCode } = require('./helpers');

const K1 = randomKeyHex();
const K2 = randomKeyHex();

const {
  encrypt,
  decrypt,
  reEncrypt,
  isEncrypted,
  configureKeys,
  reloadKeys,
  FieldCryptError,
  errorCodes,
} = require('fieldcrypt');

const PLAINTEXT = 'SSN 078-05-1120 / Pässport Ω42';
const AUTH_FAILED = errorCodes.AUTH_FAILED;
assert.equal(AUTH_FAILED, 'ERR_FIELDCRYPT_AUTH_FAILED');

before(() => {
  configureKeys({ '01': K1, '02': K2 }, { current: '01' });
});

after(() => {
  reloadKeys();
});

/** The stored value with byte `index` of hex `field` (1 = IV, 2 = tag, 3 = CT) XORed with `mask`. */
function flip(stored, field, index, mask) {
  const parts = stored.split(':');
  const bytes = Buffer.from(parts[field], 'hex');
  bytes[index] ^= mask;
  parts[field] = bytes.toString('hex');
  return parts.join(':');
}

function assertAuthFailed(tampered, stored) {
  assert.ok(isEncrypted(tampered), 'still well-formed, so the failure is authentication');
  const err = throwsCode(() => decrypt(tampered), AUTH_FAILED, FieldCryptError);
  assert.ok(!err.message.includes(PLAINTEXT), 'message contains the plaintext');
  assert.ok(!err.message.includes(stored.split(':')[3]), 'message contains the ciphertext');
  assert.ok(!err.message.includes(tampered.split(':')[1]), 'message contains the IV');
  assert.ok(err.message.startsWith('Decryption failed'), err.message);
  return err;
}

for (const [label, make] of [
  ['written by fieldcrypt', () => encrypt(PLAINTEXT)],
  ['written by node:crypto', () => nodeEncrypt(K1, PLAINTEXT)],
]) {
  test(`every byte of IV, tag and ciphertext, XOR 0x01 (${label})`, () => {
    const stored = make();
    assert.equal(decrypt(stored), PLAINTEXT);
    const ctLen = stored.split(':')[3].length / 2;
    assert.equal(ctLen, Buffer.byteLength(PLAINTEXT));
    let count = 0;
    for (const [field, len] of [
      [1, 16],
      [2, 16],
      [3, ctLen],
    ]) {
      for (let i = 0; i < len; i++) {
        const tampered = flip(stored, field, i, 0x01);
        assert.notEqual(tampered, stored);
        assert.match(tampered, STRICT_FORMAT_RE);
        assertAuthFailed(tampered, stored);
        count++;
      }
    }
    assert.equal(count, 32 + ctLen);
  });
}

test('every single bit of IV, tag and ciphertext', () => {
  const stored = encrypt(PLAINTEXT);
  const ctLen = stored.split(':')[3].length / 2;
  for (const [field, len] of [
    [1, 16],
    [2, 16],
    [3, ctLen],
  ]) {
    for (let i = 0; i < len; i++) {
      for (let bit = 0; bit < 8; bit++) {
        assertAuthFailed(flip(stored, field, i, 1 << bit), stored);
      }
    }
  }
});

test('the same flips written as uppercase hex are rejected too', () => {
  const stored = encrypt(PLAINTEXT);
  for (const [field, i] of [
    [1, 0],
    [2, 15],
    [3, 3],
  ]) {
    assertAuthFailed(flip(stored, field, i, 0x80).toUpperCase(), stored);
  }
});

test('tampering with an empty-plaintext value (tag and IV only)', () => {
  const stored = encrypt('');
  assert.equal(decrypt(stored), '');
  for (const [field, len] of [
    [1, 16],
    [2, 16],
  ]) {
    for (let i = 0; i < len; i++) {
      const tampered = flip(stored, field, i, 0x01);
      throwsCode(() => decrypt(tampered), AUTH_FAILED, FieldCryptError);
    }
  }
  // appending ciphertext to an empty value
  throwsCode(() => decrypt(`${stored}00`), AUTH_FAILED, FieldCryptError);
});

test('truncating, extending, swapping and splicing values', () => {
  const a = encrypt(PLAINTEXT);
  const b = encrypt(PLAINTEXT);
  const [v, iv, tag, ct] = a.split(':');
  const [, ivB, tagB, ctB] = b.split(':');
  const cases = [
    ['last ciphertext byte removed', `${v}:${iv}:${tag}:${ct.slice(0, -2)}`],
    ['first ciphertext byte removed', `${v}:${iv}:${tag}:${ct.slice(2)}`],
    ['ciphertext byte appended', `${v}:${iv}:${tag}:${ct}00`],
    ['ciphertext emptied', `${v}:${iv}:${tag}:`],
    ['IV and tag swapped', `${v}:${tag}:${iv}:${ct}`],
    ['IV from another value', `${v}:${ivB}:${tag}:${ct}`],
    ['tag from another value', `${v}:${iv}:${tagB}:${ct}`],
    ['ciphertext from another value', `${v}:${iv}:${tag}:${ctB}`],
    ['all-zero tag', `${v}:${iv}:${'0'.repeat(32)}:${ct}`],
    ['version changed to another configured key', `02:${iv}:${tag}:${ct}`],
  ];
  for (const [name, tampered] of cases) {
    assert.notEqual(tampered, a, name);
    const err = assertAuthFailed(tampered, a);
    assert.ok(err.message.includes(`key version ${tampered.slice(0, 2)}`), `${name}: ${err.message}`);
  }
});

test('reEncrypt refuses a tampered value', () => {
  const stored = encrypt(PLAINTEXT);
  const err = throwsCode(() => reEncrypt(flip(stored, 3, 0, 0x01), '02'), AUTH_FAILED, FieldCryptError);
  assert.ok(!err.message.includes(PLAINTEXT));
});

test('a value encrypted with a different key under the same version fails authentication', () => {
  const stored = nodeEncrypt(randomKeyHex(), PLAINTEXT);
  assertAuthFailed(stored, stored);
});
