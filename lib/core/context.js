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

function invalidContext(fn, message) {
  return new FieldCryptError(codes.INVALID_ARGUMENT, `${fn}(): options.context ${message}`);
}

/** The additional data of `context`, as the string the addon reads as UTF-8. */
function encodeContext(context, fn) {
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    throw invalidContext(fn, `must be an object of strings, got ${describeType(context)}`);
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
  return JSON.stringify([LABEL, entries]);
}

module.exports = { encodeContext, CONTEXT_LABEL: LABEL };
