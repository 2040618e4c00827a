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
 * Context made by sealedContext() -> its encoding, computed once: such a
 * context is a frozen object of plain strings, so it cannot change (the
 * plugin reuses one per collection and path for every value it writes
 * there). Other contexts are encoded on every call.
 */
const ENCODED = new WeakMap();
const SEALED = new WeakSet();

function invalidContext(fn, message) {
  return new FieldCryptError(codes.INVALID_ARGUMENT, `${fn}(): options.context ${message}`);
}

/** The additional data of `context`, as the string the addon reads as UTF-8. */
function encodeContext(context, fn) {
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    throw invalidContext(fn, `must be an object of strings, got ${describeType(context)}`);
  }
  const sealed = SEALED.has(context);
  if (sealed) {
    const known = ENCODED.get(context);
    if (known !== undefined) return known;
  }
  const names = Object.keys(context).sort();
  if (names.length === 0) throw invalidContext(fn, 'needs at least one entry');
  const entries = new Array(names.length);
  for (let i = 0; i < names.length; i++) {
    const value = context[names[i]];
    if (typeof value !== 'string') {
      // The name is the caller's own identifier, never a value: safe to show.
      throw invalidContext(fn, `entry "${names[i]}" must be a string, got ${describeType(value)}`);
    }
    entries[i] = [names[i], value];
  }
  const encoded = JSON.stringify([LABEL, entries]);
  if (sealed) ENCODED.set(context, encoded);
  return encoded;
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

module.exports = { encodeContext, storedValueContext, sealedContext, CONTEXT_LABEL: LABEL };
