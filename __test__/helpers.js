'use strict';

// Shared helpers for the addon tests. Not a test file: `node --test __test__/`
// only runs files named *.test.{js,mjs,cjs} (and a few other test patterns).

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { spawnSync } = require('node:child_process');
const path = require('node:path');

/** The stored format exactly as fieldcrypt writes it (lowercase hex only). */
const STRICT_FORMAT_RE = /^\d\d:[0-9a-f]{32}:[0-9a-f]{32}:([0-9a-f]{2})*$/;

const PACKAGE_ROOT = path.join(__dirname, '..');

/** A fresh random AES-256 key as 64 lowercase hex characters. */
function randomKeyHex() {
  return crypto.randomBytes(32).toString('hex');
}

/**
 * The reference implementation of the stored format with node:crypto:
 * AES-256-GCM, 16-byte IV (J0 derived with GHASH), no AAD, lowercase hex.
 * `plaintext` is a string (encoded as UTF-8) or a Buffer (raw bytes).
 */
function nodeEncrypt(keyHex, plaintext, { version = '01', iv = crypto.randomBytes(16) } = {}) {
  const cipher = crypto.createCipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), iv);
  const ct = Buffer.concat([
    typeof plaintext === 'string' ? cipher.update(plaintext, 'utf8') : cipher.update(plaintext),
    cipher.final(),
  ]);
  return `${version}:${iv.toString('hex')}:${cipher.getAuthTag().toString('hex')}:${ct.toString('hex')}`;
}

/** Decrypts a stored value with node:crypto to raw bytes (throws if the tag does not verify). */
function nodeDecryptBytes(keyHex, stored) {
  const parts = stored.split(':');
  assert.equal(parts.length, 4, 'stored value has four fields');
  const [, ivHex, tagHex, ctHex] = parts;
  const decipher = crypto.createDecipheriv('aes-256-gcm', Buffer.from(keyHex, 'hex'), Buffer.from(ivHex, 'hex'));
  decipher.setAuthTag(Buffer.from(tagHex, 'hex'));
  return Buffer.concat([decipher.update(Buffer.from(ctHex, 'hex')), decipher.final()]);
}

/** Decrypts a stored value with node:crypto to a UTF-8 string. */
function nodeDecrypt(keyHex, stored) {
  return nodeDecryptBytes(keyHex, stored).toString('utf8');
}

/**
 * Runs `fn`, asserts it throws a FieldCryptError with `code`, returns the error.
 * (`FieldCryptError` is passed in so each test file uses the class it loaded.)
 */
function throwsCode(fn, code, FieldCryptError) {
  let caught;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught, `expected ${code} to be thrown, nothing was thrown`);
  assert.equal(caught.code, code, `expected ${code}, got ${caught.code}: ${caught.message}`);
  assert.ok(caught instanceof Error, 'is an Error');
  if (FieldCryptError) assert.ok(caught instanceof FieldCryptError, 'is a FieldCryptError');
  assert.equal(caught.name, 'FieldCryptError');
  assert.equal(typeof caught.message, 'string');
  return caught;
}

/**
 * Runs `script` (CommonJS, via `node -e`) in a child process whose environment
 * is only PATH plus `env`, with the package root as cwd so that
 * `require('fieldcrypt')` resolves through the package's self-reference.
 */
function runChild(script, env = {}) {
  const result = spawnSync(process.execPath, ['-e', script], {
    cwd: PACKAGE_ROOT,
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (result.error) throw result.error;
  return result;
}

/**
 * Asserts that none of `secrets` (nor, for hex secrets of 16+ characters, any
 * 16-character window of them, in either case) appears in `text`.
 */
function assertNoSecrets(text, secrets, where = 'output') {
  for (const secret of secrets) {
    if (!secret) continue;
    const needles = new Set([secret]);
    if (/^[0-9a-fA-F]{16,}$/.test(secret)) {
      for (let i = 0; i + 16 <= secret.length; i++) {
        needles.add(secret.slice(i, i + 16).toLowerCase());
        needles.add(secret.slice(i, i + 16).toUpperCase());
      }
    }
    for (const needle of needles) {
      assert.ok(!text.includes(needle), `${where} contains secret material (${needle.length} chars)`);
    }
  }
}

module.exports = {
  STRICT_FORMAT_RE,
  PACKAGE_ROOT,
  randomKeyHex,
  nodeEncrypt,
  nodeDecrypt,
  nodeDecryptBytes,
  throwsCode,
  runChild,
  assertNoSecrets,
};
