'use strict';

/**
 * TEMPORARY SHIM (search-writes branch): indexInput() of the issue 20
 * contract, the exact text that is MACed for a JS value. The lead drops this
 * file at merge and takes search-core's.
 */

const { types } = require('node:util');
const { codes, FieldCryptError, describeType } = require('./errors');

function invalid(message) {
  return new FieldCryptError(codes.INVALID_ARGUMENT, message);
}

function normalizeString(s, options) {
  let out = s.normalize('NFC');
  if (options.trim) out = out.trim();
  if (options.collapseWhitespace) out = out.replace(/\s+/gu, ' ');
  if (options.lowercase) out = out.toLowerCase();
  if (typeof options.normalize === 'function') {
    out = options.normalize(out);
    if (typeof out !== 'string')
      throw invalid(`indexInput(): normalize must return a string, got ${describeType(out)}`);
  }
  return out;
}

function canonical(value, options) {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(normalizeString(value, options));
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalid('indexInput(): non-finite numbers cannot be indexed');
    return JSON.stringify(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value !== 'object') throw invalid(`indexInput(): cannot index ${describeType(value)}`);
  if (types.isDate(value)) return `{"$date":${JSON.stringify(value.toISOString())}}`;
  if (value instanceof Uint8Array) return `{"$binary":${JSON.stringify(Buffer.from(value).toString('base64'))}}`;
  const bsontype = value._bsontype;
  if (bsontype === 'ObjectId' || bsontype === 'ObjectID') return `{"$oid":${JSON.stringify(value.toHexString())}}`;
  if (bsontype === 'Decimal128') return `{"$numberDecimal":${JSON.stringify(value.toString())}}`;
  if (bsontype === 'Binary') return `{"$binary":${JSON.stringify(Buffer.from(value.buffer).toString('base64'))}}`;
  if (typeof value.toBSON === 'function' && !Array.isArray(value)) return canonical(value.toBSON(), options);
  if (typeof value.toObject === 'function' && !Array.isArray(value)) return canonical(value.toObject(), options);
  if (Array.isArray(value))
    return `[${Array.from(value, (v) => canonical(v === undefined ? null : v, options)).join(',')}]`;
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k], options)}`).join(',')}}`;
}

function indexInput(value, options = {}) {
  if (typeof value === 'string') return normalizeString(value, options);
  if (value === undefined) throw invalid('indexInput(): undefined cannot be indexed');
  return canonical(value, options);
}

module.exports = { indexInput };
