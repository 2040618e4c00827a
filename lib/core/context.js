'use strict';

/**
 * Context binding: where a value belongs, authenticated with it as AES-GCM
 * additional data, so that a ciphertext copied to another collection, field
 * or document no longer decrypts there.
 *
 * A context is a plain object whose values are strings, such as
 * `{ collection: 'patients', path: 'ssn', id: '…' }` (the plugin's) or any
 * names other code chooses (`{ table, column, row }`). What must stay true,
 * since stored values depend on it (docs/format.md, "Context binding"):
 * the additional data is the UTF-8 of
 * `JSON.stringify(['fieldcrypt.context.v1', [[name, value], …]])`, the
 * entries sorted by name. JSON's string escaping is one-to-one, so two
 * different contexts never give the same bytes; the order of the object's
 * keys does not matter.
 */

const { codes, FieldCryptError, describeType } = require('./errors');

const LABEL = 'fieldcrypt.context.v1';

/**
 * Context object -> `{ names, values, encoded }` of its last encoding. A
 * context made by sealedContext() is frozen, so its encoding is reused as it
 * is (the plugin reuses one per collection and path for every value it
 * writes there); any other is reused only while its names and values are
 * still the same strings, checked on each call (cheaper than encoding
 * again), so an application may keep one context object per field.
 */
const ENCODED = new WeakMap();
const SEALED = new WeakSet();

/** Whether `context` still has the names and values `cached` was encoded from. */
function unchanged(cached, names, context) {
  if (cached.names.length !== names.length) return false;
  for (let i = 0; i < names.length; i++) {
    if (cached.names[i] !== names[i] || cached.values[i] !== context[names[i]]) return false;
  }
  return true;
}

function invalidContext(fn, message) {
  return new FieldCryptError(codes.INVALID_ARGUMENT, `${fn}(): options.context ${message}`);
}

/** The additional data of `context`, as the string the addon reads as UTF-8. */
function encodeContext(context, fn) {
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    throw invalidContext(fn, `must be an object of strings, got ${describeType(context)}`);
  }
  const cached = ENCODED.get(context);
  if (cached !== undefined && SEALED.has(context)) return cached.encoded;
  const names = Object.keys(context);
  if (cached !== undefined && unchanged(cached, names, context)) return cached.encoded;
  if (names.length === 0) throw invalidContext(fn, 'needs at least one entry');
  const keyOrder = names.slice();
  if (!isSorted(names)) names.sort();
  // Written out by hand, the same as JSON.stringify([LABEL, [[name, value], …]])
  // (the tests check that), without building the arrays.
  let encoded = PREFIX;
  for (let i = 0; i < names.length; i++) {
    const value = context[names[i]];
    if (typeof value !== 'string') {
      // The name is the caller's own identifier, never a value: safe to show.
      throw invalidContext(fn, `entry "${names[i]}" must be a string, got ${describeType(value)}`);
    }
    encoded += `${i === 0 ? '' : ','}[${jsonString(names[i])},${jsonString(value)}]`;
  }
  encoded += ']]';
  ENCODED.set(context, { names: keyOrder, values: keyOrder.map((name) => context[name]), encoded });
  return encoded;
}

/** `["fieldcrypt.context.v1",[`: the encoding's fixed start. */
const PREFIX = `[${JSON.stringify(LABEL)},[`;

/** Characters JSON.stringify escapes: `"`, `\\`, controls, and surrogates (escaped when lone). */
// eslint-disable-next-line no-control-regex -- control characters are what JSON escapes
const ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;
// eslint-disable-next-line no-control-regex -- as above
const NEEDS_STRINGIFY = /[\u0000-\u001f\ud800-\udfff]/;

/**
 * `JSON.stringify(s)` for a string, exactly, without its slow path for the
 * common cases (no escapes; only quotes and backslashes, as in an _id's
 * Extended JSON).
 */
function jsonString(s) {
  if (!ESCAPED.test(s)) return `"${s}"`;
  if (NEEDS_STRINGIFY.test(s)) return JSON.stringify(s);
  let out = '"';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c) {
      out += `${s.slice(from, i)}\\`;
      from = i;
    }
  }
  return `${out}${s.slice(from)}"`;
}

/** Whether `names` is in the order Array#sort puts strings in (UTF-16 code units). */
function isSorted(names) {
  for (let i = 1; i < names.length; i++) if (names[i - 1] > names[i]) return false;
  return true;
}

/**
 * The context of a value stored in a collection, as the plugin and the CLI
 * bind it: `{ collection, path }`, plus `id` when bound to its document.
 * `path` is the raw schema path (`identifications.idNumber` for every element
 * of `identifications`, `secrets.$*` for every value of a Map), so that
 * moving an element inside its array keeps it readable; `id` is the
 * document's `_id` as canonical Extended JSON (`EJSON.stringify(_id, {
 * relaxed: false })`), so that `_id`s of different types never collide.
 */
function storedValueContext(collection, path, id) {
  return id === undefined ? { collection, path } : { collection, path, id };
}

/**
 * A frozen copy of `context` (an object of strings) whose encoding is
 * computed once and reused by every call given it.
 */
function sealedContext(context) {
  const copy = Object.freeze({ ...context });
  SEALED.add(copy);
  return copy;
}

module.exports = { encodeContext, storedValueContext, sealedContext, jsonString, CONTEXT_LABEL: LABEL };
