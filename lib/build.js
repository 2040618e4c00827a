#!/usr/bin/env node
'use strict';

/**
 * `npm install` runs this: it builds the native addon from source with cargo
 * (release profile) and places it where lib/native.js loads it.
 *
 * FIELDCRYPT_SKIP_BUILD=1 skips the build (e.g. when a prebuilt addon is
 * shipped); CARGO selects the cargo binary.
 */

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { fileName, addonPath } = require('./native');

const root = path.join(__dirname, '..');

if (process.env.FIELDCRYPT_SKIP_BUILD) {
  console.log('fieldcrypt: FIELDCRYPT_SKIP_BUILD is set, not building the native addon');
  process.exit(0);
}

const cargo = process.env.CARGO || 'cargo';
console.log(`fieldcrypt: building the native addon with ${cargo} build --release`);
const result = spawnSync(cargo, ['build', '--release', '--lib'], { cwd: root, stdio: 'inherit' });
if (result.error && result.error.code === 'ENOENT') {
  console.error('fieldcrypt: cargo was not found. Install Rust (https://rustup.rs) and run `npm install` again.');
  process.exit(1);
}
if (result.status !== 0) {
  console.error(`fieldcrypt: cargo build failed (exit ${result.status})`);
  process.exit(result.status || 1);
}

const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, 'target');
const built = {
  linux: 'libfieldcrypt.so',
  freebsd: 'libfieldcrypt.so',
  darwin: 'libfieldcrypt.dylib',
  win32: 'fieldcrypt.dll',
}[process.platform];
if (!built) {
  console.error(`fieldcrypt: unsupported platform ${process.platform}`);
  process.exit(1);
}

// Copy beside, then rename over: a process that has the old addon loaded keeps
// its mapping intact.
const tmp = `${addonPath}.${process.pid}.tmp`;
fs.copyFileSync(path.join(targetDir, 'release', built), tmp);
fs.renameSync(tmp, addonPath);
console.log(`fieldcrypt: wrote ${fileName} (${fs.statSync(addonPath).size} bytes)`);
