'use strict';

/**
 * kmsProviders: names to providers. A name is a type (`local`, `aws`) or
 * `type:label` for a second provider of a type (`local:2026`, `aws:eu`), as
 * CSFLE names them; any other name is a custom provider given as an object
 * with async wrap()/unwrap() (see docs/key-vault.md).
 *
 * Every provider here has the same operations, on a DEK reference
 * `ref = { id: Uint8Array(16), idHex, version, purpose, namespace }`:
 *
 *   create(masterKey, ref)          -> keyMaterial for a new DEK
 *   importEnv(variable, masterKey, ref) -> keyMaterial of an environment key (read by the addon)
 *   install(keyMaterial, masterKey, ref)  unwraps into the addon's key ring
 *   verify(keyMaterial, masterKey, ref)   throws unless it unwraps
 *   unwrapBytes(keyMaterial, masterKey, ref) -> Uint8Array(32) (the caller zero-fills it)
 *   wrapBytes(plain, masterKey, ref)      -> keyMaterial (zero-fills plain)
 *   rewrapTo?(toProvider, keyMaterial, fromMasterKey, toMasterKey, ref) -> keyMaterial
 *       without the DEK leaving the addon or the KMS, or undefined when it cannot
 *
 * Failures are FieldCryptErrors with code ERR_FIELDCRYPT_KMS.
 */

const { codes, FieldCryptError, describeType } = require('../../core/errors');
const local = require('./local');
const aws = require('./aws');
const custom = require('./custom');

const TYPES = { local, aws };

function kmsError(message, cause) {
  const err = new FieldCryptError(codes.KMS, `Key management failed: ${message}`);
  if (cause) err.cause = cause;
  return err;
}

/** Resolves every entry of kmsProviders once; returns get(name). */
function resolveProviders(kmsProviders) {
  if (kmsProviders === null || typeof kmsProviders !== 'object' || Array.isArray(kmsProviders)) {
    throw kmsError(
      `kmsProviders must be an object such as { local: { key: 'env:NAME' } }, got ${describeType(kmsProviders)}`,
    );
  }
  const cache = new Map();
  function get(name) {
    if (cache.has(name)) return cache.get(name);
    if (!Object.hasOwn(kmsProviders, name)) {
      throw kmsError(
        `no KMS provider "${name}" in kmsProviders (configured: ${Object.keys(kmsProviders).join(', ') || 'none'})`,
      );
    }
    const options = kmsProviders[name];
    const type = name.split(':')[0];
    let provider;
    if (options && typeof options.wrap === 'function' && typeof options.unwrap === 'function') {
      provider = custom.create(name, options);
    } else if (Object.hasOwn(TYPES, type)) {
      provider = TYPES[type].create(name, options || {});
    } else {
      throw kmsError(`KMS provider "${name}" is neither local, aws nor an object with wrap() and unwrap()`);
    }
    cache.set(name, provider);
    return provider;
  }
  // Every entry is checked now, so a misconfigured provider fails at start.
  for (const name of Object.keys(kmsProviders)) get(name);
  return get;
}

module.exports = { resolveProviders, kmsError };
