'use strict';

/**
 * Context binding in the CLI: which fields of a target are bound (and how),
 * the context of a value there, whether a stored value is bound to it, and
 * the `bind` command's transform.
 *
 * A target's `bindings` maps a field (a raw dotted path, as `--field` and
 * `encryptedPaths()` write it) to 'collection' or 'document'. The context is
 * the one the fieldEncryption plugin uses (lib/core/context.js
 * storedValueContext): `{ collection, path }`, plus the document's `_id` as
 * canonical Extended JSON for 'document'. What must stay true: deciding
 * whether a value is bound happens inside the addon, by re-encryption
 * attempts, so no plaintext reaches JavaScript; a value bound elsewhere is
 * reported, never rewritten.
 */

const api = require('../core');
const { codes } = require('../core/errors');
const { storedValueContext } = require('../core/context');
const { loadDriver } = require('./driver');

const MODES = ['collection', 'document'];

/** `(field, id) => context | undefined` for one collection's bindings. */
function contextsFor(collection, bindings) {
  if (!bindings || Object.keys(bindings).length === 0) return () => undefined;
  const { EJSON } = loadDriver().BSON;
  return (field, id) => {
    const mode = bindings[field];
    if (mode === undefined) return undefined;
    return storedValueContext(
      collection,
      field,
      mode === 'document' ? EJSON.stringify(id, { relaxed: false }) : undefined,
    );
  };
}

/**
 * Where a well-formed stored value stands against `context`: 'bound' (to
 * it), or 'unbound' (then `rebound` is the value bound to it, same key
 * version). Throws ERR_FIELDCRYPT_CONTEXT_MISMATCH for a value bound
 * elsewhere (copied from another document, field or collection) or
 * modified.
 */
function probe(value, context) {
  const version = value.slice(0, 2);
  try {
    return { state: 'unbound', rebound: api.reEncrypt(value, version, { context, fromContext: null }) };
  } catch (err) {
    if (err.code !== codes.AUTH_FAILED) throw err;
  }
  api.reEncrypt(value, version, { context }); // bound here, or CONTEXT_MISMATCH
  return { state: 'bound' };
}

/**
 * `bind`: every encrypted value of a bound field that is not bound yet is
 * re-encrypted bound to its context, under the same key version, inside the
 * addon. Plaintext, empty, malformed and other values are left alone.
 */
function bindTransform({ dryRun }, contextOf, classify) {
  return (value, place) => {
    const kind = classify(value);
    if (kind !== 'encrypted') return { kind, action: 'skip' };
    const version = value.slice(0, 2);
    const { state, rebound } = probe(value, contextOf(place.field, place.id));
    if (state === 'bound') return { kind, action: 'skip', version, binding: 'bound' };
    return { kind, action: 'change', version, binding: 'unbound', value: dryRun ? undefined : rebound };
  };
}

module.exports = { MODES, contextsFor, probe, bindTransform };
