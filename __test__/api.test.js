'use strict';

// The package surface: exports, error class and codes, argument checks.
// (The Mongoose helpers' behaviour on documents is tested against a real
// server by `npm run test:mongoose`; here only their factories are checked.)

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');

const { randomKeyHex, nodeEncrypt, throwsCode, runChild } = require('./helpers');

const K1 = randomKeyHex();

const fieldcrypt = require('fieldcrypt');
const { encrypt, decrypt, configureKeys, reloadKeys, FieldCryptError, errorCodes } = fieldcrypt;

before(() => {
  configureKeys({ '01': K1 });
});

after(() => {
  reloadKeys();
});

const FUNCTIONS = [
  'encrypt',
  'decrypt',
  'encryptBuffer',
  'decryptBuffer',
  'isEncrypted',
  'reEncrypt',
  'getKeyVersion',
  'encryptMany',
  'decryptMany',
  'encryptManyAsync',
  'decryptManyAsync',
  'configureKeys',
  'reloadKeys',
  'loadedKeyVersions',
  'keyUsage',
  'onKeyUsage',
  'loadKeyVault',
  'configureIndexKeys',
  'reloadIndexKeys',
  'indexKeyVersions',
  'blindIndex',
  'blindIndexMany',
  'blindIndexAll',
  'indexInput',
  'encryptFieldIfModified',
  'createDecryptMethod',
  'createDecryptedGetter',
  'nativeInfo',
  'fieldEncryption',
  'decryptDocument',
  'encryptedPaths',
  'searchablePaths',
];

// Must match FieldCryptErrorCode in index.d.ts.
const CODES = {
  KEY_NOT_FOUND: 'ERR_FIELDCRYPT_KEY_NOT_FOUND',
  INVALID_KEY_LENGTH: 'ERR_FIELDCRYPT_INVALID_KEY_LENGTH',
  INVALID_KEY: 'ERR_FIELDCRYPT_INVALID_KEY',
  WEAK_KEY: 'ERR_FIELDCRYPT_WEAK_KEY',
  INVALID_KEY_VERSION: 'ERR_FIELDCRYPT_INVALID_KEY_VERSION',
  KEY_CONFLICT: 'ERR_FIELDCRYPT_KEY_CONFLICT',
  INDEX_KEY_NOT_FOUND: 'ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND',
  INVALID_FORMAT: 'ERR_FIELDCRYPT_INVALID_FORMAT',
  AUTH_FAILED: 'ERR_FIELDCRYPT_AUTH_FAILED',
  CONTEXT_MISMATCH: 'ERR_FIELDCRYPT_CONTEXT_MISMATCH',
  UNBOUND_VALUE: 'ERR_FIELDCRYPT_UNBOUND_VALUE',
  TOO_LARGE: 'ERR_FIELDCRYPT_TOO_LARGE',
  NOT_UTF8: 'ERR_FIELDCRYPT_NOT_UTF8',
  INVALID_ARGUMENT: 'ERR_FIELDCRYPT_INVALID_ARGUMENT',
  UNSUPPORTED_TYPE: 'ERR_FIELDCRYPT_UNSUPPORTED_TYPE',
  ADDON_NOT_BUILT: 'ERR_FIELDCRYPT_ADDON_NOT_BUILT',
  INTERNAL: 'ERR_FIELDCRYPT_INTERNAL',
  UNENCRYPTED_VALUE: 'ERR_FIELDCRYPT_UNENCRYPTED_VALUE',
  UNSUPPORTED_OPERATOR: 'ERR_FIELDCRYPT_UNSUPPORTED_OPERATOR',
  UNSUPPORTED_QUERY: 'ERR_FIELDCRYPT_UNSUPPORTED_QUERY',
  UNSUPPORTED_CODEC: 'ERR_FIELDCRYPT_UNSUPPORTED_CODEC',
  KMS: 'ERR_FIELDCRYPT_KMS',
  KEY_VAULT: 'ERR_FIELDCRYPT_KEY_VAULT',
};

test('exports exactly the documented names', () => {
  assert.deepEqual(Object.keys(fieldcrypt).sort(), [...FUNCTIONS, 'FieldCryptError', 'errorCodes'].sort());
  for (const name of FUNCTIONS) assert.equal(typeof fieldcrypt[name], 'function', name);
  assert.equal(typeof FieldCryptError, 'function');
});

test('errorCodes is frozen and lists every code', () => {
  assert.deepEqual({ ...errorCodes }, CODES);
  assert.ok(Object.isFrozen(errorCodes));
});

test('FieldCryptError is an Error subclass named FieldCryptError', () => {
  const err = new FieldCryptError(errorCodes.INVALID_FORMAT, 'm');
  assert.ok(err instanceof Error);
  assert.equal(err.name, 'FieldCryptError');
  assert.equal(err.code, errorCodes.INVALID_FORMAT);
  assert.equal(err.message, 'm');
  assert.match(String(err), /^FieldCryptError: m$/);
});

test('errors from the native addon are FieldCryptErrors with a documented code', () => {
  const stored = nodeEncrypt(randomKeyHex(), 'x'); // wrong key
  const err = throwsCode(() => decrypt(stored), errorCodes.AUTH_FAILED, FieldCryptError);
  assert.ok(Object.values(CODES).includes(err.code));
  assert.equal(Object.getPrototypeOf(err), FieldCryptError.prototype);
  assert.match(String(err), /^FieldCryptError: Decryption failed/);
});

test('encrypt() of a non-string → INVALID_ARGUMENT, naming the type but not the value', () => {
  const secret = '4111111111111111';
  for (const value of [
    4111111111111111,
    4111111111111111n,
    null,
    undefined,
    true,
    { secret },
    [secret],
    Buffer.from(secret),
    new String(secret),
    Symbol(secret),
  ]) {
    const err = throwsCode(() => encrypt(value), errorCodes.INVALID_ARGUMENT, FieldCryptError);
    assert.match(err.message, /^encrypt\(\) expects a string, got (null|an? [\w ()]+)$/);
    assert.ok(!err.message.includes('4111111111111111'));
  }
});

test('the Mongoose helper factories return named functions and reject a bad path', () => {
  for (const name of ['encryptFieldIfModified', 'createDecryptMethod', 'createDecryptedGetter']) {
    const fn = fieldcrypt[name]('idNumber');
    assert.equal(typeof fn, 'function');
    assert.equal(fn.name, `${name}(idNumber)`);
    for (const bad of ['', undefined, null, 42, ['idNumber']]) {
      throwsCode(() => fieldcrypt[name](bad), errorCodes.INVALID_ARGUMENT, FieldCryptError);
    }
  }
});

test('a stored value round-trips through JSON (as it would through a database driver)', () => {
  const stored = encrypt('Ünïcödé 日本語 ✓');
  assert.equal(decrypt(JSON.parse(JSON.stringify({ v: stored })).v), 'Ünïcödé 日本語 ✓');
});

test('works in a worker thread, which has its own keyring', async () => {
  const { Worker } = require('node:worker_threads');
  const stored = encrypt('from the main thread');
  const worker = new Worker(
    `const { parentPort, workerData } = require('node:worker_threads');
    const f = require(workerData.entry);
    const before = f.loadedKeyVersions();
    f.configureKeys({ '01': workerData.key });
    parentPort.postMessage({ before, dec: f.decrypt(workerData.stored), enc: f.encrypt('from the worker') });`,
    { eval: true, workerData: { entry: require.resolve('fieldcrypt'), key: K1, stored }, env: {} },
  );
  const message = await new Promise((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await new Promise((resolve) => worker.once('exit', resolve));
  assert.deepEqual(message.before, []);
  assert.equal(message.dec, 'from the main thread');
  assert.equal(decrypt(message.enc), 'from the worker');
});

test('a missing native addon → ERR_FIELDCRYPT_ADDON_NOT_BUILT at require time', () => {
  const result = runChild(
    `try { require('fieldcrypt'); console.log('loaded'); } catch (e) {
      console.log(JSON.stringify({ code: e.code, name: e.name, message: e.message, cause: e.cause && e.cause.code }));
    }`,
    { FIELDCRYPT_NATIVE_PATH: require('node:path').join(__dirname, 'no-such-addon.node') },
  );
  assert.equal(result.status, 0, result.stderr);
  const r = JSON.parse(result.stdout);
  assert.equal(r.code, 'ERR_FIELDCRYPT_ADDON_NOT_BUILT');
  assert.equal(r.name, 'FieldCryptError');
  assert.equal(r.cause, 'MODULE_NOT_FOUND');
  assert.match(r.message, /npm install/);
});

test('nativeInfo names the loaded build; FIELDCRYPT_NATIVE_VARIANT=portable forces the portable one', () => {
  const { variant, file } = require('..').nativeInfo();
  assert.ok(['x86-64-v3', 'portable', 'custom'].includes(variant), variant);
  assert.ok(require('node:fs').existsSync(file), file);
  if (process.env.FIELDCRYPT_NATIVE_VARIANT === 'portable') assert.equal(variant, 'portable');
});

test('the addon itself rejects malformed versions (defence in depth below the JS checks)', () => {
  const native = require('../lib/core/native').load();
  configureKeys({ '01': randomKeyHex() });
  for (const v of ['01é', '0', '001', '٠١', 'é1', '', '01\u0000']) {
    assert.throws(
      () => native.encrypt('x', v),
      (err) => err.code === errorCodes.INVALID_KEY_VERSION,
      JSON.stringify(v),
    );
  }
  assert.throws(
    () => native.encrypt('x', 1),
    (err) => err.code === errorCodes.INVALID_KEY_VERSION,
  );
});
