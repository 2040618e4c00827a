'use strict';

/**
 * What the providers whose KMS hands the DEK back to JavaScript (aws, custom)
 * share: installing it into the addon and verifying a wrapping. What must stay
 * true: the unwrapped bytes are zero-filled whatever happens, right after the
 * addon has copied them (only the local provider keeps DEKs inside the addon).
 */

const native = require('../../core/native').load();
const { adopt } = require('../../core/errors');

/** `install` and `verify` for a provider whose `unwrap(keyMaterial, masterKey, ref)` resolves with the DEK bytes. */
function unwrappedKeys(unwrap) {
  return {
    async install(keyMaterial, masterKey, ref) {
      const plain = await unwrap(keyMaterial, masterKey, ref);
      try {
        native.vaultInstall(ref.purpose, ref.version, plain);
      } catch (err) {
        throw adopt(err);
      } finally {
        plain.fill(0);
      }
    },
    async verify(keyMaterial, masterKey, ref) {
      (await unwrap(keyMaterial, masterKey, ref)).fill(0);
    },
  };
}

module.exports = { unwrappedKeys };
