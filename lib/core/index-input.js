'use strict';

/**
 * indexInput(value, options): the exact text a blind index MACs for a JS
 * value (issue 20; docs/format.md, "Blind index values"). Two equal values
 * must give the same text, and the text must never change for a given value
 * and options: stored index values depend on it.
 *
 * Strings: NFC, then the path's normalisers in this order: trim,
 * collapseWhitespace (each run of whitespace, as JavaScript's `\s` and
 * `trim()` define it, becomes one U+0020), lowercase (toLowerCase()), then
 * `normalize(s)` if given (it must return a string).
 *
 * Everything else: canonical JSON, no whitespace, object keys sorted by
 * UTF-16 code units (Array.prototype.sort's order), strings inside normalised
 * like a top-level string and written by JSON.stringify, undefined members
 * dropped; Date {"$date":"<ISO 8601>"}, ObjectId {"$oid":"<hex>"},
 * Decimal128 {"$numberDecimal":"<string>"}, Buffer / Uint8Array / BSON
 * Binary {"$binary":"<base64>"}, Map as an object. Anything with toBSON()
 * or toObject() (a Mongoose subdocument or array) is encoded as what that
 * returns. Non-finite numbers, bigints, functions, symbols, cycles and other
 * objects are refused (ERR_FIELDCRYPT_INVALID_ARGUMENT). Core never imports
 * Mongoose or bson: BSON values are recognised by their `_bsontype`.
 */

const { types } = require('node:util');
const { codes, FieldCryptError, describeType } = require('./errors');

const OPTION_FLAGS = ['trim', 'lowercase', 'collapseWhitespace'];

function invalid(message) {
  return new FieldCryptError(codes.INVALID_ARGUMENT, `indexInput(): ${message}`);
}

function checkIndexOptions(options) {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) {
    throw invalid(`options must be an object, got ${describeType(options)}`);
  }
  for (const flag of OPTION_FLAGS) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') {
      throw invalid(`options.${flag} must be a boolean, got ${describeType(options[flag])}`);
    }
  }
  if (options.normalize !== undefined && typeof options.normalize !== 'function') {
    throw invalid(`options.normalize must be a function, got ${describeType(options.normalize)}`);
  }
  return options;
}

function normaliseString(s, options) {
  let out = s.normalize('NFC');
  if (options.trim) out = out.trim();
  if (options.collapseWhitespace) out = out.replace(/\s+/g, ' ');
  if (options.lowercase) out = out.toLowerCase();
  if (options.normalize) {
    out = options.normalize(out);
    if (typeof out !== 'string') {
      throw invalid(`options.normalize must return a string, it returned ${describeType(out)}`);
    }
  }
  return out;
}

function base64(bytes) {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/** A BSON value (ObjectId, Decimal128, Binary) as its extended-JSON object, or undefined. */
function bsonValue(value) {
  switch (value._bsontype) {
    case 'ObjectId':
    case 'ObjectID':
      return `{"$oid":${JSON.stringify(value.toHexString())}}`;
    case 'Decimal128':
      return `{"$numberDecimal":${JSON.stringify(value.toString())}}`;
    case 'Binary': {
      const bytes = value.buffer.subarray(0, value.position ?? value.buffer.length);
      return `{"$binary":${JSON.stringify(base64(bytes))}}`;
    }
    default:
      return undefined;
  }
}

function encodeObject(entries, options, seen) {
  const parts = [];
  for (const [key, member] of entries.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))) {
    if (member === undefined) continue;
    parts.push(`${JSON.stringify(key)}:${encode(member, options, seen)}`);
  }
  return `{${parts.join(',')}}`;
}

function encode(value, options, seen) {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(normaliseString(value, options));
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) throw invalid('non-finite numbers (NaN, Infinity) have no index value');
      return JSON.stringify(value);
    case 'object':
      break;
    default:
      throw invalid(`cannot index ${describeType(value)}`);
  }
  if (value === null) return 'null';
  if (types.isUint8Array(value)) return `{"$binary":${JSON.stringify(base64(value))}}`;
  if (types.isDate(value)) {
    if (Number.isNaN(value.getTime())) throw invalid('an invalid Date has no index value');
    return `{"$date":${JSON.stringify(value.toISOString())}}`;
  }
  const bson = typeof value._bsontype === 'string' ? bsonValue(value) : undefined;
  if (bson !== undefined) return bson;
  if (seen.has(value)) throw invalid('the value holds a cycle');
  seen.add(value);
  try {
    if (Array.isArray(value)) {
      return `[${Array.from(value, (v) => (v === undefined ? 'null' : encode(v, options, seen))).join(',')}]`;
    }
    if (types.isMap(value)) {
      const entries = [...value.entries()];
      if (entries.some(([k]) => typeof k !== 'string')) throw invalid('Map keys must be strings');
      return encodeObject(entries, options, seen);
    }
    const plain = toPlain(value);
    if (plain !== value) return encode(plain, options, seen);
    const proto = Object.getPrototypeOf(value);
    if (proto !== Object.prototype && proto !== null) throw invalid(`cannot index ${describeType(value)}`);
    return encodeObject(Object.entries(value), options, seen);
  } finally {
    seen.delete(value);
  }
}

/** What a Mongoose document, subdocument or other wrapper stands for: toBSON(), else toObject(). */
function toPlain(value) {
  if (typeof value.toBSON === 'function') return value.toBSON();
  if (typeof value.toObject === 'function') return value.toObject();
  return value;
}

/** The exact text a blind index MACs for `value` (see the top of this file). */
function indexInput(value, options) {
  options = checkIndexOptions(options);
  if (typeof value === 'string') return normaliseString(value, options);
  if (value === undefined) throw invalid('undefined has no index value');
  return encode(value, options, new Set());
}

module.exports = { indexInput };
