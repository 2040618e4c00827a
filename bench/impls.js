'use strict';

/**
 * The implementations compared by the benchmark, each behind the same shape:
 *
 *   { id, short, label, pkg, version, note, encrypt(text) -> stored, decrypt(stored) -> text }
 *
 * (plus optional input/output hooks, see fieldcryptBuffer()).
 *
 * Keys and per-call setup that an application would do once (parsing a key,
 * hashing a secret) happen here, outside the timed calls.
 */

const crypto = require('node:crypto');

/** A fixed benchmark key (64 hex = 32 bytes). Never a real key. */
const KEY_HEX = '4f1c2b8e9d7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c';
const KEY = Buffer.from(KEY_HEX, 'hex');

function pkgVersion(name) {
  try {
    return require(`${name}/package.json`).version;
  } catch {
    return 'unknown';
  }
}

/** (1) fieldcrypt itself: the public encrypt/decrypt of the package. */
function fieldcrypt() {
  const fc = require('..');
  fc.configureKeys({ '01': KEY_HEX });
  return {
    id: 'fieldcrypt',
    short: 'fieldcrypt',
    label: 'fieldcrypt',
    pkg: 'fieldcrypt',
    version: require('../package.json').version,
    note: 'Rust addon (AES-GCM from RustCrypto aes with its own CLMUL GHASH; without PCLMULQDQ the ghash and aes-gcm crates), public encrypt()/decrypt()',
    encrypt: (text) => fc.encrypt(text),
    decrypt: (stored) => fc.decrypt(stored),
  };
}

/**
 * (2) The same stored format, `01:IV:TAG:CT`, written with node:crypto
 * (OpenSSL): the baseline a user could write in a few lines instead.
 */
function nodeCrypto() {
  function encrypt(text) {
    const iv = crypto.randomBytes(16);
    const cipher = crypto.createCipheriv('aes-256-gcm', KEY, iv);
    const ct = cipher.update(text, 'utf8', 'hex') + cipher.final('hex');
    return `01:${iv.toString('hex')}:${cipher.getAuthTag().toString('hex')}:${ct}`;
  }
  function decrypt(stored) {
    const parts = stored.split(':');
    if (parts.length !== 4 || parts[0] !== '01') throw new Error('bad stored value');
    const decipher = crypto.createDecipheriv('aes-256-gcm', KEY, Buffer.from(parts[1], 'hex'));
    decipher.setAuthTag(Buffer.from(parts[2], 'hex'));
    return decipher.update(parts[3], 'hex', 'utf8') + decipher.final('utf8');
  }
  return {
    id: 'node',
    short: 'node:crypto',
    label: 'node:crypto',
    pkg: 'node:crypto',
    version: `Node ${process.versions.node}, OpenSSL ${process.versions.openssl}`,
    note: 'same VV:IV:TAG:CT format, createCipheriv aes-256-gcm, hex',
    encrypt,
    decrypt,
  };
}

/**
 * (3) mongoose-field-encryption's exported helpers: encrypt(clearText, secret,
 * saltGenerator) and decrypt(hex, secret), AES-256-CBC with a random 16-byte IV,
 * `ivHex:ctHex`, no authentication. Its plugin derives the secret as
 * sha256(secret).hex.substring(0, 32) and uses randomBytes(16) as the salt;
 * we do the same once here.
 */
function mongooseFieldEncryption() {
  const mfe = require('mongoose-field-encryption');
  const secret = crypto.createHash('sha256').update('benchmark secret').digest('hex').substring(0, 32);
  const salt = () => crypto.randomBytes(16);
  const opts = { notifyDecryptFails: true };
  return {
    id: 'mfe',
    short: 'mfe',
    label: 'mongoose-field-encryption',
    pkg: 'mongoose-field-encryption',
    version: pkgVersion('mongoose-field-encryption'),
    note: 'exported encrypt()/decrypt(), AES-256-CBC (unauthenticated), hex',
    encrypt: (text) => mfe.encrypt(text, secret, salt),
    decrypt: (stored) => mfe.decrypt(stored, secret, opts),
  };
}

/**
 * (4) @47ng/cloak's synchronous API: encryptStringSync/decryptStringSync with
 * a key parsed once by parseKeySync (the package has no makeKeySync; its
 * generateKey() is synchronous). AES-256-GCM, 12-byte IV, base64url.
 */
function cloak() {
  const c = require('@47ng/cloak');
  const key = c.parseKeySync(c.generateKey());
  return {
    id: 'cloak',
    short: 'cloak',
    label: '@47ng/cloak (sync)',
    pkg: '@47ng/cloak',
    version: pkgVersion('@47ng/cloak'),
    note: 'encryptStringSync()/decryptStringSync() with a ParsedCloakKey, AES-256-GCM, base64url',
    encrypt: (text) => c.encryptStringSync(text, key),
    decrypt: (stored) => c.decryptStringSync(stored, key),
  };
}

/**
 * fieldcrypt's Buffer API, when the package has it: encryptBuffer(Buffer) ->
 * stored, decryptBuffer(stored) -> Buffer. An implementation may declare
 * `input(text)` (done once, outside the timed calls) and `output(result)`
 * (used only to check results): here the value is a ready Buffer and the
 * result stays a Buffer, as for binary data, with no UTF-8 conversions timed.
 */
function fieldcryptBuffer() {
  const fc = require('..');
  if (typeof fc.encryptBuffer !== 'function' || typeof fc.decryptBuffer !== 'function') return null;
  fc.configureKeys({ '01': KEY_HEX });
  return {
    id: 'fcbuf',
    short: 'fc Buffer',
    label: 'fieldcrypt (Buffer)',
    pkg: 'fieldcrypt',
    version: require('../package.json').version,
    note: 'encryptBuffer(Buffer)/decryptBuffer() -> Buffer; the Buffer is made outside the timed calls',
    input: (text) => Buffer.from(text, 'utf8'),
    output: (buf) => (Buffer.isBuffer(buf) ? buf.toString('utf8') : buf),
    encrypt: (buf) => fc.encryptBuffer(buf),
    decrypt: (stored) => fc.decryptBuffer(stored),
  };
}

/**
 * (6) fieldcrypt with every value bound to a context (a collection, path and
 * document id, as the plugin's `bind: 'document'` writes them): what binding
 * costs on top of (1). Bound values need the same context to decrypt, so
 * node:crypto reads them only with the additional data (not probed here).
 */
function fieldcryptBound() {
  const fc = require('..');
  fc.configureKeys({ '01': KEY_HEX });
  const options = {
    context: { collection: 'patients', path: 'patientRecord.ssn', id: '{"$oid":"65f0a1b2c3d4e5f601234567"}' },
  };
  return {
    id: 'fcbound',
    short: 'fc bound',
    label: 'fieldcrypt (bound)',
    pkg: 'fieldcrypt-bound',
    version: require('../package.json').version,
    note: 'encrypt(text, { context })/decrypt(stored, { context }): bound to a collection, path and document id',
    encrypt: (text) => fc.encrypt(text, options),
    decrypt: (stored) => fc.decrypt(stored, options),
  };
}

const FACTORIES = [fieldcrypt, nodeCrypto, mongooseFieldEncryption, cloak, fieldcryptBuffer, fieldcryptBound];

/**
 * Round-trips a few values through `impl`; returns an error message, or null
 * when it works. fieldcrypt and node:crypto must also read each other's output.
 */
function probe(impl, others) {
  const samples = ['', 'a', 'hello, world', 'é€😀 multi-byte', 'x'.repeat(5000)];
  const input = impl.input || ((text) => text);
  const output = impl.output || ((result) => result);
  try {
    for (const s of samples) {
      const enc = impl.encrypt(input(s));
      if (typeof enc !== 'string' || enc === s) return 'encrypt() did not return a ciphertext string';
      if (impl.encrypt(input(s)) === enc) return 'encrypt() is deterministic (IV reuse?)';
      if (output(impl.decrypt(enc)) !== s) return `round trip mismatch for a ${s.length}-char value`;
    }
    const node = others.find((o) => o.id === 'node');
    if (impl.pkg === 'fieldcrypt' && node) {
      for (const s of samples) {
        if (node.decrypt(impl.encrypt(input(s))) !== s) return 'node:crypto cannot read its output';
        if (output(impl.decrypt(node.encrypt(s))) !== s) return 'cannot read node:crypto output';
      }
    }
  } catch (err) {
    return `${err && err.code ? `${err.code}: ` : ''}${err && err.message}`;
  }
  return null;
}

/** All available implementations, probed; `skipped` lists the ones left out and why. */
function loadImplementations() {
  const impls = [];
  const skipped = [];
  for (const make of FACTORIES) {
    let impl;
    try {
      impl = make();
    } catch (err) {
      skipped.push({ id: make.name, reason: `could not load: ${err.message}` });
      continue;
    }
    if (impl) impls.push(impl);
  }
  const ok = [];
  for (const impl of impls) {
    const problem = probe(impl, impls);
    if (problem) skipped.push({ id: impl.id, reason: problem });
    else ok.push(impl);
  }
  return { impls: ok, skipped };
}

/** A fixed benchmark index key, distinct from KEY_HEX (index keys must differ). Never a real key. */
const INDEX_KEY_HEX = '9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a1';
const INDEX_SCOPE = { collection: 'patients', path: 'personExtended.identifications.idNumber' };

/**
 * Blind index values (issue 20) next to encrypts: the timed functions for
 * `values` (short strings), single values and batches of all of them.
 * node:crypto computes the same values with the same derivation, its
 * per-path key derived once outside the timed calls (as the addon caches it).
 */
function indexEntrants(values) {
  const fc = require('..');
  fc.configureKeys({ '01': KEY_HEX });
  fc.configureIndexKeys({ '01': INDEX_KEY_HEX });
  const info = Buffer.from(`${INDEX_SCOPE.collection}\0${INDEX_SCOPE.path}`);
  const kPath = Buffer.from(
    crypto.hkdfSync('sha256', Buffer.from(INDEX_KEY_HEX, 'hex'), 'fieldcrypt/blind-index/v1', info, 32),
  );
  const nodeIndex = (v) => `01:${crypto.createHmac('sha256', kPath).update(v, 'utf8').digest('hex')}`;
  const nodeEncrypt = nodeCrypto().encrypt;
  for (const v of values.slice(0, 16)) {
    if (fc.blindIndex(v, INDEX_SCOPE) !== nodeIndex(v)) throw new Error('blindIndex and node:crypto disagree');
  }
  const n = values.length;
  const pick = (i) => values[i % n];
  return {
    single: [
      { id: 'fc-index', fn: (i) => fc.blindIndex(pick(i), INDEX_SCOPE) },
      { id: 'node-index', fn: (i) => nodeIndex(pick(i)) },
      { id: 'fc-encrypt', fn: (i) => fc.encrypt(pick(i)) },
      { id: 'node-encrypt', fn: (i) => nodeEncrypt(pick(i)) },
    ],
    batch: [
      { id: 'fc-index', fn: () => fc.blindIndexMany(values, INDEX_SCOPE) },
      { id: 'node-index', fn: () => values.map(nodeIndex) },
      { id: 'fc-encrypt', fn: () => fc.encryptMany(values) },
      { id: 'node-encrypt', fn: () => values.map(nodeEncrypt) },
    ],
  };
}

module.exports = { loadImplementations, indexEntrants, KEY_HEX, KEY, pkgVersion };
