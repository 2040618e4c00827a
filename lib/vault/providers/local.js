'use strict';

/**
 * The `local` provider: a 96- or 32-byte master key (hex or base64) from an
 * environment variable (`key: 'env:NAME'`), a file (`key: 'file:PATH'`) or
 * given as a Buffer. Every operation runs inside the addon (src/wrap.rs,
 * src/napi/vault.rs): the DEK is never a JavaScript value, and with env: or
 * file: neither is the master key.
 */

const native = require('../../core/native').load();
const { adopt } = require('../../core/errors');

function keySource(name, options) {
  const { key } = options;
  if (typeof key === 'string' && /^(env|file):./.test(key)) return key;
  if (key instanceof Uint8Array) return key;
  // Imported lazily: providers/index.js requires this module.
  const { kmsError } = require('./index');
  throw kmsError(`kmsProviders["${name}"].key must be "env:NAME", "file:PATH" or a Buffer`);
}

function call(fn) {
  try {
    return fn();
  } catch (err) {
    throw adopt(err);
  }
}

function create(name, options) {
  const source = keySource(name, options);
  return {
    name,
    type: 'local',
    /** The masterKey of a new DEK under this provider. */
    masterKeyFor: () => ({ provider: name }),
    sameKey: (a, b) => a.provider === b.provider,
    async create(masterKey, ref) {
      return call(() => native.vaultCreateLocal(source, ref.id, ref.version));
    },
    /** Wraps the 64-hex key of environment variable `variable` (moving an environment key into the vault). */
    async importEnv(variable, masterKey, ref) {
      return call(() => native.vaultImportLocal(source, variable, ref.id, ref.version));
    },
    async install(keyMaterial, masterKey, ref) {
      call(() => native.vaultInstallLocal(ref.purpose, source, keyMaterial, ref.id, ref.version));
    },
    async verify(keyMaterial, masterKey, ref) {
      call(() => native.vaultVerifyLocal(source, keyMaterial, ref.id, ref.version));
    },
    async unwrapBytes(keyMaterial, masterKey, ref) {
      const out = new Uint8Array(32);
      call(() => native.vaultUnwrapLocalInto(source, keyMaterial, ref.id, ref.version, out));
      return out;
    },
    async wrapBytes(plain, masterKey, ref) {
      return call(() => native.vaultWrapLocalFrom(source, plain, ref.id, ref.version));
    },
    /** To another local master key: unwrapped and wrapped again inside the addon; else undefined. */
    async rewrapTo(toProvider, keyMaterial, fromMasterKey, toMasterKey, ref) {
      if (toProvider.type !== 'local') return undefined;
      return call(() => native.vaultRewrapLocal(source, toProvider.source(), keyMaterial, ref.id, ref.version));
    },
    source: () => source,
  };
}

module.exports = { create };
