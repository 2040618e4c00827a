'use strict';

/**
 * A custom provider: `{ wrap, unwrap }` (async), e.g. for Vault transit or
 * GCP/Azure KMS (see docs/key-vault.md). wrap({ plaintext, masterKey,
 * context }) resolves with the wrapped key (a Uint8Array); unwrap({
 * keyMaterial, masterKey, context }) with the 32-byte DEK as a Uint8Array,
 * which fieldcrypt installs into the addon and then zero-fills. The DEK is a
 * JavaScript value while it passes through the provider: only the local
 * provider keeps it inside the addon.
 */

const native = require('../../core/native').load();
const { adopt } = require('../../core/errors');
const { unwrappedKeys } = require('./unwrapped');

function context(ref) {
  return { keyVaultNamespace: ref.namespace, keyId: ref.idHex, version: ref.version };
}

function kms(name, what, err) {
  const { kmsError } = require('./index');
  if (err && err.code === 'ERR_FIELDCRYPT_KMS') return err;
  return kmsError(`provider "${name}" could not ${what}: ${err && err.message ? err.message : String(err)}`, err);
}

function create(name, options) {
  async function unwrap(keyMaterial, masterKey, ref) {
    let plain;
    try {
      plain = await options.unwrap({ keyMaterial, masterKey, context: context(ref) });
    } catch (err) {
      throw kms(name, `unwrap the DEK of key version ${ref.version}`, err);
    }
    if (!(plain instanceof Uint8Array) || plain.length !== 32) {
      if (plain instanceof Uint8Array) plain.fill(0);
      throw kms(name, `unwrap the DEK of key version ${ref.version}`, new Error('unwrap() must resolve with 32 bytes'));
    }
    return plain;
  }
  async function wrap(plain, masterKey, ref) {
    try {
      const out = await options.wrap({ plaintext: plain, masterKey, context: context(ref) });
      if (!(out instanceof Uint8Array)) throw new Error('wrap() must resolve with a Uint8Array');
      return Buffer.from(out);
    } catch (err) {
      throw kms(name, `wrap the DEK of key version ${ref.version}`, err);
    } finally {
      plain.fill(0);
    }
  }
  return {
    name,
    type: 'custom',
    masterKeyFor: (params) => ({ provider: name, ...params }),
    sameKey: (a, b) => JSON.stringify(a) === JSON.stringify(b),
    async create(masterKey, ref) {
      const plain = new Uint8Array(32);
      native.vaultGenerateInto(plain);
      return wrap(plain, masterKey, ref);
    },
    async importEnv(variable, masterKey, ref) {
      const plain = new Uint8Array(32);
      try {
        native.vaultImportInto(variable, ref.version, plain);
      } catch (err) {
        plain.fill(0);
        throw adopt(err);
      }
      return wrap(plain, masterKey, ref);
    },
    ...unwrappedKeys(unwrap),
    unwrapBytes: unwrap,
    wrapBytes: wrap,
  };
}

module.exports = { create, context };
