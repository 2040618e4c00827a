'use strict';

/**
 * How a call reaches the addon: each call goes straight to the native
 * function. If the addon reports a missing key version (`err.keyVersion`),
 * the key is loaded from process.env (environment mode) and the call is
 * retried; this keeps key loading lazy without a check on the fast path.
 * Every error leaving here is a FieldCryptError (adopt).
 */

const { codes, FieldCryptError, adopt, describeType } = require('./errors');
const keys = require('./keys');
const { encodeContext } = require('./context');

/** After `err`, loads the key it reports missing; true if the call should be retried. */
function loadedMissingKey(err) {
  return err != null && err.code === codes.KEY_NOT_FOUND && keys.loadMissing(err.keyVersion);
}

/**
 * Calls `fn(a, b, c, d, e)`; each time it fails for a key that process.env
 * can supply, loads that key and calls again (at most once per key version).
 */
function withKeys(fn, a, b, c, d, e) {
  for (;;) {
    try {
      return fn(a, b, c, d, e);
    } catch (err) {
      if (!loadedMissingKey(err)) throw adopt(err);
    }
  }
}

/** The key version a write uses: `options.keyVersion` if given, else the current one. */
function versionOption(options, fn) {
  if (options === undefined) return keys.currentVersion();
  const { keyVersion } = keys.checkOptions(options, fn);
  return keyVersion === undefined ? keys.currentVersion() : keys.checkVersion(keyVersion, 'options.keyVersion');
}

/**
 * The options of a call that once took none (decrypt, decryptBuffer, the
 * decrypting batches): an object is options; anything else is ignored, as it
 * was, so that `stored.map(decrypt)` (which passes the index) keeps working.
 */
function readOptions(options) {
  return options !== null && typeof options === 'object' && !Array.isArray(options) ? options : undefined;
}

/** `options.context`, encoded for the addon (lib/core/context.js); undefined for none. */
function contextOption(options, fn) {
  if (options === undefined || options === null) return undefined;
  const { context } = keys.checkOptions(options, fn);
  return context === undefined || context === null ? undefined : encodeContext(context, fn);
}

/** `options.allowUnbound`: whether a read with a context accepts an unbound value. */
function allowUnboundOption(options, fn) {
  if (options === undefined || options === null) return false;
  const { allowUnbound } = keys.checkOptions(options, fn);
  if (allowUnbound === undefined) return false;
  if (typeof allowUnbound !== 'boolean') {
    throw new FieldCryptError(
      codes.INVALID_ARGUMENT,
      `${fn}(): options.allowUnbound must be a boolean, got ${describeType(allowUnbound)}`,
    );
  }
  return allowUnbound;
}

module.exports = { loadedMissingKey, withKeys, versionOption, contextOption, allowUnboundOption, readOptions };
