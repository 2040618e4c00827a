'use strict';

// keyUsage() and onKeyUsage(): encryptions counted per key version by the
// addon (src/usage.rs), exactly one per value encrypted, whatever the API;
// none for decryptions. The counts are process-wide and other test files may
// share the process, so every assertion is on a difference, and the versions
// used here (7x) are used by no other test.

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  encrypt,
  decrypt,
  encryptBuffer,
  decryptBuffer,
  reEncrypt,
  encryptMany,
  decryptMany,
  encryptManyAsync,
  decryptManyAsync,
  configureKeys,
  reloadKeys,
  keyUsage,
  onKeyUsage,
  errorCodes,
  FieldCryptError,
} = require('..');
const { randomKeyHex, throwsCode } = require('./helpers');

const KEYS = { '01': randomKeyHex(), 71: randomKeyHex(), 72: randomKeyHex(), 74: randomKeyHex() };

test.beforeEach(() => configureKeys(KEYS, { current: '71' }));
test.after(() => reloadKeys());

/** The encryptions counted under `version` so far. */
function count(version) {
  return keyUsage()[version]?.encryptions ?? 0;
}

/** The change of every version's count while `fn` runs. */
async function deltas(fn) {
  const before = keyUsage();
  await fn();
  const after = keyUsage();
  const out = {};
  for (const v of Object.keys(after)) {
    const d = after[v].encryptions - (before[v]?.encryptions ?? 0);
    if (d !== 0) out[v] = d;
  }
  return out;
}

/** Short, multi-byte and long values (long ones go a native call each). */
function sample(n) {
  const shapes = ['', 'A1234567', 'Ünïcödé 日本語', '🛂🪪', 'x'.repeat(2000), '123-45-6789'];
  return Array.from({ length: n }, (_, i) => `${shapes[i % shapes.length]}#${i}`);
}

test('keyUsage() lists the versions with encryptions, ascending, as { encryptions: number }', () => {
  encrypt('a');
  encrypt('b', { keyVersion: '72' });
  const usage = keyUsage();
  const versions = Object.keys(usage);
  assert.ok(versions.includes('71') && versions.includes('72'));
  assert.deepEqual(versions, [...versions].sort());
  for (const v of versions) {
    assert.match(v, /^\d\d$/);
    assert.deepEqual(Object.keys(usage[v]), ['encryptions']);
    assert.ok(Number.isSafeInteger(usage[v].encryptions) && usage[v].encryptions > 0, v);
  }
  // a fresh object each call
  assert.notEqual(keyUsage(), keyUsage());
});

test('every single-value encryption counts one, under its version', async () => {
  assert.deepEqual(
    await deltas(() => {
      encrypt('a');
      encrypt('ü'.repeat(100_000)); // a large value (an external string)
      encrypt('b', { keyVersion: '72' });
    }),
    { 71: 2, 72: 1 },
  );
  assert.deepEqual(
    await deltas(() => {
      encryptBuffer(Buffer.from([1, 2, 3]));
      encryptBuffer(new Uint8Array(0), { keyVersion: '72' });
    }),
    { 71: 1, 72: 1 },
  );
  // reEncrypt decrypts and encrypts once, under the new version only
  const stored = encrypt('rotate me', { keyVersion: '01' });
  assert.deepEqual(await deltas(() => reEncrypt(stored, '72')), { 72: 1 });
});

for (const [name, enc, dec] of [
  ['sync', encryptMany, decryptMany],
  ['async', encryptManyAsync, decryptManyAsync],
]) {
  test(`${name} batches count one per value, over many pieces and both forms`, async () => {
    const values = sample(20_000);
    let stored;
    assert.deepEqual(
      await deltas(async () => {
        stored = await enc(values, { keyVersion: '72' });
      }),
      { 72: values.length },
    );
    assert.deepEqual(await deltas(() => enc(['a', 'b', 'c'])), { 71: 3 });
    assert.deepEqual(await deltas(() => enc([])), {});
    // a surrogate pair split across two values: the batch goes value by value
    assert.deepEqual(await deltas(() => enc(['x\ud83d', '\udec2y', 'z'])), { 71: 3 });
    // decrypting counts nothing
    assert.deepEqual(await deltas(() => dec(stored)), {});
  });
}

test('decryption counts nothing; a refused encryption counts nothing', async () => {
  const stored = encrypt('secret');
  const bytes = encryptBuffer(Buffer.from('bytes'));
  assert.deepEqual(
    await deltas(() => {
      decrypt(stored);
      decryptBuffer(bytes);
      assert.throws(() => decrypt(stored.slice(0, -2) + '00'), { code: errorCodes.AUTH_FAILED });
      throwsCode(() => encrypt('x', { keyVersion: '73' }), errorCodes.KEY_NOT_FOUND, FieldCryptError);
      throwsCode(() => encryptMany(['x'], { keyVersion: '73' }), errorCodes.KEY_NOT_FOUND, FieldCryptError);
      // reEncrypt of a value that does not decrypt encrypts nothing
      assert.throws(() => reEncrypt(stored.slice(0, -2) + '00', '72'), { code: errorCodes.AUTH_FAILED });
    }),
    {},
  );
  await assert.rejects(encryptManyAsync(['x'], { keyVersion: '73' }), { code: errorCodes.KEY_NOT_FOUND });
  assert.equal(count('73'), 0);
});

test('counts are per version, not per key: they survive configureKeys and reloadKeys', () => {
  encrypt('a');
  const before = count('71');
  configureKeys({ ...KEYS, 71: randomKeyHex() }, { current: '71' });
  assert.equal(count('71'), before);
  encrypt('b');
  assert.equal(count('71'), before + 1);
  reloadKeys();
  assert.equal(count('71'), before + 1);
});

/** Only the variables that choose the addon file. */
function nativeEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => name.startsWith('FIELDCRYPT_NATIVE_')));
}

test('counts are per process: encryptions in a worker thread count', async () => {
  const { Worker } = require('node:worker_threads');
  const before = count('74');
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
    const f = require(workerData.entry);
    f.configureKeys({ '74': workerData.key });
    f.encrypt('a'); f.encryptMany(['b', 'c']);
    parentPort.postMessage(f.keyUsage()['74'].encryptions);`,
    // The worker must load the same addon file (FIELDCRYPT_NATIVE_*): each file has its own counts.
    { eval: true, workerData: { entry: require.resolve('..'), key: KEYS['74'] }, env: nativeEnv() },
  );
  let seen;
  worker.once('message', (message) => (seen = message));
  const code = await new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('exit', resolve);
  });
  assert.equal(code, 0);
  assert.equal(typeof seen, 'number', 'the worker reported its count');
  assert.ok(seen >= before + 3);
  assert.equal(count('74') - before, 3);
});

test('onKeyUsage: the handler is called once per version when its count reaches the threshold', () => {
  encrypt('a', { keyVersion: '72' });
  const threshold = count('72') + 3;
  const calls = [];
  const hook = onKeyUsage({ threshold, handler: (event) => calls.push(event) });
  try {
    const for72 = () => calls.filter((e) => e.version === '72');
    encryptMany(['a', 'b'], { keyVersion: '72' });
    hook.check();
    assert.deepEqual(for72(), []);
    encrypt('c', { keyVersion: '72' });
    hook.check();
    assert.deepEqual(for72(), [{ version: '72', encryptions: threshold, threshold, limit: 2 ** 32 }]);
    encryptMany(['d', 'e'], { keyVersion: '72' });
    hook.check();
    hook.check();
    assert.equal(for72().length, 1);
    // Other versions already past this (small) threshold: once each too.
    const versions = calls.map((e) => e.version);
    assert.deepEqual(versions, [...new Set(versions)]);
    for (const e of calls) assert.ok(e.encryptions >= threshold && e.limit === 2 ** 32, e.version);
  } finally {
    hook.remove();
  }
});

test('onKeyUsage: hooks check on their own timer, each with its own threshold', async () => {
  encrypt('a', { keyVersion: '72' });
  const low = [];
  const high = [];
  const base = count('72');
  const hooks = [
    onKeyUsage({ threshold: base + 1, intervalMs: 5, handler: (e) => e.version === '72' && low.push(e) }),
    onKeyUsage({ threshold: base + 2, intervalMs: 5, handler: (e) => e.version === '72' && high.push(e) }),
  ];
  try {
    encrypt('b', { keyVersion: '72' });
    for (let i = 0; i < 400 && low.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(low.length, 1);
    assert.equal(low[0].threshold, base + 1);
    await new Promise((r) => setTimeout(r, 40));
    assert.equal(high.length, 0);
    encrypt('c', { keyVersion: '72' });
    for (let i = 0; i < 400 && high.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 40));
    assert.deepEqual([low.length, high.length], [1, 1]);
    assert.equal(high[0].encryptions, base + 2);
  } finally {
    hooks.forEach((h) => h.remove());
  }
});

test('onKeyUsage: remove() stops the hook, timer and check() alike', async () => {
  encrypt('a', { keyVersion: '72' });
  const calls = [];
  const hook = onKeyUsage({ threshold: count('72') + 1, intervalMs: 5, handler: (e) => calls.push(e) });
  hook.remove();
  hook.remove(); // twice is harmless
  encrypt('b', { keyVersion: '72' });
  await new Promise((r) => setTimeout(r, 50));
  hook.check();
  assert.deepEqual(calls, []);
});

test('onKeyUsage: a handler that throws is reported as a process warning, and the check goes on', async () => {
  encrypt('a', { keyVersion: '72' });
  const seen = [];
  const hook = onKeyUsage({
    threshold: count('72'),
    handler: (e) => {
      seen.push(e.version);
      throw new Error(`handler failed for ${e.version}`);
    },
  });
  try {
    const warning = new Promise((resolve) => process.once('warning', resolve));
    hook.check();
    assert.ok(seen.includes('72'), 'every version past the threshold was reported');
    const w = await warning;
    assert.match(w.message, /^handler failed for \d\d$/);
    hook.check(); // reported versions are not reported again
    assert.deepEqual(seen, [...new Set(seen)]);
  } finally {
    hook.remove();
  }
});

test('onKeyUsage: bad arguments → ERR_FIELDCRYPT_INVALID_ARGUMENT, and no hook', () => {
  const handler = () => {};
  for (const bad of [
    undefined,
    null,
    'handler',
    [handler],
    handler,
    {},
    { handler: 'log' },
    { handler, threshold: 0 },
    { handler, threshold: -1 },
    { handler, threshold: 1.5 },
    { handler, threshold: NaN },
    { handler, threshold: 2 ** 32 + 1 },
    { handler, threshold: '1000' },
    { handler, threshold: 10n },
    { handler, intervalMs: 0 },
    { handler, intervalMs: 2 ** 31 },
    { handler, intervalMs: Infinity },
    { handler, treshold: 1000 },
  ]) {
    const err = throwsCode(() => onKeyUsage(bad), errorCodes.INVALID_ARGUMENT, FieldCryptError);
    assert.match(err.message, /^onKeyUsage\(\) /);
  }
  // the bounds themselves are accepted
  for (const ok of [
    { handler, threshold: 1, intervalMs: 1 },
    { handler, threshold: 2 ** 32, intervalMs: 2 ** 31 - 1 },
  ]) {
    onKeyUsage(ok).remove();
  }
});
