'use strict';

// encryptBuffer / decryptBuffer: binary values in the same stored format,
// byte-compatible with node:crypto.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const vm = require('node:vm');

const { STRICT_FORMAT_RE, randomKeyHex, nodeEncrypt, nodeDecryptBytes, throwsCode } = require('./helpers');

const K1 = randomKeyHex();
const K2 = randomKeyHex();

const {
  encrypt,
  decrypt,
  encryptBuffer,
  decryptBuffer,
  reEncrypt,
  getKeyVersion,
  isEncrypted,
  configureKeys,
  reloadKeys,
  FieldCryptError,
  errorCodes,
} = require('fieldcrypt');

before(() => {
  configureKeys({ '01': K1, '02': K2 }, { current: '01' });
});

after(() => {
  reloadKeys();
});

/** The bytes a Uint8Array view covers, as a Buffer. */
function bytesOf(view) {
  return Buffer.from(view.buffer, view.byteOffset, view.byteLength);
}

const backing = crypto.randomBytes(64);
const SAMPLES = [
  ['empty Buffer', Buffer.alloc(0)],
  ['empty Uint8Array', new Uint8Array(0)],
  ['one zero byte', Buffer.from([0])],
  ['invalid UTF-8', Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xed, 0xa0, 0x80])],
  ['all byte values', Buffer.from(Array.from({ length: 256 }, (_, i) => i))],
  ['pooled small Buffer (non-zero byteOffset)', Buffer.from('abc')],
  ['Buffer.subarray', backing.subarray(5, 37)],
  ['Uint8Array view with an offset', new Uint8Array(backing.buffer, backing.byteOffset + 11, 20)],
  ['Uint8Array over a SharedArrayBuffer', new Uint8Array(new SharedArrayBuffer(16)).fill(0xab)],
  ['1 MiB of random bytes', crypto.randomBytes(1024 * 1024)],
];

describe('encryptBuffer → node:crypto', () => {
  for (const [name, data] of SAMPLES) {
    test(name, () => {
      const stored = encryptBuffer(data);
      assert.match(stored, STRICT_FORMAT_RE);
      assert.equal(stored.slice(0, 3), '01:');
      assert.equal(stored.length, 69 + 2 * data.byteLength, 'encrypts exactly the view, not its whole ArrayBuffer');
      assert.deepEqual(nodeDecryptBytes(K1, stored), bytesOf(data));
      const back = decryptBuffer(stored);
      assert.ok(Buffer.isBuffer(back));
      assert.deepEqual(back, bytesOf(data));
    });
  }

  test('options.keyVersion', () => {
    const data = crypto.randomBytes(33);
    const stored = encryptBuffer(data, { keyVersion: '02' });
    assert.equal(getKeyVersion(stored), '02');
    assert.deepEqual(nodeDecryptBytes(K2, stored), data);
  });

  test('the input is not modified and later changes to it do not affect the value', () => {
    const data = Buffer.from('mutable');
    const copy = Buffer.from(data);
    const stored = encryptBuffer(data);
    assert.deepEqual(data, copy);
    data.fill(0);
    assert.deepEqual(decryptBuffer(stored), copy);
  });

  test('a fresh IV each time', () => {
    const data = Buffer.from('same');
    const ivs = new Set();
    for (let i = 0; i < 1000; i++) ivs.add(encryptBuffer(data).split(':')[1]);
    assert.equal(ivs.size, 1000);
  });
});

describe('node:crypto → decryptBuffer', () => {
  for (const [name, data] of SAMPLES) {
    test(name, () => {
      const stored = nodeEncrypt(K1, bytesOf(data));
      const back = decryptBuffer(stored);
      assert.ok(Buffer.isBuffer(back));
      assert.deepEqual(back, bytesOf(data));
      assert.deepEqual(decryptBuffer(stored.toUpperCase()), bytesOf(data));
    });
  }
});

describe('text and binary are the same format', () => {
  test('decryptBuffer of a text value gives its UTF-8 bytes', () => {
    const text = 'Ünïcödé 日本語 ✓ 🛂🪪👩🏽‍💻';
    assert.deepEqual(decryptBuffer(encrypt(text)), Buffer.from(text, 'utf8'));
  });

  test('decrypt of a binary value that is valid UTF-8 gives the text', () => {
    assert.equal(decrypt(encryptBuffer(Buffer.from('héllo', 'utf8'))), 'héllo');
  });

  test('decrypt of a binary value that is not UTF-8 → NOT_UTF8', () => {
    throwsCode(() => decrypt(encryptBuffer(Buffer.from([0xff]))), errorCodes.NOT_UTF8, FieldCryptError);
  });

  test('reEncrypt moves a binary value to another version unchanged', () => {
    const data = crypto.randomBytes(100);
    const moved = reEncrypt(encryptBuffer(data), '02');
    assert.equal(getKeyVersion(moved), '02');
    assert.deepEqual(decryptBuffer(moved), data);
    assert.deepEqual(nodeDecryptBytes(K2, moved), data);
  });
});

describe('errors', () => {
  test('encryptBuffer of a non-Uint8Array → INVALID_ARGUMENT, naming the type only', () => {
    const secret = '4111111111111111';
    for (const value of [
      secret,
      [1, 2, 3],
      new ArrayBuffer(4),
      new DataView(new ArrayBuffer(4)),
      new Uint16Array(2),
      new Uint8ClampedArray(2),
      null,
      undefined,
      42,
      { data: secret },
    ]) {
      const err = throwsCode(() => encryptBuffer(value), errorCodes.INVALID_ARGUMENT, FieldCryptError);
      assert.match(err.message, /^encryptBuffer\(\) expects a Buffer or Uint8Array, got (null|an? [\w ()]+)$/);
      assert.ok(!err.message.includes(secret));
    }
  });

  // A Uint8Array from another realm (vm contexts, Jest's test environment)
  // fails `instanceof Uint8Array`; util.types.isUint8Array accepts it.
  test('a Uint8Array from another realm is accepted', () => {
    const data = vm.runInNewContext('new Uint8Array([1, 2, 3])');
    assert.deepEqual(decryptBuffer(encryptBuffer(data)), Buffer.from([1, 2, 3]));
  });

  // An object that passes `instanceof Uint8Array` without being one never
  // reaches the addon.
  test('a fake Uint8Array → INVALID_ARGUMENT', () => {
    throwsCode(() => encryptBuffer(Object.create(Uint8Array.prototype)), errorCodes.INVALID_ARGUMENT, FieldCryptError);
  });

  test('decryptBuffer: malformed → INVALID_FORMAT, tampered → AUTH_FAILED, missing key → KEY_NOT_FOUND', () => {
    // (decryptBuffer sizes its result from the length: these include a
    // string too short for the header, odd hex, and a non-ASCII character.)
    const header = `01:${'0'.repeat(32)}:${'0'.repeat(32)}:`;
    for (const bad of ['', '4111111111111111', `${header}0`, `${header}00é0`, 'x'.repeat(70), Buffer.from('x'), null]) {
      assert.equal(isEncrypted(bad), false);
      throwsCode(() => decryptBuffer(bad), errorCodes.INVALID_FORMAT, FieldCryptError);
    }
    const stored = encryptBuffer(Buffer.from('secret bytes'));
    const parts = stored.split(':');
    const ct = Buffer.from(parts[3], 'hex');
    for (let i = 0; i < ct.length; i++) {
      const t = Buffer.from(ct);
      t[i] ^= 1;
      const tampered = `${parts[0]}:${parts[1]}:${parts[2]}:${t.toString('hex')}`;
      const err = throwsCode(() => decryptBuffer(tampered), errorCodes.AUTH_FAILED, FieldCryptError);
      assert.ok(!err.message.includes('secret bytes'));
    }
    const err = throwsCode(
      () => decryptBuffer(nodeEncrypt(randomKeyHex(), Buffer.from([1]), { version: '07' })),
      errorCodes.KEY_NOT_FOUND,
      FieldCryptError,
    );
    assert.match(err.message, /ENCRYPTION_KEY_V07/);
  });

  test('encryptBuffer under a version with no key → KEY_NOT_FOUND; a bad keyVersion → INVALID_KEY_VERSION', () => {
    throwsCode(() => encryptBuffer(Buffer.from('x'), { keyVersion: '09' }), errorCodes.KEY_NOT_FOUND, FieldCryptError);
    throwsCode(
      () => encryptBuffer(Buffer.from('x'), { keyVersion: '9' }),
      errorCodes.INVALID_KEY_VERSION,
      FieldCryptError,
    );
  });
});
