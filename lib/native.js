'use strict';

/**
 * Loads the native addon built by `npm install` (lib/build.js), named for the
 * platform so that prebuilt binaries for several platforms can sit side by side.
 */

const path = require('node:path');
const { codes, FieldCryptError } = require('./errors');

const root = path.join(__dirname, '..');
const fileName = `fieldcrypt.${process.platform}-${process.arch}.node`;

const addonPath = path.join(root, fileName);

function load() {
  const file = process.env.FIELDCRYPT_NATIVE_PATH || addonPath;
  try {
    return require(file);
  } catch (cause) {
    if (cause && cause.code === 'MODULE_NOT_FOUND') {
      const err = new FieldCryptError(
        codes.ADDON_NOT_BUILT,
        `fieldcrypt's native addon ${fileName} is not built: run \`npm install\` in the fieldcrypt ` +
          'package (it builds the addon with cargo; install Rust from https://rustup.rs first)',
      );
      err.cause = cause;
      throw err;
    }
    throw cause;
  }
}

module.exports = { load, fileName, addonPath };
