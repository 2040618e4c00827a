'use strict';

/**
 * Loads the native addon, from the first of:
 *
 * 1. FIELDCRYPT_NATIVE_PATH, a given file;
 * 2. a local build in the package's root (scripts/build-addon.js: a clone of
 *    the repository, or an install that built from source);
 * 3. the installed platform package (`fieldcrypt-linux-x64-gnu`, …), an
 *    optional dependency that npm installs only on its platform;
 *
 * and otherwise throws ERR_FIELDCRYPT_ADDON_NOT_BUILT naming the platform,
 * where it looked, and the two ways out. Platform names: ./platform.js.
 *
 * On x86-64 a place may hold two builds of the same source: a portable one,
 * and an accelerated one compiled for x86-64-v3 (AVX2, BMI2, ...) with AES-NI
 * and PCLMULQDQ enabled at compile time, which lets the AES-GCM code inline its
 * hardware paths instead of dispatching per block. The portable addon checks
 * the CPU (it runs nowhere it cannot) and the accelerated one is loaded only
 * where every feature it was compiled for is present.
 * FIELDCRYPT_NATIVE_VARIANT=portable forces the portable build.
 */

const fs = require('node:fs');
const path = require('node:path');
const { codes, FieldCryptError } = require('./errors');
const platform = require('./platform');

const key = platform.platformKey();
const { portable: fileName, accelerated: acceleratedFileName } = platform.fileNames(key);
const addonPath = path.join(platform.root, fileName);
const acceleratedPath = path.join(platform.root, acceleratedFileName);

let loaded;

function notBuilt(message, cause) {
  const err = new FieldCryptError(codes.ADDON_NOT_BUILT, message);
  if (cause) err.cause = cause;
  return err;
}

function notInstalled() {
  const pkg = platform.packageName(key);
  const fromSource = 'install Rust (https://rustup.rs) and build it from source: `npm rebuild fieldcrypt`';
  const ways = platform.PREBUILT.includes(key)
    ? `Either install the prebuilt package: \`npm install ${pkg}\` (an optional dependency: ` +
      `installs with --omit=optional or --no-optional skip it), or ${fromSource}`
    : `No prebuilt package is published for ${key}: ${fromSource}`;
  return notBuilt(
    `fieldcrypt's native addon for ${key} is not installed: looked for a local build (${addonPath}) ` +
      `and the package ${pkg}, found neither. ${ways}.`,
  );
}

/** The portable build in `dir`, and the accelerated one where the CPU has what it needs. */
function pickIn(dir) {
  const portable = require(path.join(dir, fileName));
  const accelerated = path.join(dir, acceleratedFileName);
  if (
    process.env.FIELDCRYPT_NATIVE_VARIANT !== 'portable' &&
    portable.cpuSupportsAccelerated() &&
    fs.existsSync(accelerated)
  ) {
    return { addon: require(accelerated), variant: platform.ACCELERATED, file: accelerated };
  }
  return { addon: portable, variant: 'portable', file: path.join(dir, fileName) };
}

function pick() {
  const custom = process.env.FIELDCRYPT_NATIVE_PATH;
  if (custom) {
    try {
      return { addon: require(custom), variant: 'custom', file: custom };
    } catch (cause) {
      if (cause && cause.code === 'MODULE_NOT_FOUND') {
        throw notBuilt(
          `fieldcrypt's native addon ${custom} (FIELDCRYPT_NATIVE_PATH) is not built: build it with \`npm install\` ` +
            'in a clone of fieldcrypt, or unset FIELDCRYPT_NATIVE_PATH',
          cause,
        );
      }
      throw cause;
    }
  }
  if (fs.existsSync(addonPath)) return pickIn(platform.root);
  const dir = platform.platformPackageDir(key);
  if (dir && fs.existsSync(path.join(dir, fileName))) return pickIn(dir);
  throw notInstalled();
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
