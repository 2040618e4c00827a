'use strict';

// Parsing of the stored format: what is well-formed, what is not, and how
// malformed input is reported.

const { test, describe, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { randomKeyHex, nodeEncrypt, throwsCode } = require('./helpers');

const K1 = randomKeyHex();
const K2 = randomKeyHex();

const {
  encrypt,
  decrypt,
  isEncrypted,
  reEncrypt,
  getKeyVersion,
  configureKeys,
  reloadKeys,
  FieldCryptError,
  errorCodes,
} = require('fieldcrypt');

const INVALID_FORMAT = errorCodes.INVALID_FORMAT;
assert.equal(INVALID_FORMAT, 'ERR_FIELDCRYPT_INVALID_FORMAT');
const FORMAT_MESSAGE =
  'Invalid encrypted data format: expected VV:IV:TAG:CT (two-digit key version, 32 hex IV, 32 hex tag, hex ciphertext)';

before(() => {
  configureKeys({ '01': K1, '02': K2 }, { current: '01' });
});

after(() => {
  reloadKeys();
});

const PLAINTEXT = 'Ünïcödé 4111-1111';
// A real value, so that the only thing wrong with each malformed variant is its shape.
const GOOD = nodeEncrypt(K1, PLAINTEXT);
const [V, IV, TAG, CT] = GOOD.split(':');

const MALFORMED_STRINGS = [
  ['empty string', ''],
  ['plaintext card number', '4111111111111111'],
  ['plaintext words', 'hello world'],
  ['version only', '01'],
  ['version and separator', '01:'],
  ['odd-length ciphertext', `${V}:${IV}:${TAG}:${CT}0`],
  ['odd-length ciphertext (one nibble)', `${V}:${IV}:${TAG}:a`],
  ['non-hex ciphertext', `${V}:${IV}:${TAG}:${CT.slice(0, -2)}zz`],
  ['non-hex IV', `${V}:${IV.slice(0, -1)}g:${TAG}:${CT}`],
  ['non-hex tag', `${V}:${IV}:${TAG.slice(0, -1)}x:${CT}`],
  ['short IV (15 bytes)', `${V}:${IV.slice(2)}:${TAG}:${CT}`],
  ['long IV (17 bytes)', `${V}:${IV}00:${TAG}:${CT}`],
  ['odd-length IV', `${V}:${IV.slice(1)}:${TAG}:${CT}`],
  ['short tag (15 bytes)', `${V}:${IV}:${TAG.slice(2)}:${CT}`],
  ['long tag (17 bytes)', `${V}:${IV}:${TAG}00:${CT}`],
  ['truncated tag (12 bytes)', `${V}:${IV}:${TAG.slice(0, 24)}:${CT}`],
  ['missing ciphertext separator', `${V}:${IV}:${TAG}`],
  ['missing ciphertext separator, ciphertext glued on', `${V}:${IV}:${TAG}${CT}`],
  ['missing version separator', `${V}${IV}:${TAG}:${CT}`],
  ['missing version', `${IV}:${TAG}:${CT}`],
  ['extra separator in ciphertext', `${V}:${IV}:${TAG}:${CT.slice(0, 2)}:${CT.slice(2)}`],
  ['trailing separator', `${V}:${IV}:${TAG}:${CT}:`],
  ['doubled separator in header', `${V}:${IV}::${TAG}:${CT}`],
  ['leading separator', `:${GOOD}`],
  ['five fields', `${GOOD}:${CT}`],
  ['trailing newline', `${GOOD}\n`],
  ['trailing CRLF', `${GOOD}\r\n`],
  ['leading whitespace', ` ${GOOD}`],
  ['trailing whitespace', `${GOOD} `],
  ['tab inside ciphertext', `${V}:${IV}:${TAG}:${CT.slice(0, 2)}\t${CT.slice(2)}`],
  ['space after separator', `${V}:${IV}:${TAG}: ${CT}`],
  ['one-digit version', `1:${IV}:${TAG}:${CT}`],
  ['three-digit version', `001:${IV}:${TAG}:${CT}`],
  ['letter version', `v1:${IV}:${TAG}:${CT}`],
  ['hex-letter version', `0a:${IV}:${TAG}:${CT}`],
  ['full-width digit version', `０１:${IV}:${TAG}:${CT}`],
  ['wrong separator', `${V};${IV};${TAG};${CT}`],
  ['0x prefix on ciphertext', `${V}:${IV}:${TAG}:0x${CT}`],
  ['negative sign', `${V}:${IV}:${TAG}:-1`],
  ['non-ASCII hex look-alike', `${V}:${IV}:${TAG}:${CT.slice(0, -2)}é`],
  ['NUL at the end', `${GOOD}\0`],
  ['base64 instead of hex', `${V}:${Buffer.from(IV, 'hex').toString('base64')}:${TAG}:${CT}`],
  ['JSON-quoted', JSON.stringify(GOOD)],
];

// The format with a 12-byte IV (what many GCM implementations use) is not this format.
function twelveByteIvValue() {
  const iv = crypto.randomBytes(12);
  const cipher = crypto.createCipheriv('aes-256-gcm', Buffer.from(K1, 'hex'), iv);
  const ct = Buffer.concat([cipher.update(PLAINTEXT, 'utf8'), cipher.final()]);
  return `01:${iv.toString('hex')}:${cipher.getAuthTag().toString('hex')}:${ct.toString('hex')}`;
}
MALFORMED_STRINGS.push(['12-byte IV (24 hex)', twelveByteIvValue()]);

const NON_STRINGS = [
  ['number', 12345],
  ['NaN', NaN],
  ['bigint', 4111111111111111n],
  ['boolean', true],
  ['null', null],
  ['undefined', undefined],
  ['symbol', Symbol('x')],
  ['function', () => GOOD],
  ['plain object', { value: GOOD }],
  ['object with toString returning a valid value', { toString: () => GOOD }],
  ['String object', new String(GOOD)],
  ['Buffer of a valid value', Buffer.from(GOOD)],
  ['Uint8Array', new Uint8Array(Buffer.from(GOOD))],
  ['array', [GOOD]],
  ['array of the four fields', [V, IV, TAG, CT]],
  ['Date', new Date(0)],
  ['null-prototype object', Object.create(null)],
];

/** Asserts `err`'s message is the fixed format message and quotes nothing of `input`. */
function assertNoEcho(err, input) {
  assert.ok(err.message.startsWith(FORMAT_MESSAGE), err.message);
  if (typeof input === 'string') {
    assert.equal(err.message, FORMAT_MESSAGE, 'a string input adds nothing to the message');
  } else {
    assert.match(err.message.slice(FORMAT_MESSAGE.length), /^; got (null|an? [\w ()]+)$/);
  }
  for (const secret of [PLAINTEXT, IV, TAG, CT, GOOD]) {
    assert.ok(!err.message.includes(secret), 'message echoes the input');
  }
}

describe('well-formed values', () => {
  test('isEncrypted is true for values written by fieldcrypt and node:crypto', () => {
    assert.equal(isEncrypted(GOOD), true);
    assert.equal(isEncrypted(encrypt(PLAINTEXT)), true);
    assert.equal(isEncrypted(encrypt('', { keyVersion: '02' })), true);
  });

  test('empty ciphertext 01:<iv>:<tag>: is well-formed', () => {
    const empty = `01:${IV}:${TAG}:`;
    assert.equal(isEncrypted(empty), true);
    assert.equal(getKeyVersion(empty), '01');
    // well-formed, so decrypting it is an authentication question, not a format one
    throwsCode(() => decrypt(empty), errorCodes.AUTH_FAILED, FieldCryptError);
    assert.equal(decrypt(nodeEncrypt(K1, '')), '');
  });

  test('uppercase and mixed-case hex is accepted for reading', () => {
    const upper = `${V}:${IV.toUpperCase()}:${TAG.toUpperCase()}:${CT.toUpperCase()}`;
    assert.notEqual(upper, GOOD);
    assert.equal(isEncrypted(upper), true);
    assert.equal(getKeyVersion(upper), '01');
    assert.equal(decrypt(upper), PLAINTEXT);
    const mixed = GOOD.replace(/[a-f]/g, (c, i) => (i % 2 ? c.toUpperCase() : c));
    assert.equal(decrypt(mixed), PLAINTEXT);
    // re-encrypting writes lowercase again
    const again = reEncrypt(upper, '01');
    assert.equal(again, again.toLowerCase());
    assert.equal(decrypt(again), PLAINTEXT);
  });

  test('any two-digit version is well-formed, whether or not a key exists for it', () => {
    for (const v of ['00', '01', '02', '09', '10', '42', '99']) {
      const s = `${v}:${IV}:${TAG}:${CT}`;
      assert.equal(isEncrypted(s), true, v);
      assert.equal(getKeyVersion(s), v);
    }
  });

  test('getKeyVersion returns the version of values written under 01 and 02', () => {
    assert.equal(getKeyVersion(encrypt('x')), '01');
    assert.equal(getKeyVersion(encrypt('x', { keyVersion: '02' })), '02');
    assert.equal(getKeyVersion(nodeEncrypt(K2, 'x', { version: '02' })), '02');
  });
});

describe('malformed strings', () => {
  for (const [name, input] of MALFORMED_STRINGS) {
    test(name, () => {
      assert.equal(isEncrypted(input), false, 'isEncrypted');
      assertNoEcho(
        throwsCode(() => decrypt(input), INVALID_FORMAT, FieldCryptError),
        input,
      );
      assertNoEcho(
        throwsCode(() => getKeyVersion(input), INVALID_FORMAT, FieldCryptError),
        input,
      );
      assertNoEcho(
        throwsCode(() => reEncrypt(input, '02'), INVALID_FORMAT, FieldCryptError),
        input,
      );
    });
  }

  test('a malformed value under a version with no key is still a format error', () => {
    const input = `07:${IV}:${TAG}:${CT}0`;
    throwsCode(() => decrypt(input), INVALID_FORMAT, FieldCryptError);
    throwsCode(() => getKeyVersion(input), INVALID_FORMAT, FieldCryptError);
  });
});

describe('non-string input', () => {
  for (const [name, input] of NON_STRINGS) {
    test(name, () => {
      assert.equal(isEncrypted(input), false, 'isEncrypted');
      assertNoEcho(
        throwsCode(() => decrypt(input), INVALID_FORMAT, FieldCryptError),
        input,
      );
      assertNoEcho(
        throwsCode(() => getKeyVersion(input), INVALID_FORMAT, FieldCryptError),
        input,
      );
      assertNoEcho(
        throwsCode(() => reEncrypt(input, '02'), INVALID_FORMAT, FieldCryptError),
        input,
      );
    });
  }

  test('isEncrypted never throws, even for hostile objects', () => {
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('touched');
        },
        getPrototypeOf() {
          throw new Error('touched');
        },
      },
    );
    assert.equal(isEncrypted(hostile), false);
  });
});

describe('isEncrypted on plaintext-looking data', () => {
  test('plaintext values an app might store are not mistaken for encrypted ones', () => {
    for (const s of [
      '4111111111111111',
      '078-05-1120',
      'A1234567',
      '0123456789abcdef0123456789abcdef',
      `${IV}${TAG}${CT}`,
      `${IV}:${TAG}:${CT}`,
      'https://example.com/a:b:c:d',
      '12:34:56:78',
      `01:${IV}:${TAG}:`.slice(0, -1),
    ]) {
      assert.equal(isEncrypted(s), false, s);
    }
  });
});
