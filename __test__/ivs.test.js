'use strict';

// Every encryption uses a fresh random IV.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { randomKeyHex, nodeDecrypt } = require('./helpers');

const K1 = randomKeyHex();
const K2 = randomKeyHex();

const { encrypt, reEncrypt, configureKeys, reloadKeys } = require('fieldcrypt');

const N = 100_000;
const PLAINTEXT = 'the same plaintext every time';

before(() => {
  configureKeys({ '01': K1, '02': K2 }, { current: '01' });
});

after(() => {
  reloadKeys();
});

test(`${N} encryptions of the same plaintext give ${N} distinct IVs and ciphertexts`, () => {
  const ivs = new Set();
  const cts = new Set();
  const values = new Set();
  // how many distinct values each IV byte position takes
  const perPosition = Array.from({ length: 16 }, () => new Set());
  let first;
  for (let i = 0; i < N; i++) {
    const stored = encrypt(PLAINTEXT);
    const [, iv, tag, ct] = stored.split(':');
    ivs.add(iv);
    cts.add(`${tag}:${ct}`);
    values.add(stored);
    for (let p = 0; p < 16; p++) perPosition[p].add(iv.slice(2 * p, 2 * p + 2));
    if (i === 0) first = stored;
  }
  assert.equal(ivs.size, N, 'IVs repeat');
  assert.equal(cts.size, N, 'ciphertexts repeat');
  assert.equal(values.size, N);
  assert.equal(nodeDecrypt(K1, first), PLAINTEXT);
  // With 100,000 uniformly random IVs every byte position takes all 256 values
  // (the chance that one misses a value is below 1e-100); a counter, a fixed
  // prefix or a timestamp in the IV would fail this.
  for (let p = 0; p < 16; p++) assert.equal(perPosition[p].size, 256, `IV byte ${p}`);
});

test('IVs do not repeat across key versions or reEncrypt', () => {
  const ivs = new Set();
  const n = 10_000;
  for (let i = 0; i < n; i++) {
    const a = encrypt(PLAINTEXT);
    const b = encrypt(PLAINTEXT, { keyVersion: '02' });
    const c = reEncrypt(a, '02');
    for (const s of [a, b, c]) ivs.add(s.split(':')[1]);
  }
  assert.equal(ivs.size, 3 * n);
});

test('the IV of an empty plaintext is random too', () => {
  const ivs = new Set();
  for (let i = 0; i < 10_000; i++) ivs.add(encrypt('').split(':')[1]);
  assert.equal(ivs.size, 10_000);
});
