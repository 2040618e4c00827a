'use strict';

// lib/core/codec.js: typed values inside the VV:IV:TAG:CT envelope. Strings keep the
// foundation's format byte for byte; every other type is 0xFF, codec version
// 0x01, BSON({ v }), and comes back with its type, with the BSON of Mongoose 9
// (bson 7) and of Mongoose 8 (bson 6).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { randomKeyHex, nodeEncrypt, nodeDecrypt, nodeDecryptBytes, throwsCode, STRICT_FORMAT_RE } = require('./helpers');

const K1 = randomKeyHex();

const { configureKeys, reloadKeys, decrypt, encryptBuffer, FieldCryptError, errorCodes } = require('fieldcrypt');
const {
  encodeValue,
  decodeValue,
  fingerprint,
  sameFingerprint,
  encryptFingerprint,
  TYPED_MARKER,
  CODEC_VERSION,
} = require('../lib/core/codec');

const BSONS = [
  ['bson of Mongoose 9', require('mongoose').mongo.BSON],
  ['bson of Mongoose 8', require('mongoose8').mongo.BSON],
];

before(() => {
  configureKeys({ '01': K1 });
});

after(() => {
  reloadKeys();
});

test('strings are stored exactly as encrypt() stores them: UTF-8 plaintext, readable by decrypt() and node:crypto', () => {
  for (const [, BSON] of BSONS) {
    for (const text of ['', 'X1234567', 'Ünïcödé 日本語 ✓', '\u0000nul', '😀']) {
      const stored = encodeValue(text, BSON);
      assert.match(stored, STRICT_FORMAT_RE);
      assert.equal(decrypt(stored), text);
      assert.equal(nodeDecrypt(K1, stored), text);
      assert.equal(decodeValue(stored, BSON), text);
    }
  }
});

test('values written by the foundation and by node:crypto decode to their string', () => {
  for (const [, BSON] of BSONS) {
    assert.equal(decodeValue(nodeEncrypt(K1, 'legacy ✓'), BSON), 'legacy ✓');
  }
});

test('every other type comes back with its type', () => {
  for (const [name, BSON] of BSONS) {
    const { Decimal128, ObjectId, Long } = BSON;
    const id = new ObjectId();
    const cases = [
      [42, (v) => assert.equal(v, 42)],
      [-3.25, (v) => assert.equal(v, -3.25)],
      [2 ** 40 + 0.5, (v) => assert.equal(v, 2 ** 40 + 0.5)],
      [true, (v) => assert.equal(v, true)],
      [false, (v) => assert.equal(v, false)],
      [new Date(Date.UTC(2001, 1, 3, 4, 5, 6, 7)), (v) => assert.equal(v.getTime(), Date.UTC(2001, 1, 3, 4, 5, 6, 7))],
      [
        Decimal128.fromString('12345.678901234567890'),
        (v) => {
          assert.equal(v._bsontype, 'Decimal128');
          assert.equal(v.toString(), '12345.678901234567890');
        },
      ],
      [id, (v) => assert.ok(v instanceof ObjectId && v.equals(id))],
      [1234567890123456789n, (v) => assert.equal(v, 1234567890123456789n)],
      [Long.fromString('9007199254740993'), (v) => assert.equal(v, 9007199254740993n)],
      [
        { a: 1, b: ['x', { c: null }], d: new Date(0) },
        (v) => assert.deepEqual(v, { a: 1, b: ['x', { c: null }], d: new Date(0) }),
      ],
      [[1, 'two', 3.5], (v) => assert.deepEqual(v, [1, 'two', 3.5])],
    ];
    for (const [value, check] of cases) {
      const stored = encodeValue(value, BSON);
      assert.match(stored, STRICT_FORMAT_RE, `${name}: ${typeof value}`);
      const bytes = nodeDecryptBytes(K1, stored);
      assert.equal(bytes[0], TYPED_MARKER, 'typed values start with 0xFF');
      assert.equal(bytes[1], CODEC_VERSION, 'then the codec version');
      check(decodeValue(stored, BSON));
    }
  }
});

test('Buffers come back as Buffers when asked (Buffer paths), as BSON Binary otherwise', () => {
  for (const [, BSON] of BSONS) {
    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe]);
    const stored = encodeValue(bytes, BSON);
    const asBuffer = decodeValue(stored, BSON, { buffer: true });
    assert.ok(Buffer.isBuffer(asBuffer) && asBuffer.equals(bytes));
    const asBinary = decodeValue(stored, BSON);
    assert.equal(asBinary._bsontype, 'Binary');
    assert.ok(Buffer.from(asBinary.buffer).equals(bytes));
  }
});

test('a string can never decode as a typed value: 0xFF never occurs in UTF-8', () => {
  for (const [, BSON] of BSONS) {
    const text = '\u00ff\u00fe ÿ';
    assert.notEqual(Buffer.from(text)[0], 0xff);
    assert.equal(decodeValue(encodeValue(text, BSON), BSON), text);
  }
});

test('an unknown codec version is an error, not a guess', () => {
  const [, BSON] = BSONS[0];
  for (const header of [[TYPED_MARKER], [TYPED_MARKER, 0x02], [TYPED_MARKER, 0x00]]) {
    const stored = encryptBuffer(Buffer.from([...header, 5, 0, 0, 0, 0]));
    const err = throwsCode(() => decodeValue(stored, BSON), errorCodes.UNSUPPORTED_CODEC, FieldCryptError);
    assert.match(err.message, /codec version/);
  }
});

test('bytes that are neither typed nor UTF-8 are ERR_FIELDCRYPT_NOT_UTF8', () => {
  const [, BSON] = BSONS[0];
  throwsCode(() => decodeValue(encryptBuffer(Buffer.from([0xc3, 0x28])), BSON), errorCodes.NOT_UTF8, FieldCryptError);
});

test('tampered typed values fail authentication like any other value', () => {
  const [, BSON] = BSONS[0];
  const stored = encodeValue(42, BSON);
  const flipped = stored.slice(0, -1) + (stored.endsWith('0') ? '1' : '0');
  throwsCode(() => decodeValue(flipped, BSON), errorCodes.AUTH_FAILED, FieldCryptError);
});

test('fingerprints tell an unchanged value from a changed one, and encrypt to the same plaintext', () => {
  for (const [, BSON] of BSONS) {
    const when = new Date(5);
    assert.ok(sameFingerprint(fingerprint('a', BSON), fingerprint('a', BSON)));
    assert.ok(!sameFingerprint(fingerprint('a', BSON), fingerprint('b', BSON)));
    assert.ok(sameFingerprint(fingerprint(when, BSON), fingerprint(new Date(5), BSON)));
    assert.ok(!sameFingerprint(fingerprint(1, BSON), fingerprint(1.5, BSON)));
    assert.ok(!sameFingerprint(fingerprint('1', BSON), fingerprint(1, BSON)));
    const { value, fingerprint: print } = decodeValue(encodeValue({ x: [1, 2] }, BSON), BSON, {
      withFingerprint: true,
    });
    assert.deepEqual(value, { x: [1, 2] });
    assert.ok(sameFingerprint(print, fingerprint({ x: [1, 2] }, BSON)));
    assert.deepEqual(decodeValue(encryptFingerprint(print), BSON), { x: [1, 2] });
    assert.equal(decodeValue(encryptFingerprint(fingerprint('t', BSON)), BSON), 't');
  }
});
