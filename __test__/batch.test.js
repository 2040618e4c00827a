'use strict';

// encryptMany / decryptMany and their async variants: byte-compatible with
// node:crypto in both directions, in order, across the internal pieces a
// long batch is cut into, with exact error indexes. No timing assertions:
// speed is measured by `npm run bench`.

const test = require('node:test');
const assert = require('node:assert/strict');
const {
  encrypt,
  decrypt,
  encryptMany,
  decryptMany,
  encryptManyAsync,
  decryptManyAsync,
  configureKeys,
  reloadKeys,
  errorCodes,
  FieldCryptError,
} = require('..');
const { STRICT_FORMAT_RE, randomKeyHex, nodeEncrypt, nodeDecrypt } = require('./helpers');

const K1 = randomKeyHex();
const K2 = randomKeyHex();

test.beforeEach(() => configureKeys({ '01': K1, '02': K2 }, { current: '01' }));
test.after(() => reloadKeys());

/** A mix that exercises every path: empty, ASCII, multi-byte, emoji, NUL, long. */
function sample(n) {
  const shapes = ['', 'A1234567', 'Ünïcödé 日本語', '🛂🪪👩🏽‍💻', 'a\0b', 'x'.repeat(30000), '123-45-6789'];
  return Array.from({ length: n }, (_, i) => `${shapes[i % shapes.length]}#${i}`);
}

for (const [name, enc, dec] of [
  ['sync', encryptMany, decryptMany],
  ['async', encryptManyAsync, decryptManyAsync],
]) {
  test(`${name}: round trip in order, over many pieces, interoperable with node:crypto`, async () => {
    const values = sample(3000);
    const stored = await enc(values);
    assert.equal(stored.length, values.length);
    for (let i = 0; i < values.length; i++) {
      assert.match(stored[i], STRICT_FORMAT_RE);
      assert.equal(nodeDecrypt(K1, stored[i]), values[i], `node:crypto reads value ${i}`);
    }
    assert.deepEqual(await dec(stored), values);
    const fromNode = values.map((v) => nodeEncrypt(K1, v));
    assert.deepEqual(await dec(fromNode), values);
  });

  test(`${name}: empty batch, and the write version option`, async () => {
    assert.deepEqual(await enc([]), []);
    assert.deepEqual(await dec([]), []);
    const stored = await enc(['a', 'b'], { keyVersion: '02' });
    assert.ok(stored.every((s) => s.startsWith('02:')));
    assert.deepEqual(await dec(stored), ['a', 'b']);
  });

  test(`${name}: a surrogate pair split across two values behaves as with single calls`, async () => {
    const values = ['x\ud83d', '\udec2y', '\ud83d\udec2'];
    const stored = await enc(values);
    assert.deepEqual(
      await dec(stored),
      values.map((v) => decrypt(encrypt(v))),
    );
    // The same after long values, so that the split pair is in a later run
    // of a piece made of several joined runs.
    const long = Array.from({ length: 9 }, (_, i) => `${i}`.repeat(50_000));
    const mixed = [...long, ...values, ...long];
    const storedMixed = await enc(mixed);
    assert.deepEqual(
      await dec(storedMixed),
      mixed.map((v) => decrypt(encrypt(v))),
    );
  });

  test(`${name}: long values that are ASCII but for one character at either end`, async () => {
    // Long runs are read as ASCII first and again as UTF-8 when they are not
    // (src/napi/io.rs read_utf8): the first read can fill the buffer exactly
    // (é first) or stop one character short (é last).
    const values = ['é' + 'a'.repeat(19_999), 'b'.repeat(20_000) + 'é', '😀' + 'c'.repeat(30_000), 'd'.repeat(40_000)];
    for (const batch of [...values.map((v) => [v]), values]) {
      const stored = await enc(batch);
      batch.forEach((v, i) => assert.equal(nodeDecrypt(K1, stored[i]), v, `value ${i}`));
      assert.deepEqual(await dec(stored), batch);
    }
  });

  test(`${name}: the first bad value fails the whole batch, with its index`, async () => {
    const good = await enc(sample(2500));
    const tampered = good[2100].slice(0, -2) + (good[2100].endsWith('00') ? '11' : '00');
    const cases = [
      [[...good.slice(0, 2100), tampered], 2100, errorCodes.AUTH_FAILED],
      [[...good.slice(0, 1500), 'not encrypted'], 1500, errorCodes.INVALID_FORMAT],
      [[good[0], 'é'.repeat(80)], 1, errorCodes.INVALID_FORMAT],
      [[good[0], good[1], 42], 2, errorCodes.INVALID_FORMAT],
    ];
    for (const [input, index, code] of cases) {
      await assert.rejects(
        async () => dec(input),
        (err) => {
          assert.ok(err instanceof FieldCryptError, err.stack);
          assert.equal(err.code, code);
          assert.equal(err.index, index);
          assert.match(err.message, new RegExp(`\\(at index ${index}\\)$`));
          return true;
        },
      );
    }
    await assert.rejects(
      async () => enc(['a', 'b', null]),
      (err) => err.code === errorCodes.INVALID_ARGUMENT && err.index === 2,
    );
    await assert.rejects(
      async () => enc('abc'),
      (err) => err.code === errorCodes.INVALID_ARGUMENT,
    );
    await assert.rejects(
      async () => dec(new Set()),
      (err) => err.code === errorCodes.INVALID_ARGUMENT,
    );
  });

  test(`${name}: a key version not yet loaded is read from process.env`, async () => {
    reloadKeys();
    const k3 = randomKeyHex();
    process.env.ENCRYPTION_KEY_V03 = k3;
    try {
      const stored = [nodeEncrypt(k3, 'from env', { version: '03' })];
      assert.deepEqual(await dec(stored), ['from env']);
      const written = await enc(['later'], { keyVersion: '03' });
      assert.equal(nodeDecrypt(k3, written[0]), 'later');
    } finally {
      delete process.env.ENCRYPTION_KEY_V03;
    }
  });

  test(`${name}: a missing key fails with KEY_NOT_FOUND naming the version`, async () => {
    await assert.rejects(
      async () => enc(['a'], { keyVersion: '07' }),
      (err) => err.code === errorCodes.KEY_NOT_FOUND && err.keyVersion === '07',
    );
    const stored = [nodeEncrypt(randomKeyHex(), 'x', { version: '08' })];
    await assert.rejects(
      async () => dec(stored),
      (err) => err.code === errorCodes.KEY_NOT_FOUND && err.keyVersion === '08',
    );
  });
}

test('sync: pieces joined and value by value, in small and large batches, agree with node:crypto', () => {
  // Sync batches join pieces of short values and go value by value through
  // longer ones, unless the batch's results come to 8 MiB and more (lib/core/batch.js
  // oneByOnePiece); text of 40,000 bytes stores as external strings either way.
  const text = (bytes, i) => `${i}:${'é'.repeat(i % 3)}`.padEnd(bytes, 'abcdefghij');
  const check = (values, what) => {
    const stored = encryptMany(values);
    values.forEach((v, i) => assert.equal(nodeDecrypt(K1, stored[i]), v, `${what}, value ${i}`));
    assert.deepEqual(decryptMany(stored), values, what);
    assert.deepEqual(decryptMany(values.map((v) => nodeEncrypt(K1, v))), values, `${what} from node:crypto`);
  };
  for (const bytes of [10, 150, 250, 1000, 5000, 40_000]) {
    check(
      Array.from({ length: 40 }, (_, i) => text(bytes, i)),
      `40 x ${bytes} B`,
    );
  }
  // One batch through short and long pieces, in order.
  check(
    [10, 5000, 150, 40_000, 1000, 10].flatMap((bytes) => Array.from({ length: 9 }, (_, i) => text(bytes, i))),
    'mixed',
  );
  // 9 MB of text, 18 MB stored: long values joined.
  check(
    Array.from({ length: 600 }, (_, i) => text(15_000, i)),
    '600 x 15,000 B',
  );
});

test('sync: errors and keys loaded from process.env in a piece that goes value by value', () => {
  const values = Array.from({ length: 30 }, (_, i) => `${i}`.repeat(2000));
  const stored = encryptMany(values);
  const bad = [...stored];
  bad[17] = bad[17].slice(0, -2) + (bad[17].endsWith('00') ? '11' : '00');
  assert.throws(
    () => decryptMany(bad),
    (err) =>
      err instanceof FieldCryptError &&
      err.code === errorCodes.AUTH_FAILED &&
      err.index === 17 &&
      /\(at index 17\)$/.test(err.message),
  );
  reloadKeys();
  const k4 = randomKeyHex();
  process.env.ENCRYPTION_KEY_V04 = k4;
  try {
    const fromEnv = values.map((v) => nodeEncrypt(k4, v, { version: '04' }));
    assert.deepEqual(decryptMany(fromEnv), values);
    const written = encryptMany(values, { keyVersion: '04' });
    assert.equal(nodeDecrypt(k4, written[29]), values[29]);
  } finally {
    delete process.env.ENCRYPTION_KEY_V04;
  }
  assert.throws(
    () => encryptMany(values, { keyVersion: '09' }),
    (err) => err.code === errorCodes.KEY_NOT_FOUND && err.keyVersion === '09',
  );
});

test('async: keys changed while a batch runs: every value is whole under one key or the other', async () => {
  const values = sample(4000);
  const pending = encryptManyAsync(values);
  const K1b = randomKeyHex();
  configureKeys({ '01': K1b });
  const stored = await pending;
  assert.equal(nodeDecrypt(K1, stored[0]), values[0], 'the first piece starts at the call');
  for (let i = 0; i < values.length; i++) {
    let plain;
    try {
      plain = nodeDecrypt(K1, stored[i]);
    } catch {
      plain = nodeDecrypt(K1b, stored[i]);
    }
    assert.equal(plain, values[i]);
  }
});

test('async: a batch long enough to be returned over several turns of the event loop', async () => {
  // What it shows: while a long async batch is pending the event loop keeps
  // turning (timers fire between its pieces), for encryptManyAsync and for
  // decryptManyAsync each; a batch done in one synchronous block would let no
  // timer run before its promise settles.
  const values = Array.from({ length: 50_000 }, (_, i) => `v${i}`);
  async function whilePending(run) {
    let pending = true;
    let ticks = 0;
    const ticker = setInterval(() => pending && ticks++, 0);
    try {
      const result = await run();
      pending = false;
      return { result, ticks };
    } finally {
      clearInterval(ticker);
    }
  }
  const encrypted = await whilePending(() => encryptManyAsync(values));
  assert.equal(encrypted.result.length, values.length);
  assert.equal(nodeDecrypt(K1, encrypted.result[49_999]), 'v49999');
  assert.ok(encrypted.ticks >= 2, `timers ran while encryptManyAsync was pending (${encrypted.ticks} turns)`);
  const decrypted = await whilePending(() => decryptManyAsync(encrypted.result));
  assert.deepEqual(decrypted.result, values);
  assert.ok(decrypted.ticks >= 2, `timers ran while decryptManyAsync was pending (${decrypted.ticks} turns)`);
  // The sync batch, by contrast, holds the event loop for the whole call.
  const sync = await whilePending(async () => encryptMany(values));
  assert.equal(sync.ticks, 0, 'no timer runs during a sync batch');
});

test('async: values are checked piece by piece; one that is not a string, late in the batch, fails it with its index', async () => {
  // Each piece's values are checked in the turn that starts it (lib/core/batch-async.js
  // nextPiece), so the first pieces are on the pool before this one is read.
  const values = Array.from({ length: 60_000 }, (_, i) => `v${i}`);
  for (const [bad, code, fn] of [
    [null, errorCodes.INVALID_ARGUMENT, encryptManyAsync],
    [42, errorCodes.INVALID_FORMAT, decryptManyAsync],
  ]) {
    const input = fn === encryptManyAsync ? [...values] : await encryptManyAsync(values);
    input[55_555] = bad;
    await assert.rejects(
      async () => fn(input),
      (err) => {
        assert.ok(err instanceof FieldCryptError, err.stack);
        assert.equal(err.code, code);
        assert.equal(err.index, 55_555);
        assert.match(err.message, /\(at index 55555\)$/);
        return true;
      },
    );
  }
  // A hole reads as undefined, as in the sync batches.
  const holey = new Array(3);
  holey[0] = 'a';
  await assert.rejects(
    async () => encryptManyAsync(holey),
    (err) => err.code === errorCodes.INVALID_ARGUMENT && err.index === 1,
  );
});

test('async: the input array may change after the call', async () => {
  const values = sample(2000);
  const copy = [...values];
  const pending = encryptManyAsync(values);
  values.fill('changed');
  const stored = await pending;
  assert.deepEqual(decryptMany(stored), copy);
});

test('async: more pieces than the pool is given at once; a bad value in a late piece fails the batch with its index', async () => {
  // Stored, about 6,000 of these make a piece (4 runs of 120 KiB), and at
  // most 16 pieces are on the pool (lib/core/batch-async.js IN_FLIGHT): decrypting
  // 200,000 of them, 34 pieces, the later ones wait for places.
  const values = Array.from({ length: 200_000 }, (_, i) => `v${i}`);
  const stored = await encryptManyAsync(values);
  for (const i of [0, 99_999, 199_999]) assert.equal(nodeDecrypt(K1, stored[i]), values[i], `value ${i}`);
  assert.deepEqual(await decryptManyAsync(stored), values);
  const bad = [...stored];
  bad[190_000] = bad[190_000].slice(0, -2) + (bad[190_000].endsWith('00') ? '11' : '00');
  await assert.rejects(
    async () => decryptManyAsync(bad),
    (err) => err.code === errorCodes.AUTH_FAILED && err.index === 190_000 && /\(at index 190000\)$/.test(err.message),
  );
});
