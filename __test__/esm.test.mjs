// The ESM entry point, imported by the package's own name (resolved through
// package.json "exports" self-reference), gives the same functions as require().

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import crypto from 'node:crypto';

import fieldcryptDefault, {
  encrypt,
  decrypt,
  encryptBuffer,
  decryptBuffer,
  isEncrypted,
  reEncrypt,
  getKeyVersion,
  encryptMany,
  decryptMany,
  encryptManyAsync,
  decryptManyAsync,
  configureKeys,
  reloadKeys,
  loadedKeyVersions,
  keyUsage,
  onKeyUsage,
  loadKeyVault,
  configureIndexKeys,
  reloadIndexKeys,
  indexKeyVersions,
  blindIndex,
  blindIndexMany,
  blindIndexAll,
  indexInput,
  encryptFieldIfModified,
  createDecryptMethod,
  createDecryptedGetter,
  nativeInfo,
  fieldEncryption,
  decryptDocument,
  encryptedPaths,
  searchablePaths,
  FieldCryptError,
  errorCodes,
} from 'fieldcrypt';
import * as namespace from 'fieldcrypt';

const require = createRequire(import.meta.url);
const cjs = require('fieldcrypt');

const K1 = crypto.randomBytes(32).toString('hex');

before(() => {
  configureKeys({ '01': K1 });
});

after(() => {
  reloadKeys();
});

test('import "fieldcrypt" resolves to index.mjs and require("fieldcrypt") to index.js', () => {
  assert.match(import.meta.resolve('fieldcrypt'), /\/index\.mjs$/);
  assert.match(require.resolve('fieldcrypt'), /[\\/]index\.js$/);
});

test('named imports are the very functions require() returns', () => {
  const named = {
    encrypt,
    decrypt,
    encryptBuffer,
    decryptBuffer,
    isEncrypted,
    reEncrypt,
    getKeyVersion,
    encryptMany,
    decryptMany,
    encryptManyAsync,
    decryptManyAsync,
    configureKeys,
    reloadKeys,
    loadedKeyVersions,
    keyUsage,
    onKeyUsage,
    loadKeyVault,
    configureIndexKeys,
    reloadIndexKeys,
    indexKeyVersions,
    blindIndex,
    blindIndexMany,
    blindIndexAll,
    indexInput,
    encryptFieldIfModified,
    createDecryptMethod,
    createDecryptedGetter,
    nativeInfo,
    fieldEncryption,
    decryptDocument,
    encryptedPaths,
    searchablePaths,
    FieldCryptError,
    errorCodes,
  };
  assert.deepEqual(Object.keys(named).sort(), Object.keys(cjs).sort());
  for (const [name, value] of Object.entries(named)) assert.equal(value, cjs[name], name);
});

test('the default export is the CommonJS module object', () => {
  assert.equal(fieldcryptDefault, cjs);
  assert.deepEqual(
    Object.keys(namespace)
      .filter((k) => k !== 'default')
      .sort(),
    Object.keys(cjs).sort(),
  );
});

test('both entry points share one keyring', () => {
  const stored = encrypt('shared ✓');
  assert.equal(cjs.decrypt(stored), 'shared ✓');
  assert.equal(decrypt(cjs.encrypt('back')), 'back');
  assert.deepEqual(loadedKeyVersions(), cjs.loadedKeyVersions());
});

test('errors thrown through the ESM entry are the same FieldCryptError class', () => {
  let caught;
  try {
    decrypt('not encrypted');
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof FieldCryptError);
  assert.ok(caught instanceof cjs.FieldCryptError);
  assert.equal(caught.code, errorCodes.INVALID_FORMAT);
});

test('dynamic import() from CommonJS gives the same module', async () => {
  const dyn = await import('fieldcrypt');
  assert.equal(dyn.encrypt, cjs.encrypt);
  assert.equal(dyn.default, cjs);
});
