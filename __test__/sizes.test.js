'use strict';

// Byte compatibility at every size the benchmarks use and around every size
// where the addon changes strategy: the short AES-GCM path for values of up
// to 256 bytes and the long one above (src/cipher.rs; its GHASH works in
// groups of 256 bytes), and in src/napi/io.rs the exact-length read above
// 16 Ki UTF-16 units, external strings for stored values of 32 KiB and more,
// text of 128 KiB and more decrypted straight into an external string's
// buffer, scratch buffers kept up to 8 MiB. Both directions against
// node:crypto, ASCII and multi-byte, text and Buffer APIs.

const test = require('node:test');
const assert = require('node:assert/strict');
const { encrypt, decrypt, encryptBuffer, decryptBuffer, configureKeys, reloadKeys } = require('..');
const { STRICT_FORMAT_RE, randomKeyHex, nodeEncrypt, nodeDecrypt, nodeDecryptBytes } = require('./helpers');

const K = randomKeyHex();
test.before(() => configureKeys({ '01': K }));
test.after(() => reloadKeys());

const HEADER = 69; // "01:" + 32 + ":" + 32 + ":"
const sizes = [
  0,
  1,
  10,
  15,
  16,
  17,
  100,
  1024,
  255,
  256,
  257, // short GCM path up to 256 bytes (multi-byte text crosses it at other lengths)
  16 * 1024 - 1,
  16 * 1024,
  16 * 1024 + 1, // read strategy switch (UTF-16 units)
  (32 * 1024 - HEADER) / 2 - 1,
  (32 * 1024 - HEADER) / 2 + 1, // stored value crosses 32 KiB
  511,
  512,
  513,
  4096 + 17, // whole and partial 256-byte GHASH groups
  64 * 1024,
  128 * 1024 - 1,
  128 * 1024,
  1024 * 1024, // decrypted text crosses 128 KiB
  5 * 1024 * 1024, // above the 1 MiB of earlier scratch limits, below 8 MiB
].map(Math.floor);

function ascii(n) {
  let s = '';
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-';
  while (s.length < n) s += alphabet;
  return s.slice(0, n);
}

function multiByte(n) {
  let s = '';
  const pieces = ['é', '日本', '🛂', 'a'];
  for (let i = 0; s.length < n; i++) s += pieces[i % pieces.length];
  return s.slice(0, n).replace(/[\ud800-\udbff]$/, 'x'); // no lone high surrogate at the cut
}

for (const n of sizes) {
  for (const [kind, make] of [
    ['ASCII', ascii],
    ['multi-byte', multiByte],
  ]) {
    test(`${n} UTF-16 units, ${kind}: fieldcrypt <-> node:crypto, both ways`, () => {
      const text = make(n);
      const stored = encrypt(text);
      assert.match(stored.slice(0, 200), /^01:[0-9a-f]{32}:[0-9a-f]{32}:/);
      assert.equal(stored.length, HEADER + 2 * Buffer.byteLength(text));
      assert.equal(nodeDecrypt(K, stored), text);
      assert.equal(decrypt(nodeEncrypt(K, text)), text);
      assert.equal(decrypt(stored), text);
    });
  }
  test(`${n} bytes, Buffer API: fieldcrypt <-> node:crypto, both ways`, () => {
    const bytes = Buffer.alloc(n, 0xa5);
    const stored = encryptBuffer(bytes);
    if (n < 4096) assert.match(stored, STRICT_FORMAT_RE);
    assert.deepEqual(nodeDecryptBytes(K, stored), bytes);
    assert.deepEqual(decryptBuffer(nodeEncrypt(K, bytes)), bytes);
  });
}

test('a value whose stored form would exceed the longest JS string fails with TOO_LARGE, not a crash', () => {
  const { errorCodes, FieldCryptError } = require('..');
  const big = Buffer.alloc(2 ** 28); // 256 MiB: 69 + 2^29 characters > V8's 2^29 - 24
  assert.throws(
    () => encryptBuffer(big),
    (err) => err instanceof FieldCryptError && err.code === errorCodes.TOO_LARGE && /longest string/.test(err.message),
  );
  // and the next call works as usual
  assert.equal(decrypt(encrypt('still fine')), 'still fine');
});

test('long values: a tampered one fails with AUTH_FAILED, binary data read as text with NOT_UTF8, and the next call works', () => {
  const { errorCodes } = require('..');
  for (const n of [300, 64 * 1024, 200 * 1024]) {
    const stored = encrypt(ascii(n));
    const i = 69 + n; // a ciphertext digit in the middle
    const tampered = stored.slice(0, i) + (stored[i] === '0' ? '1' : '0') + stored.slice(i + 1);
    assert.throws(
      () => decrypt(tampered),
      (err) => err.code === errorCodes.AUTH_FAILED,
      `${n} bytes`,
    );
    const binary = encryptBuffer(Buffer.alloc(n, 0xff));
    assert.throws(
      () => decrypt(binary),
      (err) => err.code === errorCodes.NOT_UTF8,
      `${n} bytes`,
    );
    assert.equal(decrypt(stored), ascii(n));
  }
});
