'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const { forEachAtPath, valuesAtPath, splitPath } = require('../lib/paths');

test('top-level and nested paths', () => {
  const doc = { ssn: '1', a: { b: { c: '2' } }, n: null };
  assert.deepEqual(valuesAtPath(doc, 'ssn'), ['1']);
  assert.deepEqual(valuesAtPath(doc, 'a.b.c'), ['2']);
  assert.deepEqual(valuesAtPath(doc, 'a.x'), []);
  assert.deepEqual(valuesAtPath(doc, 'n'), []);
  assert.deepEqual(valuesAtPath(doc, 'n.deeper'), []);
  assert.deepEqual(valuesAtPath(doc, 'missing.deeper'), []);
});

test('arrays of subdocuments and of primitives, at any depth', () => {
  const doc = {
    personExtended: { identifications: [{ idNumber: 'A' }, { idType: 'x' }, { idNumber: 'B' }, null] },
    tags: ['t1', null, 't2'],
    matrix: [[{ v: 1 }, { v: 2 }], [{ v: 3 }]],
  };
  assert.deepEqual(valuesAtPath(doc, 'personExtended.identifications.idNumber'), ['A', 'B']);
  assert.deepEqual(valuesAtPath(doc, 'tags'), ['t1', 't2']);
  assert.deepEqual(valuesAtPath(doc, 'matrix.v'), [1, 2, 3]);
});

test('set replaces in place and where names the concrete path', () => {
  const doc = { ids: [{ n: 'a' }, { n: 'b' }], tags: ['x', 'y'], one: 'z' };
  const seen = [];
  for (const path of ['ids.n', 'tags', 'one']) {
    forEachAtPath(doc, path, (value, set, where) => {
      seen.push(where);
      set(value.toUpperCase());
    });
  }
  assert.deepEqual(doc, { ids: [{ n: 'A' }, { n: 'B' }], tags: ['X', 'Y'], one: 'Z' });
  assert.deepEqual(seen, ['ids.0.n', 'ids.1.n', 'tags.0', 'tags.1', 'one']);
});

test('$* reaches every value of an object or a Map', () => {
  const doc = {
    m: { a: { s: '1' }, b: { s: '2' } },
    p: new Map([
      ['k', 'v1'],
      ['l', 'v2'],
    ]),
  };
  assert.deepEqual(valuesAtPath(doc, 'm.$*.s'), ['1', '2']);
  forEachAtPath(doc, 'p.$*', (v, set) => set(v + '!'));
  assert.deepEqual([...doc.p.values()], ['v1!', 'v2!']);
});

test('splitPath caches', () => {
  assert.equal(splitPath('a.b'), splitPath('a.b'));
  assert.deepEqual(splitPath('a.b'), ['a', 'b']);
});

test('undefined array elements are not visited, and a path does not go on through a string', () => {
  // Found by mutation testing: nothing checked either.
  const doc = { tags: ['t1', undefined, 't2'], name: 'xyz', nested: { s: 'abc' } };
  assert.deepEqual(valuesAtPath(doc, 'tags'), ['t1', 't2']);
  for (const path of ['name.0', 'name.length', 'nested.s.1']) assert.deepEqual(valuesAtPath(doc, path), [], path);
});
