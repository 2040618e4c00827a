'use strict';

/**
 * Typed values inside the `VV:IV:TAG:CT` envelope.
 *
 * - A string is encrypted exactly as the foundation's `encrypt(string)` does:
 *   the plaintext is its UTF-8 bytes. Every value the Mongoose helpers (or the
 *   original node:crypto code) stored keeps decrypting, to the same string.
 * - Every other value (Number, Date, Boolean, Buffer, Decimal128, ObjectId,
 *   BigInt, objects, arrays) is encrypted with `encryptBuffer(bytes)`, where
 *
 *       bytes = 0xFF, CODEC_VERSION (0x01), BSON.serialize({ v: value })
 *
 *   BSON is the MongoDB type system, so every type Mongoose stores round-trips
 *   with its type. 0xFF never occurs in UTF-8, so a decrypted string can never
 *   be mistaken for a typed value, and a typed value never decodes as text.
 *
 * BSON comes from the Mongoose instance the schema belongs to (callers pass
 * `mongoose.mongo.BSON`): values created by Mongoose 8 carry bson 6 classes,
 * values created by Mongoose 9 carry bson 7 classes, and each bson major
 * refuses to serialize the other's classes.
 */

const { TextDecoder } = require('node:util');
const { encrypt, encryptBuffer, decryptBuffer } = require('./single');
const { codes, FieldCryptError } = require('./errors');

const TYPED_MARKER = 0xff;
const CODEC_VERSION = 0x01;
const HEADER_LENGTH = 2;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Deserialization that keeps types: int64 values come back as BigInt (what
 * Mongoose's BigInt type holds), Decimal128/ObjectId/Date stay themselves.
 * Binary stays Binary unless the caller asks for a Buffer.
 */
function deserializeOptions(promoteBuffers) {
  return { promoteValues: true, promoteBuffers, useBigInt64: true, bsonRegExp: false };
}
const KEEP_BINARY = deserializeOptions(false);
const PROMOTE_BUFFERS = deserializeOptions(true);

/** The plaintext bytes of a typed (non-string) value: marker, codec version, BSON. */
function typedBytes(value, bson) {
  const body = bson.serialize({ v: value });
  const bytes = Buffer.allocUnsafe(HEADER_LENGTH + body.length);
  bytes[0] = TYPED_MARKER;
  bytes[1] = CODEC_VERSION;
  bytes.set(body, HEADER_LENGTH);
  return bytes;
}

/**
 * What a value looks like as plaintext: the string itself, or the typed
 * bytes. Comparing fingerprints tells whether a value changed since it was
 * decrypted, so unchanged values keep their stored ciphertext.
 */
function fingerprint(value, bson) {
  return typeof value === 'string' ? value : typedBytes(value, bson);
}

function sameFingerprint(a, b) {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.length === b.length && a.equals(b);
}

/** Encrypts a fingerprint: a string as text, typed bytes with encryptBuffer. */
function encryptFingerprint(print, options) {
  return typeof print === 'string' ? encrypt(print, options) : encryptBuffer(print, options);
}

/**
 * Encrypts one value: strings in the foundation's text format, anything else
 * typed. `options` are encrypt()'s (`keyVersion`, `context`). The one function through
 * which the plugin and the foundation's save helper encrypt a value.
 */
function encodeValue(value, bson, options) {
  if (typeof value === 'string') return encrypt(value, options);
  const bytes = typedBytes(value, bson);
  try {
    return encryptBuffer(bytes, options);
  } finally {
    bytes.fill(0);
  }
}

/**
 * Decrypts one stored value to the value it was written from. `buffer: true`
 * returns binary values as Buffers (for Buffer schema paths) instead of BSON
 * Binary. With `withFingerprint`, returns `{ value, fingerprint }`. `context`
 * and `allowUnbound` are decrypt()'s (lib/core/context.js); without a
 * context the value is read exactly as before.
 */
function decodeValue(stored, bson, { buffer = false, withFingerprint = false, context, allowUnbound } = {}) {
  const bytes = context === undefined ? decryptBuffer(stored) : decryptBuffer(stored, { context, allowUnbound });
  if (bytes.length === 0 || bytes[0] !== TYPED_MARKER) {
    let text;
    try {
      text = utf8.decode(bytes);
    } catch {
      throw new FieldCryptError(codes.NOT_UTF8, 'Decrypted value is not valid UTF-8 and not a typed value');
    } finally {
      bytes.fill(0);
    }
    return withFingerprint ? { value: text, fingerprint: text } : text;
  }
  if (bytes.length < HEADER_LENGTH || bytes[1] !== CODEC_VERSION) {
    const version = bytes.length < HEADER_LENGTH ? '(missing)' : bytes[1];
    bytes.fill(0);
    throw new FieldCryptError(
      codes.UNSUPPORTED_CODEC,
      `Decrypted value uses typed-value codec version ${version}; this fieldcrypt reads version ${CODEC_VERSION}. Upgrade fieldcrypt.`,
    );
  }
  // Not zeroed afterwards: Buffers and Binary values that BSON returns may
  // share these bytes.
  const value = bson.deserialize(bytes.subarray(HEADER_LENGTH), buffer ? PROMOTE_BUFFERS : KEEP_BINARY).v;
  return withFingerprint ? { value, fingerprint: Buffer.from(bytes) } : value;
}

module.exports = {
  encodeValue,
  decodeValue,
  fingerprint,
  sameFingerprint,
  encryptFingerprint,
  TYPED_MARKER,
  CODEC_VERSION,
};
