'use strict';

// Byte compatibility with the pure node:crypto implementation of the stored
// format, in both directions.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { STRICT_FORMAT_RE, randomKeyHex, nodeEncrypt, nodeDecrypt, nodeDecryptBytes, throwsCode } = require('./helpers');

const K1 = randomKeyHex();
const K2 = randomKeyHex();

const fieldcrypt = require('fieldcrypt');
const { encrypt, decrypt, reEncrypt, getKeyVersion, configureKeys, reloadKeys, FieldCryptError, errorCodes } =
  fieldcrypt;

const MiB = 1024 * 1024;

function multiByteOfBytes(bytes) {
  // 1-, 2-, 3- and 4-byte UTF-8 sequences (and a ZWJ sequence), cut at a code point boundary.
  const unit = 'aé日✓😀👩🏽‍💻Ü';
  let s = unit.repeat(Math.ceil(bytes / Buffer.byteLength(unit)));
  while (Buffer.byteLength(s) > bytes) s = s.slice(0, -1);
  // never end on half a surrogate pair
  if (/[\uD800-\uDBFF]$/.test(s)) s = s.slice(0, -1);
  return s;
}

const SAMPLES = [
  ['empty string', ''],
  ['ASCII', 'A1234567'],
  ['ASCII with punctuation', 'Passport No. X-123/456 (exp. 2031-01-01); "quoted" \\ back'],
  ['card number', '4111111111111111'],
  ['multi-byte unicode', 'Ünïcödé 日本語 ✓'],
  ['Latin-1 only (a one-byte string in V8)', 'José García, Zürich ÿ\u00a0\u0080'],
  ['emoji incl. ZWJ sequences', '🛂🪪👩🏽‍💻 👨‍👩‍👧‍👦 🏳️‍🌈'],
  ['embedded NUL', 'a\0b'],
  ['only NULs', '\0\0\0'],
  ['control characters and newlines', '\t\r\n\u0001\u007f\u0085\u2028\u2029'],
  ['BOM and non-characters', '\uFEFFx\uFFFE\uFFFF'],
  ['U+FFFD itself', '\uFFFD'],
  ['1 MiB ASCII', 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(MiB / 36)).slice(0, MiB)],
  ['1 MiB (UTF-8 bytes) multi-byte', multiByteOfBytes(MiB)],
  ['1 Mi UTF-16 code units of 3-byte characters', '日'.repeat(MiB)],
];

before(() => {
  configureKeys({ '01': K1, '02': K2 }, { current: '01' });
});

after(() => {
  reloadKeys();
});

describe('node:crypto → fieldcrypt.decrypt', () => {
  for (const [name, plaintext] of SAMPLES) {
    test(name, () => {
      const stored = nodeEncrypt(K1, plaintext);
      assert.equal(decrypt(stored), plaintext);
      // uppercase hex, as Buffer.from(x, 'hex') accepted, reads the same
      assert.equal(decrypt(stored.toUpperCase()), plaintext);
    });
  }

  test('a value written under key version 02', () => {
    const stored = nodeEncrypt(K2, 'version two', { version: '02' });
    assert.equal(getKeyVersion(stored), '02');
    assert.equal(decrypt(stored), 'version two');
  });

  test('a known-answer vector (fixed key and IV)', () => {
    const key = '000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f';
    const iv = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex');
    const expected = '01:000102030405060708090a0b0c0d0e0f:53bccad86bf07da7959fb62e17a77241:265d92450dd17c1f';
    // this is what node:crypto writes ...
    assert.equal(nodeEncrypt(key, 'A1234567', { iv }), expected);
    // ... and fieldcrypt reads it
    configureKeys({ '01': key });
    try {
      assert.equal(decrypt(expected), 'A1234567');
    } finally {
      configureKeys({ '01': K1, '02': K2 }, { current: '01' });
    }
  });
});

describe('fieldcrypt.encrypt → node:crypto', () => {
  for (const [name, plaintext] of SAMPLES) {
    test(name, () => {
      const stored = encrypt(plaintext);
      assert.match(stored, STRICT_FORMAT_RE);
      assert.equal(stored, stored.toLowerCase());
      assert.equal(stored.slice(0, 3), '01:');
      assert.equal(stored.length, 2 + 1 + 32 + 1 + 32 + 1 + 2 * Buffer.byteLength(plaintext, 'utf8'));
      assert.deepEqual(nodeDecryptBytes(K1, stored), Buffer.from(plaintext, 'utf8'));
      assert.equal(nodeDecrypt(K1, stored), plaintext);
      assert.equal(decrypt(stored), plaintext);
    });
  }

  test('empty plaintext is written as 01:<iv>:<tag>: (empty ciphertext)', () => {
    const stored = encrypt('');
    assert.match(stored, /^01:[0-9a-f]{32}:[0-9a-f]{32}:$/);
    assert.equal(nodeDecrypt(K1, stored), '');
  });

  test('encrypt(x, { keyVersion: "02" }) is readable by node:crypto with key 02', () => {
    const stored = encrypt('for version two', { keyVersion: '02' });
    assert.match(stored, STRICT_FORMAT_RE);
    assert.equal(stored.slice(0, 3), '02:');
    assert.equal(nodeDecrypt(K2, stored), 'for version two');
    assert.throws(() => nodeDecrypt(K1, stored), /Unsupported state or unable to authenticate data/);
  });

  test('reEncrypt output is readable by node:crypto', () => {
    const stored = reEncrypt(nodeEncrypt(K1, 'rotate me ✓'), '02');
    assert.match(stored, STRICT_FORMAT_RE);
    assert.equal(getKeyVersion(stored), '02');
    assert.equal(nodeDecrypt(K2, stored), 'rotate me ✓');
  });
});

describe('lone surrogates are encoded as U+FFFD, exactly as node:crypto does', () => {
  const LONE = [
    ['lone high surrogate', 'a\uD800b'],
    ['lone low surrogate', 'a\uDFFFb'],
    ['reversed pair', '\uDC00\uD800'],
    ['high surrogate at the end', 'end\uD83D'],
    ['low surrogate at the start', '\uDE00start'],
    ['mixed with a valid pair', '\uD800😀\uDC00'],
  ];
  for (const [name, s] of LONE) {
    test(name, () => {
      const expectedBytes = Buffer.from(s, 'utf8'); // node's encoding: U+FFFD (EF BF BD)
      assert.ok(expectedBytes.includes(Buffer.from([0xef, 0xbf, 0xbd])));
      const expectedText = expectedBytes.toString('utf8');
      assert.notEqual(expectedText, s);

      // fieldcrypt writes the same bytes node:crypto would
      const mine = encrypt(s);
      assert.deepEqual(nodeDecryptBytes(K1, mine), expectedBytes);
      assert.equal(mine.length, nodeEncrypt(K1, s).length);
      assert.equal(decrypt(mine), expectedText);

      // and reads node:crypto's output to the same text node:crypto reads
      const theirs = nodeEncrypt(K1, s);
      assert.equal(decrypt(theirs), nodeDecrypt(K1, theirs));
      assert.equal(decrypt(theirs), expectedText);
    });
  }
});

describe('bytes that are not UTF-8', () => {
  test('a value whose plaintext is not valid UTF-8 is ERR_FIELDCRYPT_NOT_UTF8, not mangled text', () => {
    for (const bytes of [[0xff], [0xc3], [0x61, 0xed, 0xa0, 0x80], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xc0, 0x80]]) {
      const stored = nodeEncrypt(K1, Buffer.from(bytes));
      throwsCode(() => decrypt(stored), errorCodes.NOT_UTF8, FieldCryptError);
    }
  });

  test('reEncrypt carries non-UTF-8 bytes over unchanged (the plaintext never reaches JS)', () => {
    const raw = crypto.randomBytes(64);
    const moved = reEncrypt(nodeEncrypt(K1, raw), '02');
    assert.deepEqual(nodeDecryptBytes(K2, moved), raw);
  });

  test('the NOT_UTF8 message only refers to functions that exist', () => {
    const stored = nodeEncrypt(K1, Buffer.from([0xff]));
    const err = throwsCode(() => decrypt(stored), errorCodes.NOT_UTF8, FieldCryptError);
    for (const [, name] of err.message.matchAll(/\b([A-Za-z_$][\w$]*)\(\)/g)) {
      assert.equal(typeof fieldcrypt[name], 'function', `message refers to ${name}(), which is not exported`);
    }
    assert.match(err.message, /decryptBuffer\(\)/);
    assert.deepEqual(fieldcrypt.decryptBuffer(stored), Buffer.from([0xff]));
  });
});
