'use strict';

// Key versions, configureKeys(), reloadKeys() and reEncrypt(), in this process.
// Every test leaves the keyring and process.env as it found them.

const { test, describe, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');

const { STRICT_FORMAT_RE, randomKeyHex, nodeEncrypt, nodeDecrypt, throwsCode, assertNoSecrets } = require('./helpers');

const K1 = randomKeyHex();
const K1B = randomKeyHex();
const K2 = randomKeyHex();
const K2B = randomKeyHex();
const K3 = randomKeyHex();
const ALL_KEYS = [K1, K1B, K2, K2B, K3];
const PLAINTEXT = 'Pässport X1234567 🛂';

// Start from an environment holding only ENCRYPTION_KEY = K1.
const SAVED_ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('ENCRYPTION_KEY')));
function resetEnv() {
  for (const name of Object.keys(process.env)) if (name.startsWith('ENCRYPTION_KEY')) delete process.env[name];
  process.env.ENCRYPTION_KEY = K1;
}
resetEnv();

const {
  encrypt,
  decrypt,
  reEncrypt,
  getKeyVersion,
  configureKeys,
  reloadKeys,
  loadedKeyVersions,
  FieldCryptError,
  errorCodes,
} = require('fieldcrypt');

function baseline() {
  resetEnv();
  reloadKeys();
}

afterEach(baseline);

after(() => {
  for (const name of Object.keys(process.env)) if (name.startsWith('ENCRYPTION_KEY')) delete process.env[name];
  Object.assign(process.env, SAVED_ENV);
  reloadKeys();
});

function code(fn, expected) {
  const err = throwsCode(fn, expected, FieldCryptError);
  assertNoSecrets(err.message, [...ALL_KEYS, PLAINTEXT], 'error message');
  assertNoSecrets(String(err.stack), [...ALL_KEYS, PLAINTEXT], 'error stack');
  return err;
}

describe('environment mode', () => {
  before(baseline);

  test('ENCRYPTION_KEY is version 01, the default write version', () => {
    const stored = encrypt(PLAINTEXT);
    assert.match(stored, STRICT_FORMAT_RE);
    assert.equal(getKeyVersion(stored), '01');
    assert.equal(nodeDecrypt(K1, stored), PLAINTEXT);
    assert.deepEqual(loadedKeyVersions(), ['01']);
  });

  test('ENCRYPTION_KEY_V01 alone is version 01; equal ENCRYPTION_KEY and _V01 do not conflict', () => {
    delete process.env.ENCRYPTION_KEY;
    process.env.ENCRYPTION_KEY_V01 = K1B;
    reloadKeys();
    assert.equal(nodeDecrypt(K1B, encrypt(PLAINTEXT)), PLAINTEXT);
    process.env.ENCRYPTION_KEY = K1B;
    reloadKeys();
    assert.equal(nodeDecrypt(K1B, encrypt(PLAINTEXT)), PLAINTEXT);
  });

  test('ENCRYPTION_KEY and ENCRYPTION_KEY_V01 set and different → KEY_CONFLICT', () => {
    process.env.ENCRYPTION_KEY_V01 = K1B;
    const err = code(() => reloadKeys(), errorCodes.KEY_CONFLICT);
    assert.match(err.message, /ENCRYPTION_KEY and ENCRYPTION_KEY_V01/);
  });

  test('a key with surrounding whitespace (e.g. from a CRLF .env file) is trimmed', () => {
    process.env.ENCRYPTION_KEY = ` ${K1B}\r\n`;
    reloadKeys();
    assert.equal(nodeDecrypt(K1B, encrypt(PLAINTEXT)), PLAINTEXT);
  });

  test('an all-zero ENCRYPTION_KEY → WEAK_KEY on first use, naming no key material', () => {
    process.env.ENCRYPTION_KEY = '0'.repeat(64);
    const err = code(() => reloadKeys(), errorCodes.WEAK_KEY);
    assert.match(err.message, /key version 01/);
  });

  test('an uppercase hex key is the same key', () => {
    process.env.ENCRYPTION_KEY = K1B.toUpperCase();
    reloadKeys();
    assert.equal(nodeDecrypt(K1B, encrypt(PLAINTEXT)), PLAINTEXT);
  });

  test('encrypt(x, { keyVersion: "02" }) loads ENCRYPTION_KEY_V02 on first use', () => {
    reloadKeys();
    assert.deepEqual(loadedKeyVersions(), ['01']);
    process.env.ENCRYPTION_KEY_V02 = K2; // set after the keyring was loaded
    const stored = encrypt(PLAINTEXT, { keyVersion: '02' });
    assert.match(stored, /^02:/);
    assert.equal(nodeDecrypt(K2, stored), PLAINTEXT);
    assert.equal(decrypt(stored), PLAINTEXT);
    assert.deepEqual(loadedKeyVersions(), ['01', '02']);
    // the write version is unchanged
    assert.match(encrypt(PLAINTEXT), /^01:/);
  });

  test('decrypting a value under a version with no key → KEY_NOT_FOUND naming ENCRYPTION_KEY_V02', () => {
    const stored = nodeEncrypt(K2, PLAINTEXT, { version: '02' });
    const err = code(() => decrypt(stored), errorCodes.KEY_NOT_FOUND);
    assert.match(err.message, /^Encryption key not found/);
    assert.match(err.message, /\bENCRYPTION_KEY_V02\b/);
    assert.match(err.message, /key version 02/);
    // once the variable is set, the same call works without reloadKeys()
    process.env.ENCRYPTION_KEY_V02 = K2;
    assert.equal(decrypt(stored), PLAINTEXT);
  });

  test('encrypt under a version with no key → KEY_NOT_FOUND naming its variable', () => {
    const err = code(() => encrypt(PLAINTEXT, { keyVersion: '07' }), errorCodes.KEY_NOT_FOUND);
    assert.match(err.message, /\bENCRYPTION_KEY_V07\b/);
    assert.deepEqual(loadedKeyVersions(), ['01']);
  });

  test('the version 01 hint names both ENCRYPTION_KEY and ENCRYPTION_KEY_V01', () => {
    delete process.env.ENCRYPTION_KEY;
    reloadKeys();
    const err = code(() => encrypt(PLAINTEXT), errorCodes.KEY_NOT_FOUND);
    assert.match(err.message, /ENCRYPTION_KEY \(or ENCRYPTION_KEY_V01\)/);
  });

  test('an empty or blank ENCRYPTION_KEY counts as unset', () => {
    for (const blank of ['', '   ', '\n']) {
      process.env.ENCRYPTION_KEY = blank;
      reloadKeys();
      assert.deepEqual(loadedKeyVersions(), []);
      code(() => encrypt(PLAINTEXT), errorCodes.KEY_NOT_FOUND);
    }
  });

  test('a value written under 02 is AUTH_FAILED when a different 02 key is loaded', () => {
    process.env.ENCRYPTION_KEY_V02 = K2;
    reloadKeys();
    const stored = encrypt(PLAINTEXT, { keyVersion: '02' });
    process.env.ENCRYPTION_KEY_V02 = K2B;
    reloadKeys();
    const err = code(() => decrypt(stored), errorCodes.AUTH_FAILED);
    assert.match(err.message, /key version 02/);
  });

  test('ENCRYPTION_KEY_VERSION selects the write version (after reloadKeys)', () => {
    process.env.ENCRYPTION_KEY_V02 = K2;
    process.env.ENCRYPTION_KEY_VERSION = '02';
    reloadKeys();
    const stored = encrypt(PLAINTEXT);
    assert.match(stored, /^02:/);
    assert.equal(nodeDecrypt(K2, stored), PLAINTEXT);
    // 01 values stay readable
    assert.equal(decrypt(nodeEncrypt(K1, PLAINTEXT)), PLAINTEXT);
  });

  test('ENCRYPTION_KEY_VERSION with no key for it → KEY_NOT_FOUND on encrypt, decrypt of 01 still works', () => {
    process.env.ENCRYPTION_KEY_VERSION = '03';
    reloadKeys();
    const err = code(() => encrypt(PLAINTEXT), errorCodes.KEY_NOT_FOUND);
    assert.match(err.message, /ENCRYPTION_KEY_V03/);
    assert.equal(decrypt(nodeEncrypt(K1, PLAINTEXT)), PLAINTEXT);
  });

  test('an invalid ENCRYPTION_KEY_VERSION → INVALID_KEY_VERSION from reloadKeys', () => {
    for (const bad of ['2', '002', 'v2', '0x', '２']) {
      process.env.ENCRYPTION_KEY_VERSION = bad;
      const err = code(() => reloadKeys(), errorCodes.INVALID_KEY_VERSION);
      assert.match(err.message, /ENCRYPTION_KEY_VERSION/);
    }
  });
});

describe('reloadKeys()', () => {
  before(baseline);

  test('picks up a changed ENCRYPTION_KEY; without it the loaded key stays in force', () => {
    const old = encrypt(PLAINTEXT);
    process.env.ENCRYPTION_KEY = K1B;
    // keys are read once, on first need: the change is not seen yet
    assert.equal(nodeDecrypt(K1, encrypt(PLAINTEXT)), PLAINTEXT);
    reloadKeys();
    const fresh = encrypt(PLAINTEXT);
    assert.equal(nodeDecrypt(K1B, fresh), PLAINTEXT);
    assert.equal(decrypt(fresh), PLAINTEXT);
    code(() => decrypt(old), errorCodes.AUTH_FAILED);
  });

  test('loads every ENCRYPTION_KEY_VNN that is set, and drops removed ones', () => {
    process.env.ENCRYPTION_KEY_V02 = K2;
    process.env.ENCRYPTION_KEY_V10 = K3;
    reloadKeys();
    assert.deepEqual(loadedKeyVersions(), ['01', '02', '10']);
    delete process.env.ENCRYPTION_KEY_V10;
    reloadKeys();
    assert.deepEqual(loadedKeyVersions(), ['01', '02']);
    const stored = nodeEncrypt(K3, PLAINTEXT, { version: '10' });
    code(() => decrypt(stored), errorCodes.KEY_NOT_FOUND);
  });

  test('picks up a changed ENCRYPTION_KEY_VERSION', () => {
    process.env.ENCRYPTION_KEY_V02 = K2;
    assert.match(encrypt(PLAINTEXT), /^01:/);
    process.env.ENCRYPTION_KEY_VERSION = '02';
    assert.match(encrypt(PLAINTEXT), /^01:/, 'the write version is read once');
    reloadKeys();
    assert.match(encrypt(PLAINTEXT), /^02:/);
  });

  test('an invalid key anywhere → throws, and the previous keys stay in force', () => {
    process.env.ENCRYPTION_KEY_V02 = K2;
    reloadKeys();
    const before01 = encrypt(PLAINTEXT);
    const cases = [
      ['ENCRYPTION_KEY_V03', K3.slice(0, 40), errorCodes.INVALID_KEY_LENGTH],
      ['ENCRYPTION_KEY_V03', `zz${K3.slice(2)}`, errorCodes.INVALID_KEY],
      ['ENCRYPTION_KEY', K1B.slice(0, 63), errorCodes.INVALID_KEY_LENGTH],
      ['ENCRYPTION_KEY_VERSION', '2', errorCodes.INVALID_KEY_VERSION],
    ];
    for (const [name, value, expected] of cases) {
      const saved = process.env[name];
      process.env[name] = value;
      const err = code(() => reloadKeys(), expected);
      if (value.length >= 16) assertNoSecrets(err.message, [value], 'error message');
      if (saved === undefined) delete process.env[name];
      else process.env[name] = saved;
      assert.deepEqual(loadedKeyVersions(), ['01', '02'], name);
      assert.equal(decrypt(before01), PLAINTEXT);
      assert.match(encrypt(PLAINTEXT), /^01:/);
      assert.equal(nodeDecrypt(K1, encrypt(PLAINTEXT)), PLAINTEXT);
    }
  });

  test('returns from configured mode to environment mode', () => {
    configureKeys({ '05': K3 });
    assert.deepEqual(loadedKeyVersions(), ['05']);
    reloadKeys();
    assert.deepEqual(loadedKeyVersions(), ['01']);
    assert.equal(nodeDecrypt(K1, encrypt(PLAINTEXT)), PLAINTEXT);
  });
});

describe('configureKeys()', () => {
  before(baseline);

  test('uses exactly the given keys; current defaults to the highest version', () => {
    configureKeys({ '01': K1B, '03': K3, '02': K2 }); // highest neither first nor last
    assert.deepEqual(loadedKeyVersions(), ['01', '02', '03']);
    const stored = encrypt(PLAINTEXT);
    assert.match(stored, /^03:/);
    assert.equal(nodeDecrypt(K3, stored), PLAINTEXT);
    assert.equal(nodeDecrypt(K1B, encrypt(PLAINTEXT, { keyVersion: '01' })), PLAINTEXT);
  });

  test('options.current selects the write version', () => {
    configureKeys({ '01': K1, '02': K2 }, { current: '01' });
    assert.match(encrypt(PLAINTEXT), /^01:/);
    configureKeys({ '01': K1, '02': K2 }, { current: '02' });
    const stored = encrypt(PLAINTEXT);
    assert.match(stored, /^02:/);
    assert.equal(nodeDecrypt(K2, stored), PLAINTEXT);
  });

  test('configured mode does not consult process.env', () => {
    configureKeys({ '01': K1 });
    process.env.ENCRYPTION_KEY_V02 = K2;
    const stored = nodeEncrypt(K2, PLAINTEXT, { version: '02' });
    const err = code(() => decrypt(stored), errorCodes.KEY_NOT_FOUND);
    assert.match(err.message, /configureKeys\(\)/);
    code(() => encrypt(PLAINTEXT, { keyVersion: '02' }), errorCodes.KEY_NOT_FOUND);
    reloadKeys();
    assert.equal(decrypt(stored), PLAINTEXT);
  });

  test('keys are trimmed and may be uppercase', () => {
    configureKeys({ '01': `\t${K1B.toUpperCase()}\n` });
    assert.equal(nodeDecrypt(K1B, encrypt(PLAINTEXT)), PLAINTEXT);
  });

  test('a value written under 02 is AUTH_FAILED after 02 is configured with a different key', () => {
    configureKeys({ '01': K1, '02': K2 });
    const stored = encrypt(PLAINTEXT, { keyVersion: '02' });
    assert.equal(decrypt(stored), PLAINTEXT);
    configureKeys({ '01': K1, '02': K2B });
    const err = code(() => decrypt(stored), errorCodes.AUTH_FAILED);
    assert.match(err.message, /key version 02/);
  });

  test('invalid input throws and changes nothing', () => {
    configureKeys({ '01': K1, '02': K2 }, { current: '02' });
    const written = encrypt(PLAINTEXT);
    const cases = [
      [[{ 1: K1 }], errorCodes.INVALID_KEY_VERSION],
      [[{ '01': K1, x2: K2 }], errorCodes.INVALID_KEY_VERSION],
      [[{ '01': K1, '003': K3 }], errorCodes.INVALID_KEY_VERSION],
      [[{ '01': K1, ' 3': K3 }], errorCodes.INVALID_KEY_VERSION],
      [[{ '01': K1.slice(0, 62) }], errorCodes.INVALID_KEY_LENGTH],
      [[{ '01': `${K1}00` }], errorCodes.INVALID_KEY_LENGTH],
      [[{ '01': '' }], errorCodes.INVALID_KEY_LENGTH],
      [[{ '01': K1, '02': K2.slice(0, 32) }], errorCodes.INVALID_KEY_LENGTH],
      [[{ '01': `zz${K1.slice(2)}` }], errorCodes.INVALID_KEY],
      [[{ '01': K1, '02': `${K2.slice(0, 63)}g` }], errorCodes.INVALID_KEY],
      [[{ '01': 12345 }], errorCodes.INVALID_KEY],
      [[{ '01': null }], errorCodes.INVALID_KEY],
      [[{ '01': Buffer.from(K1, 'hex') }], errorCodes.INVALID_KEY],
      [[{ '01': K1, '02': K2 }, { current: '03' }], errorCodes.KEY_NOT_FOUND],
      [[{ '01': K1 }, { current: '1' }], errorCodes.INVALID_KEY_VERSION],
      [[{ '01': K1 }, { current: 2 }], errorCodes.INVALID_KEY_VERSION],
      [[{}], errorCodes.INVALID_ARGUMENT],
      [[null], errorCodes.INVALID_ARGUMENT],
      [[undefined], errorCodes.INVALID_ARGUMENT],
      [[K1], errorCodes.INVALID_ARGUMENT],
      [[[K1]], errorCodes.INVALID_ARGUMENT],
    ];
    for (const [args, expected] of cases) {
      code(() => configureKeys(...args), expected);
      assert.deepEqual(loadedKeyVersions(), ['01', '02']);
      const stored = encrypt(PLAINTEXT);
      assert.match(stored, /^02:/, 'the write version is unchanged');
      assert.equal(nodeDecrypt(K2, stored), PLAINTEXT, 'the 02 key is unchanged');
      assert.equal(decrypt(written), PLAINTEXT);
      assert.equal(nodeDecrypt(K1, encrypt(PLAINTEXT, { keyVersion: '01' })), PLAINTEXT, 'the 01 key is unchanged');
    }
  });

  test('a failed configureKeys() in environment mode stays in environment mode', () => {
    reloadKeys();
    code(() => configureKeys({ '01': K1, '02': 'short' }), errorCodes.INVALID_KEY_LENGTH);
    code(() => configureKeys({ '01': K1 }, { current: '02' }), errorCodes.KEY_NOT_FOUND);
    assert.deepEqual(loadedKeyVersions(), ['01']);
    assert.equal(nodeDecrypt(K1, encrypt(PLAINTEXT)), PLAINTEXT);
    // process.env is still consulted for versions not loaded yet
    process.env.ENCRYPTION_KEY_V02 = K2;
    assert.equal(nodeDecrypt(K2, encrypt(PLAINTEXT, { keyVersion: '02' })), PLAINTEXT);
  });

  test('a key length error says 64 hex characters and quotes no key material', () => {
    const err = code(() => configureKeys({ '01': K1.slice(0, 40) }), errorCodes.INVALID_KEY_LENGTH);
    assert.match(err.message, /^Invalid encryption key length/);
    assert.match(err.message, /64 hex/);
    assertNoSecrets(err.message, [K1.slice(0, 40)]);
  });

  test('a key of one repeated byte (all zeros, a placeholder) → WEAK_KEY, and the previous keys stay', () => {
    configureKeys({ '01': K1 });
    const written = encrypt(PLAINTEXT);
    for (const weak of ['00'.repeat(32), 'ff'.repeat(32), '4A'.repeat(32), ` ${'00'.repeat(32)}\n`]) {
      const err = code(() => configureKeys({ '01': K1, '02': weak }), errorCodes.WEAK_KEY);
      assert.match(err.message, /^Weak encryption key for key version 02/);
      assertNoSecrets(err.message, [weak.trim()]);
    }
    assert.equal(decrypt(written), PLAINTEXT);
    assert.deepEqual(loadedKeyVersions(), ['01']);
  });

  test('configureKeys(keys, null) is treated like no options', () => {
    configureKeys({ '01': K1, '02': K2 }, null);
    assert.match(encrypt(PLAINTEXT), /^02:/);
  });
});

describe('reEncrypt()', () => {
  before(baseline);

  test('01 → 02: getKeyVersion is 02 and decrypt gives the original', () => {
    configureKeys({ '01': K1, '02': K2 }, { current: '01' });
    const v1 = encrypt(PLAINTEXT);
    assert.equal(getKeyVersion(v1), '01');
    const v2 = reEncrypt(v1, '02');
    assert.match(v2, STRICT_FORMAT_RE);
    assert.equal(getKeyVersion(v2), '02');
    assert.equal(decrypt(v2), PLAINTEXT);
    assert.equal(nodeDecrypt(K2, v2), PLAINTEXT);
    assert.notEqual(v2.split(':')[1], v1.split(':')[1], 'a fresh IV');
    // and back
    const back = reEncrypt(v2, '01');
    assert.equal(getKeyVersion(back), '01');
    assert.equal(nodeDecrypt(K1, back), PLAINTEXT);
  });

  test('re-encrypting under the same version gives a fresh IV', () => {
    configureKeys({ '01': K1 });
    const a = encrypt(PLAINTEXT);
    const b = reEncrypt(a, '01');
    assert.notEqual(a, b);
    assert.notEqual(a.split(':')[1], b.split(':')[1]);
    assert.equal(decrypt(b), PLAINTEXT);
  });

  test('in environment mode, loads both versions on first use', () => {
    reloadKeys();
    const v1 = nodeEncrypt(K1, PLAINTEXT);
    process.env.ENCRYPTION_KEY_V02 = K2;
    const v2 = reEncrypt(v1, '02');
    assert.equal(nodeDecrypt(K2, v2), PLAINTEXT);

    // neither key loaded yet: reloadKeys() with no keys set, then set both
    delete process.env.ENCRYPTION_KEY;
    delete process.env.ENCRYPTION_KEY_V02;
    reloadKeys();
    assert.deepEqual(loadedKeyVersions(), []);
    process.env.ENCRYPTION_KEY = K1;
    process.env.ENCRYPTION_KEY_V02 = K2;
    assert.equal(nodeDecrypt(K2, reEncrypt(v1, '02')), PLAINTEXT);
    assert.deepEqual(loadedKeyVersions(), ['01', '02']);
  });

  test('to a version with no key → KEY_NOT_FOUND; from a version with no key → KEY_NOT_FOUND', () => {
    configureKeys({ '01': K1 });
    let err = code(() => reEncrypt(encrypt(PLAINTEXT), '02'), errorCodes.KEY_NOT_FOUND);
    assert.match(err.message, /ENCRYPTION_KEY_V02/);
    err = code(() => reEncrypt(nodeEncrypt(K3, PLAINTEXT, { version: '03' }), '01'), errorCodes.KEY_NOT_FOUND);
    assert.match(err.message, /ENCRYPTION_KEY_V03/);
  });

  test('with a wrong key for the stored version → AUTH_FAILED', () => {
    configureKeys({ '01': K1, '02': K2 });
    code(() => reEncrypt(nodeEncrypt(K1B, PLAINTEXT), '02'), errorCodes.AUTH_FAILED);
  });

  test('an invalid target version → INVALID_KEY_VERSION', () => {
    configureKeys({ '01': K1, '02': K2 });
    const stored = encrypt(PLAINTEXT);
    for (const bad of ['2', '002', 'v2', '', 2, null, undefined, { keyVersion: '02' }]) {
      code(() => reEncrypt(stored, bad), errorCodes.INVALID_KEY_VERSION);
    }
  });
});

describe('encrypt() options', () => {
  before(baseline);

  test('an invalid options.keyVersion → INVALID_KEY_VERSION', () => {
    for (const bad of ['2', '002', 'ab', '', 2, null]) {
      code(() => encrypt(PLAINTEXT, { keyVersion: bad }), errorCodes.INVALID_KEY_VERSION);
    }
  });

  test('options undefined, null, {} and { keyVersion: undefined } use the current version', () => {
    for (const options of [undefined, null, {}, { keyVersion: undefined }]) {
      assert.match(encrypt(PLAINTEXT, options), /^01:/);
    }
  });
});

describe('loadedKeyVersions()', () => {
  before(baseline);

  test('lists versions ascending, as two-digit strings, and nothing else', () => {
    configureKeys({ 99: K3, '00': K1, 10: K2, '02': K2B });
    const versions = loadedKeyVersions();
    assert.deepEqual(versions, ['00', '02', '10', '99']);
    assertNoSecrets(JSON.stringify(versions), ALL_KEYS);
    versions.push('55');
    assert.deepEqual(loadedKeyVersions(), ['00', '02', '10', '99'], 'a copy');
  });
});
