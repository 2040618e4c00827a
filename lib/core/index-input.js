'use strict';

/**
 * TEMP shim (issue 20, search-cli): indexInput() per the shared contract, so
 * the CLI can be built before search-core lands. The lead drops this file at
 * merge in favour of search-core's.
 *
 * indexInput(value, options) -> the exact text that is MACed for a JS value.
 */

const { codes, FieldCryptError, describeType } = require('./errors');

function normaliseString(s, options) {
  let out = s.normalize('NFC');
  if (options.trim) out = out.trim();
  if (options.collapseWhitespace) out = out.replace(/\s+/gu, ' ');
  if (options.lowercase) out = out.toLowerCase();
  if (typeof options.normalize === 'function') {
    out = options.normalize(out);
    if (typeof out !== 'string') {
      throw new FieldCryptError(
        codes.INVALID_ARGUMENT,
        `indexInput(): normalize must return a string, got ${describeType(out)}`,
      );
    }
  }
  return out;
}

function canonical(value, options) {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return JSON.stringify(normaliseString(value, options));
    case 'number':
      if (!Number.isFinite(value)) {
        throw new FieldCryptError(codes.INVALID_ARGUMENT, 'indexInput(): non-finite numbers cannot be indexed');
      }
      return JSON.stringify(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return JSON.stringify({ $numberLong: value.toString() });
    case 'object':
      break;
    default:
      throw new FieldCryptError(codes.INVALID_ARGUMENT, `indexInput(): cannot index ${describeType(value)}`);
  }
  if (value instanceof Date) return JSON.stringify({ $date: value.toISOString() });
  const bsontype = value._bsontype;
  if (bsontype === 'ObjectId' || bsontype === 'ObjectID') return JSON.stringify({ $oid: value.toHexString() });
  if (bsontype === 'Decimal128') return JSON.stringify({ $numberDecimal: value.toString() });
  if (bsontype === 'Binary') return JSON.stringify({ $binary: Buffer.from(value.buffer).toString('base64') });
  if (value instanceof Uint8Array) {
    return JSON.stringify({
      $binary: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64'),
    });
  }
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? 'null' : canonical(v, options))).join(',')}]`;
  if (typeof value.toBSON === 'function') return canonical(value.toBSON(), options);
  if (typeof value.toObject === 'function') return canonical(value.toObject(), options);
  const keys = Object.keys(value)
    .filter((k) => value[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k], options)}`).join(',')}}`;
}

function indexInput(value, options = {}) {
  options = options || {};
  if (typeof value === 'string') return normaliseString(value, options);
  if (value === undefined) throw new FieldCryptError(codes.INVALID_ARGUMENT, 'indexInput(): cannot index undefined');
  return canonical(value, options);
}

module.exports = { indexInput };
