'use strict';

/**
 * TEMP shim (search-queries branch only; the lead takes the search-core
 * branch's module): indexInput(value, options), the exact text a blind index
 * MACs for a JS value, per the issue-20 contract.
 */

const { types } = require('node:util');
const { FieldCryptError, codes, describeType } = require('./errors');

const WHITESPACE = /\s+/gu;

function normalizeString(s, options) {
  let out = s.normalize('NFC');
  if (options.trim) out = out.trim();
  if (options.collapseWhitespace) out = out.replace(WHITESPACE, ' ');
  if (options.lowercase) out = out.toLowerCase();
  if (typeof options.normalize === 'function') {
    out = options.normalize(out);
    if (typeof out !== 'string') {
      throw new FieldCryptError(codes.INVALID_ARGUMENT, `normalize() must return a string, got ${describeType(out)}`);
    }
  }
  return out;
}

function canonical(value, options) {
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(normalizeString(value, options));
  if (typeof value === 'number') {
    if (!Number.isFinite(value))
      throw new FieldCryptError(codes.INVALID_ARGUMENT, 'non-finite numbers cannot be indexed');
    return JSON.stringify(value);
  }
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (value instanceof Date) return `{"$date":${JSON.stringify(value.toISOString())}}`;
  if (types.isUint8Array(value)) return `{"$binary":${JSON.stringify(Buffer.from(value).toString('base64'))}}`;
  if (value && value._bsontype === 'ObjectId') return `{"$oid":"${value.toHexString()}"}`;
  if (value && value._bsontype === 'Decimal128') return `{"$numberDecimal":${JSON.stringify(value.toString())}}`;
  if (value && value._bsontype === 'Binary')
    return `{"$binary":${JSON.stringify(Buffer.from(value.buffer).toString('base64'))}}`;
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? 'null' : canonical(v, options))).join(',')}]`;
  if (typeof value === 'object') {
    if (typeof value.toBSON === 'function' && !value._bsontype) return canonical(value.toBSON(), options);
    if (typeof value.toObject === 'function') return canonical(value.toObject(), options);
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k], options)}`).join(',')}}`;
  }
  throw new FieldCryptError(codes.INVALID_ARGUMENT, `indexInput() cannot index ${describeType(value)}`);
}

function indexInput(value, options = {}) {
  if (typeof value === 'string') return normalizeString(value, options || {});
  return canonical(value, options || {});
}

module.exports = { indexInput };
