'use strict';

// Blind index values (issue 20) against an independent node:crypto reference
// of the documented derivation (docs/format.md, "Blind index values"), index
// keys from the environment (child processes with a clean environment) and
// from configureIndexKeys(), and their errors.

const { test, describe, beforeEach, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const { randomKeyHex, throwsCode, runChild, assertNoSecrets } = require('./helpers');

const f = require('fieldcrypt');

const { configureIndexKeys, reloadIndexKeys, indexKeyVersions, blindIndex, blindIndexMany, blindIndexAll } = f;
const { FieldCryptError, errorCodes } = f;

/** The reference: HKDF-SHA256 then HMAC-SHA256, with node:crypto only. */
function reference(keyHex, version, collection, path, input) {
  const info = Buffer.concat([Buffer.from(collection, 'utf8'), Buffer.from([0]), Buffer.from(path, 'utf8')]);
  const kPath = Buffer.from(
    crypto.hkdfSync('sha256', Buffer.from(keyHex, 'hex'), Buffer.from('fieldcrypt/blind-index/v1', 'utf8'), info, 32),
  );
  const mac = crypto.createHmac('sha256', kPath);
  mac.update(typeof input === 'string' ? Buffer.from(input, 'utf8') : input);
  return `${version}:${mac.digest('hex')}`;
}

const K = { '01': randomKeyHex(), '02': randomKeyHex(), '03': randomKeyHex(), 42: randomKeyHex() };
const VALUE_RE = /^\d\d:[0-9a-f]{64}$/;

function randomString(rng, maxLen) {
  const pools = [
    () => String.fromCharCode(0x20 + rng(95)),
    () => String.fromCharCode(0xa0 + rng(0x500)),
    () => String.fromCodePoint(0x1f300 + rng(0x300)),
    () => String.fromCharCode(0xd800 + rng(0x800)), // lone surrogates: UTF-8 U+FFFD on both sides
    () => '\0',
  ];
  let s = '';
  const len = rng(maxLen + 1);
  while (s.length < len) s += pools[rng(pools.length)]();
  return s;
}

function rngOf(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

describe('configured index keys', () => {
  beforeEach(() => configureIndexKeys({ '01': K['01'], '02': K['02'], '03': K['03'] }, { current: '02' }));
  after(() => reloadIndexKeys());

  test('values match the node:crypto reference: strings, Buffers, non-UTF-8 bytes, empty, long', () => {
    const rng = rngOf(20);
    const collections = ['people', 'patients', 'é', 'a.b', 'x'.repeat(120)];
    const paths = ['ssn', 'personExtended.identifications.idNumber', 'ü.ß', 'p'];
    for (let i = 0; i < 600; i++) {
      const collection = collections[rng(collections.length)];
      const path = paths[rng(paths.length)];
      const version = ['01', '02', '03'][rng(3)];
      let input;
      switch (i % 4) {
        case 0:
          input = randomString(rng, 40);
          break;
        case 1:
          input = crypto.randomBytes(rng(80)); // arbitrary bytes, mostly not UTF-8
          break;
        case 2:
          input = new Uint8Array(crypto.randomBytes(rng(200) + 1)).subarray(1);
          break;
        default:
          input = i % 8 === 3 ? '' : randomString(rng, 3000);
      }
      const got = blindIndex(input, { collection, path, version });
      assert.equal(got, reference(K[version], version, collection, path, input), `case ${i}`);
      assert.match(got, VALUE_RE);
      assert.equal(got.length, 67);
    }
    const big = crypto.randomBytes(1 << 20);
    assert.equal(blindIndex(big, { collection: 'c', path: 'p' }), reference(K['02'], '02', 'c', 'p', big));
  });

  test('the current version by default; different collection, path or version give unrelated values', () => {
    const v = blindIndex('123-45-6789', { collection: 'people', path: 'ssn' });
    assert.equal(v, reference(K['02'], '02', 'people', 'ssn', '123-45-6789'));
    const others = [
      blindIndex('123-45-6789', { collection: 'people2', path: 'ssn' }),
      blindIndex('123-45-6789', { collection: 'people', path: 'ssn2' }),
      blindIndex('123-45-6789', { collection: 'people', path: 'ssn', version: '01' }),
      blindIndex('123-45-6788', { collection: 'people', path: 'ssn' }),
      // `collection || 0 || path` is unambiguous: moving the dot does not collide
      blindIndex('123-45-6789', { collection: 'people.ssn', path: 'x' }),
    ];
    for (const o of others) assert.notEqual(o.slice(3), v.slice(3));
    // a string and its UTF-8 bytes are the same input
    assert.equal(
      blindIndex('Zoë', { collection: 'c', path: 'p' }),
      blindIndex(Buffer.from('Zoë'), { collection: 'c', path: 'p' }),
    );
  });

  test('blindIndexMany: one value per input, in order, equal to blindIndex', () => {
    const rng = rngOf(7);
    const inputs = Array.from({ length: 500 }, (_, i) => (i % 3 ? randomString(rng, 30) : crypto.randomBytes(i % 50)));
    const opts = { collection: 'patients', path: 'personExtended.identifications.idNumber' };
    const many = blindIndexMany(inputs, opts);
    assert.equal(many.length, inputs.length);
    inputs.forEach((input, i) => {
      assert.equal(many[i], reference(K['02'], '02', opts.collection, opts.path, input), `index ${i}`);
      assert.equal(many[i], blindIndex(input, opts));
    });
    assert.deepEqual(blindIndexMany([], opts), []);
    assert.deepEqual(blindIndexMany(['a'], { ...opts, version: '03' }), [
      reference(K['03'], '03', opts.collection, opts.path, 'a'),
    ]);
  });

  test('blindIndexMany: array accessors run before the native call, even ones that call fieldcrypt', () => {
    const opts = { collection: 'c', path: 'p' };
    const inputs = ['a', 'b', 'c'];
    let calls = 0;
    Object.defineProperty(inputs, 1, {
      get() {
        calls++;
        blindIndex('nested', opts);
        configureIndexKeys({ '01': K['01'], '02': K['02'], '03': K['03'] }, { current: '02' });
        return 'b';
      },
    });
    const many = blindIndexMany(inputs, opts);
    assert.deepEqual(
      many,
      ['a', 'b', 'c'].map((v) => reference(K['02'], '02', 'c', 'p', v)),
    );
    assert.equal(calls, 1);
  });

  test('blindIndexAll: one value per live version, the current one first', () => {
    const all = blindIndexAll('x', { collection: 'c', path: 'p' });
    assert.deepEqual(
      all,
      ['02', '01', '03'].map((v) => reference(K[v], v, 'c', 'p', 'x')),
    );
    assert.deepEqual(indexKeyVersions(), { current: '02', live: ['01', '02', '03'] });
  });

  test('configureIndexKeys: current defaults to the highest version; all or nothing', () => {
    configureIndexKeys({ 42: K[42], '01': K['01'] });
    assert.deepEqual(indexKeyVersions(), { current: '42', live: ['01', '42'] });
    assert.equal(blindIndex('v', { collection: 'c', path: 'p' }), reference(K[42], '42', 'c', 'p', 'v'));
    throwsCode(() => configureIndexKeys({ '05': 'ab'.repeat(31) }), errorCodes.INVALID_KEY_LENGTH, FieldCryptError);
    throwsCode(() => configureIndexKeys({ '05': 'zz'.repeat(32) }), errorCodes.INVALID_KEY, FieldCryptError);
    const weak = throwsCode(() => configureIndexKeys({ '05': '00'.repeat(32) }), errorCodes.WEAK_KEY, FieldCryptError);
    assert.match(weak.message, /^Weak index key for index key version 05/);
    throwsCode(() => configureIndexKeys({ '05': 5 }), errorCodes.INVALID_KEY, FieldCryptError);
    throwsCode(() => configureIndexKeys({ 5: K['01'] }), errorCodes.INVALID_KEY_VERSION, FieldCryptError);
    throwsCode(() => configureIndexKeys({}), errorCodes.INVALID_ARGUMENT, FieldCryptError);
    throwsCode(() => configureIndexKeys('01'), errorCodes.INVALID_ARGUMENT, FieldCryptError);
    const missing = throwsCode(
      () => configureIndexKeys({ '01': K['01'] }, { current: '02' }),
      errorCodes.INDEX_KEY_NOT_FOUND,
      FieldCryptError,
    );
    assert.equal(missing.keyVersion, '02');
    // a valid key beside an invalid one: nothing changed
    throwsCode(() => configureIndexKeys({ '07': K['01'], '08': 'x' }), errorCodes.INVALID_KEY_LENGTH, FieldCryptError);
    assert.deepEqual(indexKeyVersions(), { current: '42', live: ['01', '42'] });
  });

  test('a missing version is ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND with keyVersion', () => {
    const e = throwsCode(
      () => blindIndex('x', { collection: 'c', path: 'p', version: '09' }),
      errorCodes.INDEX_KEY_NOT_FOUND,
      FieldCryptError,
    );
    assert.equal(e.keyVersion, '09');
    assert.match(e.message, /^Index key not found for index key version 09: set ENCRYPTION_INDEX_KEY_V09/);
    throwsCode(
      () => blindIndexMany(['x'], { collection: 'c', path: 'p', version: '09' }),
      errorCodes.INDEX_KEY_NOT_FOUND,
      FieldCryptError,
    );
  });

  test('bad arguments are ERR_FIELDCRYPT_INVALID_ARGUMENT (or _INVALID_KEY_VERSION), naming no value', () => {
    const opts = { collection: 'c', path: 'p' };
    const bad = [
      () => blindIndex(42, opts),
      () => blindIndex(null, opts),
      () => blindIndex(new Uint16Array(2), opts),
      () => blindIndex('secret-value', undefined),
      () => blindIndex('secret-value', { path: 'p' }),
      () => blindIndex('secret-value', { collection: '', path: 'p' }),
      () => blindIndex('secret-value', { collection: 'c', path: 'a\0b' }),
      () => blindIndex('secret-value', { collection: 'c\0', path: 'p' }),
      () => blindIndex('secret-value', { collection: 'c', path: 7 }),
      () => blindIndexMany('secret-value', opts),
      () => blindIndexMany(['a', 5], opts),
      () => blindIndexAll({}, opts),
      () => blindIndexAll('secret-value', { collection: 'c' }),
    ];
    for (const fn of bad) {
      const e = throwsCode(fn, errorCodes.INVALID_ARGUMENT, FieldCryptError);
      assert.ok(!e.message.includes('secret-value'));
    }
    const e = throwsCode(() => blindIndexMany(['a', 5], opts), errorCodes.INVALID_ARGUMENT, FieldCryptError);
    assert.match(e.message, /at index 1/);
    throwsCode(() => blindIndex('x', { ...opts, version: '1' }), errorCodes.INVALID_KEY_VERSION, FieldCryptError);
  });

  test('an index key equal to an encryption key is refused, whichever is loaded first', () => {
    const enc = randomKeyHex();
    f.configureKeys({ '01': enc, '02': randomKeyHex() });
    try {
      // either hex case: the same key
      const e = throwsCode(
        () => configureIndexKeys({ '01': K['01'], '03': enc.toUpperCase() }),
        errorCodes.KEY_CONFLICT,
        FieldCryptError,
      );
      assert.match(e.message, /index key of index key version 03 is the encryption key of key version 01/);
      assertNoSecrets(e.message + e.stack, [enc]);
      assert.deepEqual(indexKeyVersions().live, ['01', '02', '03'], 'the previous index keys stay');
      // and an encryption key equal to a loaded index key
      const e2 = throwsCode(() => f.configureKeys({ '04': K['03'] }), errorCodes.KEY_CONFLICT, FieldCryptError);
      assert.match(e2.message, /index key of index key version 03 is the encryption key of key version 04/);
    } finally {
      f.reloadKeys();
    }
  });
});

// Environment mode, each case in a child process with only PATH and the given variables.
const PRELUDE = `
'use strict';
const f = require('fieldcrypt');
function attempt(fn) {
  try { return { ok: true, value: fn() }; }
  catch (e) { return { ok: false, code: e.code, message: e.message, keyVersion: e.keyVersion,
    isFieldCryptError: e instanceof f.FieldCryptError }; }
}
function report(obj) { process.stdout.write(JSON.stringify(obj)); }
const O = { collection: 'people', path: 'ssn' };
`;

function run(body, env) {
  const result = runChild(PRELUDE + body, env);
  const secrets = Object.values(env).filter((v) => /^[0-9a-f]{64}$/i.test(v));
  assertNoSecrets(result.stdout, secrets, 'child stdout');
  assertNoSecrets(result.stderr, secrets, 'child stderr');
  assert.equal(result.status, 0, `child failed: ${result.stderr}`);
  return JSON.parse(result.stdout);
}

describe('index keys from the environment', () => {
  test('ENCRYPTION_INDEX_KEY is version 01; nothing is read at import', () => {
    const r = run(
      `const before = f.indexKeyVersions();
       process.env.ENCRYPTION_INDEX_KEY = process.env.LATER;
       report({ before, v: f.blindIndex('a', O), versions: f.indexKeyVersions() });`,
      { LATER: K['01'] },
    );
    assert.deepEqual(r.before, { current: null, live: [] });
    assert.equal(r.v, reference(K['01'], '01', 'people', 'ssn', 'a'));
    assert.deepEqual(r.versions, { current: '01', live: ['01'] });
  });

  test('no index key: ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND naming the variable, then it is read when set', () => {
    const r = run(
      `const a = attempt(() => f.blindIndex('a', O));
       const b = attempt(() => f.blindIndexAll('a', O));
       process.env.ENCRYPTION_INDEX_KEY_V01 = process.env.LATER;
       report({ a, b, c: attempt(() => f.blindIndex('a', O)) });`,
      { LATER: K['01'], ENCRYPTION_KEY: K['03'] },
    );
    for (const e of [r.a, r.b]) {
      assert.equal(e.code, 'ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND');
      assert.equal(e.isFieldCryptError, true);
      assert.equal(e.keyVersion, '01');
      assert.match(e.message, /ENCRYPTION_INDEX_KEY \(or ENCRYPTION_INDEX_KEY_V01\)/);
    }
    assert.equal(r.c.value, reference(K['01'], '01', 'people', 'ssn', 'a'));
  });

  test('versions: the highest by default, ENCRYPTION_INDEX_KEY_VERSION picks; a later version is read when asked for', () => {
    const env = { ENCRYPTION_INDEX_KEY: K['01'], ENCRYPTION_INDEX_KEY_V03: K['03'] };
    const r = run(
      `const first = f.indexKeyVersions();
       const all = f.blindIndexAll('a', O);
       process.env.ENCRYPTION_INDEX_KEY_V42 = process.env.LATER;
       const later = f.blindIndex('a', { ...O, version: '42' });
       process.env.ENCRYPTION_INDEX_KEY_VERSION = '01';
       f.reloadIndexKeys();
       report({ first, all, later, reloaded: f.indexKeyVersions(), v: f.blindIndex('a', O) });`,
      { ...env, LATER: K[42] },
    );
    assert.deepEqual(r.first, { current: '03', live: ['01', '03'] });
    assert.deepEqual(
      r.all,
      ['03', '01'].map((v) => reference(K[v], v, 'people', 'ssn', 'a')),
    );
    assert.equal(r.later, reference(K[42], '42', 'people', 'ssn', 'a'));
    assert.deepEqual(r.reloaded, { current: '01', live: ['01', '03', '42'] });
    assert.equal(r.v, reference(K['01'], '01', 'people', 'ssn', 'a'));
  });

  test('env errors: invalid key, conflicting 01, current version without a key, bad version', () => {
    const cases = [
      [{ ENCRYPTION_INDEX_KEY: 'abc' }, 'ERR_FIELDCRYPT_INVALID_KEY_LENGTH', /^Invalid index key length/],
      [{ ENCRYPTION_INDEX_KEY_V02: '11'.repeat(32) }, 'ERR_FIELDCRYPT_WEAK_KEY', /^Weak index key/],
      [
        { ENCRYPTION_INDEX_KEY: K['01'], ENCRYPTION_INDEX_KEY_V01: K['02'] },
        'ERR_FIELDCRYPT_KEY_CONFLICT',
        /ENCRYPTION_INDEX_KEY and ENCRYPTION_INDEX_KEY_V01/,
      ],
      [
        { ENCRYPTION_INDEX_KEY: K['01'], ENCRYPTION_INDEX_KEY_VERSION: '02' },
        'ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND',
        /ENCRYPTION_INDEX_KEY_V02/,
      ],
      [
        { ENCRYPTION_INDEX_KEY: K['01'], ENCRYPTION_INDEX_KEY_VERSION: 'two' },
        'ERR_FIELDCRYPT_INVALID_KEY_VERSION',
        /ENCRYPTION_INDEX_KEY_VERSION/,
      ],
      // an index key that is an encryption key, before that key is ever used
      [
        { ENCRYPTION_INDEX_KEY: K['01'], ENCRYPTION_KEY_V07: K['01'].toUpperCase() },
        'ERR_FIELDCRYPT_KEY_CONFLICT',
        /index key version 01 is the encryption key in ENCRYPTION_KEY_V07/,
      ],
    ];
    for (const [env, code, message] of cases) {
      const r = run(`report(attempt(() => f.blindIndex('a', O)));`, env);
      assert.equal(r.code, code, JSON.stringify(Object.keys(env)));
      assert.match(r.message, message);
    }
  });

  test('an encryption key loaded (lazily, from env) after an index key equal to it is refused', () => {
    const r = run(
      `f.configureIndexKeys({ '05': process.env.LATER });
       process.env.ENCRYPTION_KEY = process.env.LATER;
       report({ enc: attempt(() => f.encrypt('x')), index: attempt(() => f.blindIndex('b', O)) });`,
      { LATER: K['03'] },
    );
    assert.equal(r.enc.code, 'ERR_FIELDCRYPT_KEY_CONFLICT');
    assert.match(r.enc.message, /index key of index key version 05 is the encryption key of key version 01/);
    assert.equal(r.index.value, reference(K['03'], '05', 'people', 'ssn', 'b'));
  });
});
