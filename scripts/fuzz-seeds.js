#!/usr/bin/env node
'use strict';

/**
 * Writes the committed seed corpus of the fuzz targets, fuzz/seeds/<target>/,
 * from scratch (deterministic: the same files every run). The input layouts
 * are those described at the top of each fuzz/fuzz_targets/<target>.rs.
 *
 *   node scripts/fuzz-seeds.js
 *
 * parse: valid stored values (the node:crypto known answer, empty, uppercase,
 * ciphertexts of 1/15/16/17/255/256/257/1024 bytes) and malformed shapes.
 * seal_open: edge lengths (0/1/15/16/17/255/256/257/1023/1024/1025/4096/5000)
 * with and without additional data, each kind of one-bit change, and the
 * counter wrap-around IVs of src/cipher/tests.rs (WRAP_IVS).
 * ghash: keys with the top or bottom bit alone, all ones, zero, arbitrary ones,
 * and data of the lengths that change the grouping (blocks of 4, groups of 16).
 * blind_index: inputs of 0/1/55/56/63/64/65/119/120/128/1000 bytes (SHA-256's
 * padding and block edges), long collections and paths, UTF-8 and NUL bytes.
 */

const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');

const seedsDir = path.join(__dirname, '..', 'fuzz', 'seeds');

/** `len` deterministic bytes from a label (SHA-256 in counter mode). */
function bytes(label, len) {
  const out = Buffer.alloc(len);
  for (let i = 0; i * 32 < len; i++) {
    crypto
      .createHash('sha256')
      .update(`${label}/${i}`)
      .digest()
      .copy(out, i * 32);
  }
  return out;
}

function u16(n) {
  const b = Buffer.alloc(2);
  b.writeUInt16LE(n);
  return b;
}

function write(target, name, data) {
  fs.writeFileSync(path.join(seedsDir, target, name), data);
}

function parseSeeds() {
  const iv = '000102030405060708090a0b0c0d0e0f';
  const tag = 'f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff';
  const valid = (ct, v = '01') => `${v}:${iv}:${tag}:${ct}`;
  const seeds = {
    'node-kat': '01:000102030405060708090a0b0c0d0e0f:53bccad86bf07da7959fb62e17a77241:265d92450dd17c1f',
    'empty-ciphertext': valid(''),
    uppercase: `07:${iv.toUpperCase()}:${tag.toUpperCase()}:ABCD`,
    'mixed-case': `99:${iv}:${tag.toUpperCase()}:aBcD`,
    'version-00': valid('00', '00'),
    empty: '',
    'header-only': '01:',
    'missing-ct-separator': `01:${iv}:${tag}`,
    'odd-ct': valid('abc'),
    'non-hex-ct': valid('zz'),
    'extra-separator': valid('ab:cd'),
    'trailing-separator': valid('abcd:'),
    'one-digit-version': `1:${iv}:${tag}:abcd`,
    'hex-version': valid('abcd', '0a'),
    'short-iv': `01:${iv.slice(0, 30)}:${tag}:abcd`,
    'long-tag': `01:${iv}:${tag}00:abcd`,
    '12-byte-iv': `01:${iv.slice(0, 24)}:${tag}:abcd`,
    whitespace: valid(' abc'),
    'trailing-newline': `${valid('abcd')}\n`,
    'wrong-separator': `01;${iv};${tag};abcd`,
    'non-ascii': valid('ab\u00e9'),
    'plaintext-card-number': '4111111111111111',
    'version-only': '01',
  };
  for (const n of [1, 15, 16, 17, 255, 256, 257, 1024]) {
    seeds[`ct-${n}`] = valid(bytes(`parse-${n}`, n).toString('hex'));
  }
  for (const [name, s] of Object.entries(seeds)) write('parse', name, s);
}

// src/cipher/tests.rs WRAP_IVS: under key 00 01 .. 1f, J0 = a5..a5 || low word
const WRAP_IVS = [
  ['fffffffd', '3757e3cbd3532af73343a358b0a4d4c5'],
  ['ffffffff', 'c44743f426628fe07d111b797380a27c'],
  ['ffffffb9', '1762a44a9f04c23065b1d7235262ee85'],
];

/** A seal_open input: header (55 bytes), then `content`. */
function sealInput({ key, iv, aadLen, len, change, bit, content }) {
  return Buffer.concat([key, iv, u16(aadLen), u16(len), Buffer.from([change]), u16(bit), content]);
}

function sealOpenSeeds() {
  const lengths = [0, 1, 15, 16, 17, 255, 256, 257, 1023, 1024, 1025, 4096, 5000];
  const aadLengths = [0, 17, 300];
  let i = 0;
  for (const len of lengths) {
    for (const aadLen of len % 2 ? [aadLengths[i % 3]] : aadLengths) {
      const label = `seal-${len}-${aadLen}`;
      const input = sealInput({
        key: bytes(`${label}/key`, 32),
        iv: bytes(`${label}/iv`, 16),
        aadLen,
        len,
        change: i % 4,
        bit: (i * 7919) % 65536,
        content: bytes(`${label}/content`, 1 + (i % 40)),
      });
      write('seal_open', `len-${len}-aad-${aadLen}`, input);
      i++;
    }
  }
  const counterKey = Buffer.from(Array.from({ length: 32 }, (_, k) => k));
  for (const [low, iv] of WRAP_IVS) {
    for (const len of [16, 47, 256, 257, 1500, 5000]) {
      const input = sealInput({
        key: counterKey,
        iv: Buffer.from(iv, 'hex'),
        aadLen: 0,
        len,
        change: len % 4,
        bit: len,
        content: bytes(`wrap-${low}-${len}`, 16),
      });
      write('seal_open', `wrap-${low}-len-${len}`, input);
    }
  }
}

function ghashSeeds() {
  const keys = {
    zero: Buffer.alloc(16),
    ones: Buffer.alloc(16, 0xff),
    one: Buffer.from('80'.padEnd(32, '0'), 'hex'), // the field's one
    x127: Buffer.from('1'.padStart(32, '0'), 'hex'), // the top bit of POLYVAL's mulX
    a: bytes('ghash-key-a', 16),
    b: bytes('ghash-key-b', 16),
  };
  const names = Object.keys(keys);
  const shapes = [
    [0, 0],
    [0, 1],
    [0, 15],
    [0, 16],
    [0, 17],
    [0, 63],
    [0, 64],
    [0, 65],
    [0, 255],
    [0, 256],
    [0, 257],
    [0, 512],
    [0, 16 * 33 + 7],
    [0, 1024],
    [1, 16],
    [15, 48],
    [16, 256],
    [17, 256],
    [100, 300],
    [300, 1000],
  ];
  shapes.forEach(([aadLen, dataLen], i) => {
    const name = names[i % names.length];
    const label = `ghash-${aadLen}-${dataLen}`;
    const input = Buffer.concat([keys[name], bytes(`${label}/last`, 16), u16(aadLen), bytes(label, aadLen + dataLen)]);
    write('ghash', `key-${name}-aad-${aadLen}-data-${dataLen}`, input);
  });
}

/** A blind_index input: key, version, lengths, split, then collection, path and input. */
function blindIndexSeeds() {
  const lengths = [0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000];
  const scopes = [
    ['people', 'ssn'],
    ['patients', 'personExtended.identifications.idNumber'],
    ['c'.repeat(64), 'p'.repeat(128)],
    ['\u00e9l\u00e8ves', 'identit\u00e9.num\u00e9ro'],
    ['a\0b', 'c'], // refused: NUL in the collection
    ['', 'p'], // refused: empty collection
  ];
  lengths.forEach((len, i) => {
    const [collection, path] = scopes[i % scopes.length];
    const c = Buffer.from(collection);
    const p = Buffer.from(path);
    const header = Buffer.concat([
      bytes(`bidx-${len}/key`, 32),
      Buffer.from([i * 9, c.length, p.length]),
      u16(len >> 1),
    ]);
    const input = Buffer.concat([header, c, p, bytes(`bidx-${len}/input`, len)]);
    write('blind_index', `len-${len}-scope-${i % scopes.length}`, input);
  });
}

for (const target of ['parse', 'seal_open', 'ghash', 'blind_index']) {
  fs.rmSync(path.join(seedsDir, target), { recursive: true, force: true });
  fs.mkdirSync(path.join(seedsDir, target), { recursive: true });
}
parseSeeds();
sealOpenSeeds();
ghashSeeds();
blindIndexSeeds();
