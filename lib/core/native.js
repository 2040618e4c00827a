'use strict';

/**
 * Loads the native addon built by `npm install` (scripts/build-addon.js).
 *
 * On x86-64 there are two builds of the same source: a portable one, and an
 * accelerated one compiled for x86-64-v3 (AVX2, BMI2, ...) with AES-NI and
 * PCLMULQDQ enabled at compile time, which lets the AES-GCM code inline its
 * hardware paths instead of dispatching per block. The portable addon checks
 * the CPU (it runs nowhere it cannot) and the accelerated one is loaded only
 * where every feature it was compiled for is present.
 *
 * FIELDCRYPT_NATIVE_VARIANT=portable forces the portable build;
 * FIELDCRYPT_NATIVE_PATH loads a given file instead.
 */

const fs = require('node:fs');
const path = require('node:path');
const { codes, FieldCryptError } = require('./errors');

const root = path.join(__dirname, '..', '..');
const fileName = `fieldcrypt.${process.platform}-${process.arch}.node`;
const acceleratedFileName = `fieldcrypt.${process.platform}-${process.arch}-v3.node`;

const addonPath = path.join(root, fileName);
const acceleratedPath = path.join(root, acceleratedFileName);

let loaded;

function requireAddon(file) {
  try {
    return require(file);
  } catch (cause) {
    if (cause && cause.code === 'MODULE_NOT_FOUND') {
      const err = new FieldCryptError(
        codes.ADDON_NOT_BUILT,
        `fieldcrypt's native addon ${path.basename(file)} is not built: run \`npm install\` in the fieldcrypt ` +
          'package (it builds the addon with cargo; install Rust from https://rustup.rs first)',
      );
      err.cause = cause;
      throw err;
    }
    throw cause;
  }
}

function pick() {
  if (process.env.FIELDCRYPT_NATIVE_PATH) {
    return {
      addon: requireAddon(process.env.FIELDCRYPT_NATIVE_PATH),
      variant: 'custom',
      file: process.env.FIELDCRYPT_NATIVE_PATH,
    };
  }
  const portable = requireAddon(addonPath);
  if (
    process.env.FIELDCRYPT_NATIVE_VARIANT !== 'portable' &&
    portable.cpuSupportsAccelerated() &&
    fs.existsSync(acceleratedPath)
  ) {
    return { addon: requireAddon(acceleratedPath), variant: 'x86-64-v3', file: acceleratedPath };
  }
  return { addon: portable, variant: 'portable', file: addonPath };
}

/** The addon's functions (loaded once). */
function load() {
  if (loaded === undefined) loaded = pick();
  return loaded.addon;
}

/** Which build is in use: { variant: 'x86-64-v3' | 'portable' | 'custom', file }. */
function info() {
  load();
  return { variant: loaded.variant, file: loaded.file };
}

module.exports = { load, info, fileName, addonPath, acceleratedFileName, acceleratedPath };
