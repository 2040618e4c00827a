'use strict';

// indexInput(): the exact text a blind index MACs (docs/format.md, "What is
// MACed"): string normalisers in their order, canonical JSON for the rest.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { ObjectId, Decimal128, Binary } = require('bson');
const mongoose = require('mongoose');

const { indexInput, FieldCryptError, errorCodes } = require('fieldcrypt');
const { throwsCode } = require('./helpers');

test('strings: NFC always, then trim, collapseWhitespace, lowercase, normalize, in that order', () => {
  const decomposed = 'Zoe\u0308'; // e + combining diaeresis
  assert.equal(indexInput(decomposed), 'Zo\u00eb');
  assert.equal(indexInput('  A  b\t\n C \u00a0'), '  A  b\t\n C \u00a0', 'no normaliser by default');
  assert.equal(indexInput('  A  b\t\n C \u00a0', { trim: true }), 'A  b\t\n C');
  assert.equal(indexInput('  A  b\t\n C \u00a0', { collapseWhitespace: true }), ' A b C ');
  assert.equal(indexInput('  A  b\t\n C \u00a0', { trim: true, collapseWhitespace: true }), 'A b C');
  assert.equal(indexInput('\u2003ÄB\u3000c', { trim: true, collapseWhitespace: true, lowercase: true }), 'äb c');
  // lowercase before normalize, and normalize sees the NFC, trimmed text
  const seen = [];
  const out = indexInput(' X-1\u0301 ', {
    trim: true,
    lowercase: true,
    normalize: (s) => {
      seen.push(s);
      return s.replace(/-/g, '');
    },
  });
  assert.deepEqual(seen, ['x-1\u0301']); // 1 + acute has no composed form
  assert.equal(out, 'x1\u0301');
  assert.equal(indexInput('ABC', { normalize: (s) => s.toLowerCase(), lowercase: false }), 'abc');
  assert.equal(indexInput(''), '');
});

test('a custom normalize must return a string; options are checked', () => {
  for (const bad of [() => 5, () => undefined, () => null, (s) => [s]]) {
    throwsCode(() => indexInput('x', { normalize: bad }), errorCodes.INVALID_ARGUMENT, FieldCryptError);
  }
  throwsCode(() => indexInput({ a: 'x' }, { normalize: () => 1 }), errorCodes.INVALID_ARGUMENT, FieldCryptError);
  throwsCode(() => indexInput('x', { trim: 'yes' }), errorCodes.INVALID_ARGUMENT, FieldCryptError);
  throwsCode(() => indexInput('x', { normalize: 'lower' }), errorCodes.INVALID_ARGUMENT, FieldCryptError);
  throwsCode(() => indexInput('x', 'trim'), errorCodes.INVALID_ARGUMENT, FieldCryptError);
});

test('scalars other than strings: canonical JSON', () => {
  assert.equal(indexInput(42), '42');
  assert.equal(indexInput(-0), '0');
  assert.equal(indexInput(1.5e300), '1.5e+300');
  assert.equal(indexInput(true), 'true');
  assert.equal(indexInput(false), 'false');
  assert.equal(indexInput(null), 'null');
  assert.equal(indexInput(new Date('2024-02-29T12:34:56.789Z')), '{"$date":"2024-02-29T12:34:56.789Z"}');
  const id = new ObjectId('65a1b2c3d4e5f60718293a4b');
  assert.equal(indexInput(id), '{"$oid":"65a1b2c3d4e5f60718293a4b"}');
  assert.equal(indexInput(new mongoose.Types.ObjectId('65a1b2c3d4e5f60718293a4b')), indexInput(id));
  assert.equal(indexInput(Decimal128.fromString('12.50')), '{"$numberDecimal":"12.50"}');
  assert.equal(indexInput(Buffer.from('hi\u00ff')), '{"$binary":"aGnDvw=="}');
  assert.equal(indexInput(new Uint8Array([1, 2, 3, 4]).subarray(1, 3)), '{"$binary":"AgM="}');
  assert.equal(indexInput(new Binary(Buffer.from('hi\u00ff'))), indexInput(Buffer.from('hi\u00ff')));
});

test('objects: keys sorted by UTF-16 code units, no whitespace, undefined dropped, strings normalised', () => {
  const value = {
    b: 1,
    a: { z: [1, 'X ', undefined], y: null },
    B: ' Y ',
    é: 2,
    '\ud83d\ude00': 3,
    '\uff5e': 4,
    u: undefined,
  };
  assert.equal(
    indexInput(value, { trim: true, lowercase: true }),
    '{"B":"y","a":{"y":null,"z":[1,"x",null]},"b":1,"é":2,"\ud83d\ude00":3,"\uff5e":4}',
  );
  // key order of the input does not matter; member values are not reordered
  assert.equal(indexInput({ x: 1, y: 2 }), indexInput({ y: 2, x: 1 }));
  assert.notEqual(indexInput([1, 2]), indexInput([2, 1]));
  // strings inside are JSON strings; top-level ones are the text itself
  assert.equal(indexInput(['a"b\\c\n']), '["a\\"b\\\\c\\n"]');
  assert.equal(
    indexInput({ d: new Date(0), id: new ObjectId('000000000000000000000001') }),
    '{"d":{"$date":"1970-01-01T00:00:00.000Z"},"id":{"$oid":"000000000000000000000001"}}',
  );
  assert.equal(
    indexInput(
      new Map([
        ['b', 1],
        ['a', 'Q'],
      ]),
      { lowercase: true },
    ),
    '{"a":"q","b":1}',
  );
  assert.equal(indexInput(Object.assign(Object.create(null), { k: 'v' })), '{"k":"v"}');
  // a top-level string is its text, anything else JSON: '1' and 1 give the same text, which
  // is harmless because one path holds one type (its schema's); inside containers they differ
  assert.equal(indexInput('1'), indexInput(1));
  assert.notEqual(indexInput(['1']), indexInput([1]));
  assert.notEqual(indexInput({ a: 'null' }), indexInput({ a: null }));
});

test('anything with toBSON() or toObject() is encoded as what it returns (Mongoose subdocuments)', () => {
  const viaBson = { toBSON: () => ({ b: 2, a: 'A' }), other: 'ignored' };
  assert.equal(indexInput(viaBson), '{"a":"A","b":2}');
  const viaObject = { toObject: () => ({ n: 1 }) };
  assert.equal(indexInput([viaObject]), '[{"n":1}]');
  const schema = new mongoose.Schema(
    { idNumber: String, issued: Date, kind: { type: String, lowercase: true } },
    { _id: false },
  );
  const Parent = mongoose.model('IndexInputParent', new mongoose.Schema({ ids: [schema], one: schema }));
  const doc = new Parent({
    ids: [{ idNumber: 'A1', issued: new Date(0), kind: 'PASS' }],
    one: { idNumber: 'B2', kind: 'ID' },
  });
  assert.equal(indexInput(doc.one), '{"idNumber":"B2","kind":"id"}');
  assert.equal(indexInput(doc.ids), '[{"idNumber":"A1","issued":{"$date":"1970-01-01T00:00:00.000Z"},"kind":"pass"}]');
  assert.equal(indexInput(doc.ids[0]), indexInput({ kind: 'pass', issued: new Date(0), idNumber: 'A1' }));
});

test('refused: non-finite numbers, invalid dates, bigints, functions, symbols, undefined, cycles, other objects', () => {
  const cyclic = { a: 1 };
  cyclic.self = cyclic;
  const refused = [
    NaN,
    Infinity,
    { n: -Infinity },
    new Date('nope'),
    10n,
    () => 1,
    Symbol('s'),
    undefined,
    cyclic,
    [cyclic],
    new Set([1]),
    /re/,
    new (class Point {})(),
    new Map([[1, 'x']]),
  ];
  for (const value of refused) {
    const e = throwsCode(() => indexInput(value), errorCodes.INVALID_ARGUMENT, FieldCryptError);
    assert.match(e.message, /^indexInput\(\)/);
  }
  // the same object twice (not a cycle) is fine
  const shared = { x: 1 };
  assert.equal(indexInput([shared, shared]), '[{"x":1},{"x":1}]');
});
