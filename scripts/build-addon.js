#!/usr/bin/env node
'use strict';

/**
 * `npm install` runs this (and `npm run build`). It decides whether to build
 * the native addon from source with cargo (release profile) into the package's
 * root, where lib/core/native.js looks first:
 *
 * - in a clone of the repository: always (FIELDCRYPT_SKIP_BUILD=1 skips);
 * - in the published package: never when the platform package
 *   (`fieldcrypt-linux-x64-gnu`, …) is installed; otherwise only when cargo is
 *   there. Without either it prints the way out and exits 0: the install goes
 *   on, and loading fieldcrypt throws ERR_FIELDCRYPT_ADDON_NOT_BUILT.
 * - FIELDCRYPT_BUILD_FROM_SOURCE=1 builds whatever is installed.
 *
 * On x86-64 it builds a second, accelerated addon (target-cpu x86-64-v3 with
 * AES-NI and PCLMULQDQ) that lib/core/native.js loads only on CPUs that have all
 * of those; see docs/performance.md. FIELDCRYPT_PORTABLE_ONLY=1 skips it.
 * CARGO selects the cargo binary.
 */

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const platform = require('../lib/core/platform');

const root = platform.root;
const cargo = process.env.CARGO || 'cargo';
const key = platform.platformKey();
const names = platform.fileNames(key);
const addonPath = path.join(root, names.portable);
const acceleratedPath = path.join(root, names.accelerated);

const libName = {
  linux: 'libfieldcrypt.so',
  freebsd: 'libfieldcrypt.so',
  darwin: 'libfieldcrypt.dylib',
  win32: 'fieldcrypt.dll',
}[process.platform];

function fail(message, code = 1) {
  console.error(`fieldcrypt: ${message}`);
  process.exit(code);
}

function cargoBuild(args, env) {
  const result = spawnSync(cargo, ['build', '--release', '--lib', ...args], { cwd: root, stdio: 'inherit', env });
  if (result.error && result.error.code === 'ENOENT') {
    fail('cargo was not found. Install Rust (https://rustup.rs) and run `npm install` again.');
  }
  if (result.status !== 0) fail(`cargo build failed (exit ${result.status})`, result.status || 1);
}

/** Copy beside, then rename over: a process that has the old addon loaded keeps its mapping intact. */
function install(from, to) {
  const tmp = `${to}.${process.pid}.tmp`;
  fs.copyFileSync(from, tmp);
  fs.renameSync(tmp, to);
  console.log(`fieldcrypt: wrote ${path.basename(to)} (${fs.statSync(to).size} bytes)`);
}

function hostTriple() {
  const out = spawnSync('rustc', ['-vV'], { encoding: 'utf8' });
  const m = /^host: (\S+)$/m.exec(out.stdout || '');
  return m && m[1];
}

/** A clone (or a source archive) of the repository, not the published package: the tests are there. */
function isCheckout() {
  return fs.existsSync(path.join(root, '.git')) || fs.existsSync(path.join(root, '__test__'));
}

function hasCargo() {
  const result = spawnSync(cargo, ['--version'], { stdio: 'ignore' });
  return !result.error && result.status === 0;
}

/** Whether to build; says why not when not. */
function shouldBuild() {
  if (process.env.FIELDCRYPT_SKIP_BUILD) {
    console.log('fieldcrypt: FIELDCRYPT_SKIP_BUILD is set, not building the native addon');
    return false;
  }
  if (process.env.FIELDCRYPT_BUILD_FROM_SOURCE === '1' || isCheckout()) return true;
  const pkg = platform.platformPackageDir(key);
  if (pkg) {
    console.log(`fieldcrypt: using the prebuilt addon of ${platform.packageName(key)} (not building)`);
    return false;
  }
  if (!hasCargo()) {
    const prebuilt = platform.PREBUILT.includes(key)
      ? `install the prebuilt package (\`npm install ${platform.packageName(key)}\`; --omit=optional skips it), or `
      : `no prebuilt package is published for ${key}: `;
    console.warn(
      `fieldcrypt: no native addon for ${key}, and cargo was not found to build one. ` +
        `Loading fieldcrypt will fail until you ${prebuilt}install Rust (https://rustup.rs) and run ` +
        '`npm rebuild fieldcrypt`.',
    );
    return false;
  }
  console.log(`fieldcrypt: no prebuilt package for ${key} is installed; building from source`);
  return true;
}

if (shouldBuild()) {
  if (!libName) fail(`unsupported platform ${process.platform}`);
  const targetDir = process.env.CARGO_TARGET_DIR || path.join(root, 'target');

  console.log(`fieldcrypt: building the native addon with ${cargo} build --release`);
  cargoBuild([], process.env);
  install(path.join(targetDir, 'release', libName), addonPath);

  if (process.arch === 'x64' && !process.env.FIELDCRYPT_PORTABLE_ONLY) {
    // An explicit --target keeps RUSTFLAGS off build scripts and proc macros,
    // which run on this machine whatever its CPU.
    const triple = hostTriple();
    if (!triple) fail('could not read the host target from `rustc -vV`');
    const accelDir = path.join(targetDir, 'x86-64-v3');
    console.log('fieldcrypt: building the accelerated addon (x86-64-v3 + AES-NI + PCLMULQDQ)');
    cargoBuild(['--target', triple, '--target-dir', accelDir], {
      ...process.env,
      CARGO_ENCODED_RUSTFLAGS: ['-Ctarget-cpu=x86-64-v3', '-Ctarget-feature=+aes,+pclmulqdq'].join('\x1f'),
    });
    install(path.join(accelDir, triple, 'release', libName), acceleratedPath);
  } else if (fs.existsSync(acceleratedPath)) {
    fs.rmSync(acceleratedPath);
  }
}
