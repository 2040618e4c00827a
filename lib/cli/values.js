'use strict';

/**
 * What a value at a target path is, and what each command does with it.
 *
 * Classes (the columns of `status`):
 *   plaintext    a non-empty string that is not a stored value and not malformed
 *   empty        '' (left as it is, like the save hook does)
 *   encrypted    a well-formed VV:IV:TAG:CT string (counted per key version VV)
 *   malformed    a string that looks like a damaged stored value: not well-formed,
 *                but, ignoring surrounding whitespace, made only of hex digits and
 *                1 to 4 colons with at least 16 hex digits (a truncated value, one
 *                with whitespace or an extra separator, a 12-byte IV, a missing
 *                version). Never encrypted, rotated or decrypted: a person decides.
 *   unsupported  any other type (number, Date, boolean, object, ObjectId, binary…):
 *                left as it is, unless `encrypt --typed` asks for the typed codec
 *                (lib/core/codec.js, the fieldEncryption plugin's format)
 *
 * null and missing values are not visited at all (there is nothing to encrypt).
 */

const api = require('../core');
const keys = require('../core/keys');
const codec = require('../core/codec');
const { codes } = require('../core/errors');
const { loadDriver } = require('./driver');

const MALFORMED_SHAPE = /^[0-9a-fA-F:]+$/;

function isMalformed(value) {
  const s = value.trim();
  if (!MALFORMED_SHAPE.test(s)) return false;
  const colons = s.length - s.replaceAll(':', '').length;
  return colons >= 1 && colons <= 4 && s.length - colons >= 16;
}

/** 'plaintext' | 'empty' | 'encrypted' | 'malformed' | 'unsupported' */
function classify(value) {
  if (typeof value !== 'string') return 'unsupported';
  if (value === '') return 'empty';
  if (api.isEncrypted(value)) return 'encrypted';
  return isMalformed(value) ? 'malformed' : 'plaintext';
}

// ---------------------------------------------------------------------------
// The typed codec (lib/core/codec.js) turns non-string values into stored values
// and back, with the BSON of the driver the raw documents were read with.
// Strings never go through it (they keep the plain encrypt()/decrypt() format).

function bson() {
  return loadDriver().BSON;
}

// ---------------------------------------------------------------------------
// Per-command transforms: transform(value, { field, id }) -> { kind, action, value?, version?, binding? }
//   action 'change': write `value`; 'skip': leave (counted under `kind`).
// `contextOf(field, id)` (lib/cli/binding.js) is the context a bound field's
// values are bound to, undefined for an unbound field.

const NO_CONTEXT = () => undefined;

/**
 * `encrypt`: plaintext strings are encrypted with the current key version;
 * with `typed`, values of other types too, through the typed codec. Without
 * it they are left alone: encrypting a number turns the field into a string,
 * which only an app reading through the fieldEncryption plugin expects.
 */
function encryptTransform({ dryRun, typed }, contextOf = NO_CONTEXT) {
  return (value, place) => {
    const kind = classify(value);
    if (kind === 'plaintext' || (kind === 'unsupported' && typed)) {
      if (dryRun) return { kind, action: 'change' };
      const context = contextOf(place.field, place.id);
      const options = context === undefined ? undefined : { context };
      const stored = kind === 'plaintext' ? api.encrypt(value, options) : codec.encodeValue(value, bson(), options);
      return { kind, action: 'change', value: stored };
    }
    return { kind, action: 'skip', version: kind === 'encrypted' ? value.slice(0, 2) : undefined };
  };
}

/**
 * `rotate --to VV`: stored values under another version are re-encrypted
 * (inside the addon); on a bound field, bound to their context (unbound ones
 * too: rotation binds them).
 */
function rotateTransform({ dryRun, to }, contextOf = NO_CONTEXT) {
  return (value, place) => {
    const kind = classify(value);
    if (kind !== 'encrypted') return { kind, action: 'skip' };
    const version = value.slice(0, 2);
    if (version === to) return { kind, action: 'skip', version };
    if (dryRun) return { kind, action: 'change', version };
    const context = contextOf(place.field, place.id);
    const options = context === undefined ? undefined : { context, allowUnbound: true };
    return { kind, action: 'change', version, value: api.reEncrypt(value, to, options) };
  };
}

/** `decrypt`: stored values become their plaintext (typed values through the codec). */
function decryptTransform({ dryRun }, contextOf = NO_CONTEXT) {
  return (value, place) => {
    const kind = classify(value);
    if (kind !== 'encrypted') return { kind, action: 'skip' };
    const version = value.slice(0, 2);
    if (dryRun) return { kind, action: 'change', version };
    const context = contextOf(place.field, place.id);
    const options = context === undefined ? undefined : { context, allowUnbound: true };
    try {
      return { kind, action: 'change', version, value: api.decrypt(value, options) };
    } catch (err) {
      // Not text: a typed value, written by the plugin or by `encrypt --typed`.
      if (err.code === codes.NOT_UTF8)
        return { kind, action: 'change', version, value: codec.decodeValue(value, bson(), options) };
      throw err;
    }
  };
}

/**
 * Checks before a run that the keys it needs are there, so that a missing key
 * fails once at the start rather than at every value.
 */
function preflight(command, { to, dryRun }) {
  if (dryRun) return;
  if (command === 'encrypt') api.encrypt('', { keyVersion: keys.currentVersion() });
  if (command === 'rotate') api.encrypt('', { keyVersion: to });
}

module.exports = { classify, isMalformed, encryptTransform, rotateTransform, decryptTransform, preflight };
