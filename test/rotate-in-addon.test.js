'use strict';

// Key rotation never brings a plaintext into JavaScript (README: "the
// plaintext never reaches JavaScript during rotation"): reEncrypt() and
// `fieldcrypt rotate` re-encrypt inside the native addon. Checked by counting
// calls to every decrypt entry point while they run: the JavaScript ones
// (decrypt, decryptBuffer, decryptMany, decryptManyAsync, on every module
// object that exports them) and the addon's own (decrypt, decryptBytes,
// decryptJoined, decryptJoinedAsync), each wrapped in place by a counting spy
// that calls the original. `rotate` runs in this process, through
// lib/cli's main(argv, io), against the test server.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { openCliDatabase, jsonOf } = require('./cli-helpers');
const fieldcrypt = require('..');
const core = require('../lib/core');
const single = require('../lib/core/single');
const native = require('../lib/core/native').load();
const codec = require('../lib/core/codec');
const { storedValueContext } = require('../lib/core/context');
const { main } = require('../lib/cli');

const JS_ENTRY_POINTS = ['decrypt', 'decryptBuffer', 'decryptMany', 'decryptManyAsync'];
const NATIVE_ENTRY_POINTS = ['decrypt', 'decryptBytes', 'decryptJoined', 'decryptJoinedAsync'];

/**
 * Wraps every decrypt entry point with a counting spy; returns
 * { calls: { 'module.fn': n }, total(), restore() }.
 */
function spyOnDecrypt() {
  const calls = {};
  const restores = [];
  const wrap = (label, object, name) => {
    const original = object[name];
    assert.equal(typeof original, 'function', `${label}.${name} exists`);
    calls[`${label}.${name}`] = 0;
    object[name] = function countingSpy(...args) {
      calls[`${label}.${name}`]++;
      return original.apply(this, args);
    };
    restores.push(() => (object[name] = original));
  };
  for (const [label, object] of [
    ['fieldcrypt', fieldcrypt],
    ['lib/core', core],
    ['lib/core/single', single],
  ]) {
    for (const name of JS_ENTRY_POINTS) if (name in object) wrap(label, object, name);
  }
  for (const name of NATIVE_ENTRY_POINTS) wrap('addon', native, name);
  return {
    calls,
    total: () => Object.values(calls).reduce((a, b) => a + b, 0),
    restore: () => restores.forEach((r) => r()),
  };
}

/** Runs `fn` with the spies on; returns [its result, the calls]. */
async function counting(fn) {
  const spy = spyOnDecrypt();
  try {
    return [await fn(), { ...spy.calls }, spy.total()];
  } finally {
    spy.restore();
  }
}

const NOT_UTF8 = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0xa0, 0xa1, 0xe2, 0x28, 0xa1, 0x80]);

describe('rotation keeps the plaintext inside the addon', () => {
  let t;
  let BSON;

  before(async () => {
    t = await openCliDatabase(__filename);
    BSON = require('mongodb').BSON;
  });
  after(() => t && t.close());

  it('the spies see the decrypt calls they are meant to count', async () => {
    // Without this, a spy on the wrong object would make every check below pass.
    const stored = fieldcrypt.encrypt('counted-zz');
    const [, calls] = await counting(() => {
      fieldcrypt.decrypt(stored);
      fieldcrypt.decryptBuffer(fieldcrypt.encryptBuffer(NOT_UTF8));
      fieldcrypt.decryptMany([stored]);
      return fieldcrypt.decryptManyAsync([stored]);
    });
    assert.ok(calls['fieldcrypt.decrypt'] === 1 && calls['addon.decrypt'] === 1, JSON.stringify(calls));
    assert.ok(calls['fieldcrypt.decryptBuffer'] === 1 && calls['addon.decryptBytes'] === 1, JSON.stringify(calls));
    assert.ok(calls['fieldcrypt.decryptMany'] === 1 && calls['addon.decryptJoined'] === 1, JSON.stringify(calls));
    assert.ok(calls['fieldcrypt.decryptManyAsync'] === 1, JSON.stringify(calls));
    // The CLI reaches the core through lib/core; the core's own calls go through lib/core/single's objects.
    const [, viaCore] = await counting(() => core.decrypt(stored));
    assert.equal(viaCore['lib/core.decrypt'], 1);
    const [, viaCodec] = await counting(() => codec.decodeValue(codec.encodeValue(7, BSON), BSON));
    assert.ok(viaCodec['addon.decryptBytes'] + viaCodec['addon.decrypt'] >= 1, JSON.stringify(viaCodec));
  });

  it('reEncrypt(): text, non-UTF-8 Buffers, typed values, bound values: no decrypt call', async () => {
    const context = storedValueContext('people', 'ssn', '"abc"');
    const other = storedValueContext('people', 'ssn', '"def"');
    const cases = [
      { name: 'text', stored: fieldcrypt.encrypt('rotate-me-zz'), read: (s) => fieldcrypt.decrypt(s) },
      {
        name: 'non-UTF-8 Buffer',
        stored: fieldcrypt.encryptBuffer(NOT_UTF8),
        read: (s) => fieldcrypt.decryptBuffer(s),
        want: NOT_UTF8,
      },
      {
        name: 'typed number (plugin codec)',
        stored: codec.encodeValue(4242.5, BSON),
        read: (s) => codec.decodeValue(s, BSON),
        want: 4242.5,
      },
      {
        name: 'typed Date (plugin codec)',
        stored: codec.encodeValue(new Date(1_700_000_000_000), BSON),
        read: (s) => codec.decodeValue(s, BSON),
        want: new Date(1_700_000_000_000),
      },
      {
        name: 'bound text, rebound',
        stored: fieldcrypt.encrypt('bound-zz', { context }),
        options: { context: other, fromContext: context },
        read: (s) => fieldcrypt.decrypt(s, { context: other }),
        want: 'bound-zz',
      },
      {
        name: 'unbound text, bound by rotation',
        stored: fieldcrypt.encrypt('unbound-zz'),
        options: { context, allowUnbound: true },
        read: (s) => fieldcrypt.decrypt(s, { context }),
        want: 'unbound-zz',
      },
    ];
    for (const c of cases) {
      const want = c.want === undefined ? c.read(c.stored) : c.want;
      const [rotated, calls, total] = await counting(() => fieldcrypt.reEncrypt(c.stored, '02', c.options));
      assert.equal(total, 0, `${c.name}: reEncrypt called decrypt entry points ${JSON.stringify(calls)}`);
      const [viaCore, coreCalls, coreTotal] = await counting(() => core.reEncrypt(c.stored, '02', c.options));
      assert.equal(coreTotal, 0, `${c.name}: lib/core reEncrypt called ${JSON.stringify(coreCalls)}`);
      for (const out of [rotated, viaCore]) {
        assert.equal(fieldcrypt.getKeyVersion(out), '02', c.name);
        assert.notEqual(out, c.stored);
        assert.deepEqual(c.read(out), want, `${c.name}: the rotated value reads back`);
      }
    }
  });

  /** Runs the CLI in this process: { code, stdout, stderr }. */
  async function cli(args) {
    let stdout = '';
    let stderr = '';
    const code = await main(args, {
      stdout: { write: (s) => ((stdout += s), true) },
      stderr: { write: (s) => ((stderr += s), true) },
    });
    return { code, stdout, stderr };
  }

  for (const bind of [undefined, 'document']) {
    it(`fieldcrypt rotate --to 02${bind ? ` --bind ${bind}` : ''}: every value re-encrypted, no decrypt call`, async () => {
      const name = bind ? 'bound_people' : 'people';
      const coll = t.db.collection(name);
      const docs = [];
      const expected = new Map();
      for (let i = 0; i < 30; i++) {
        const kind = i % 3;
        const plain = kind === 0 ? `ssn-${i}-zz` : kind === 1 ? Buffer.from([...NOT_UTF8, i]) : i * 1.5;
        const stored =
          kind === 0
            ? fieldcrypt.encrypt(plain)
            : kind === 1
              ? fieldcrypt.encryptBuffer(plain)
              : codec.encodeValue(plain, BSON);
        docs.push({ i, ssn: stored, list: [{ n: fieldcrypt.encrypt(`n-${i}-zz`) }] });
        expected.set(i, { kind, plain });
      }
      await coll.insertMany(docs);
      const args = [
        'rotate',
        '--uri',
        t.uri,
        '--db',
        t.dbName,
        '--collection',
        name,
        '--field',
        'ssn',
        '--field',
        'list.n',
        '--to',
        '02',
        '--batch-size',
        '7',
        '--json',
        '--quiet',
        ...(bind ? ['--bind', bind] : []),
      ];
      const [r, calls, total] = await counting(() => cli(args));
      assert.equal(r.code, 0, r.stderr);
      assert.equal(total, 0, `rotate called decrypt entry points: ${JSON.stringify(calls)}`);
      const [summary] = jsonOf(r).collections;
      assert.equal(summary.perField.ssn.changed, 30);
      assert.equal(summary.perField['list.n'].changed, 30);

      const { EJSON } = BSON;
      for (const doc of await coll.find().toArray()) {
        const { kind, plain } = expected.get(doc.i);
        const context = bind
          ? (field) => storedValueContext(name, field, EJSON.stringify(doc._id, { relaxed: false }))
          : () => undefined;
        const opts = (field) => (bind ? { context: context(field) } : undefined);
        assert.equal(fieldcrypt.getKeyVersion(doc.ssn), '02');
        assert.equal(fieldcrypt.getKeyVersion(doc.list[0].n), '02');
        const read =
          kind === 0
            ? fieldcrypt.decrypt(doc.ssn, opts('ssn'))
            : kind === 1
              ? fieldcrypt.decryptBuffer(doc.ssn, opts('ssn'))
              : codec.decodeValue(doc.ssn, BSON, opts('ssn'));
        assert.deepEqual(read, plain, `doc ${doc.i}: the rotated value reads back`);
        assert.equal(fieldcrypt.decrypt(doc.list[0].n, opts('list.n')), `n-${doc.i}-zz`);
      }
    });
  }
});
