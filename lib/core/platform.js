'use strict';

/**
 * Which platform this process runs on, in napi-rs's naming, and where its
 * addon files are: the key names both the locally built files
 * (`fieldcrypt.linux-x64-gnu.node`) and the prebuilt platform package
 * (`fieldcrypt-linux-x64-gnu`, npm/linux-x64-gnu/ in the repository).
 *
 * Used by lib/core/native.js at load time and by scripts/build-addon.js at
 * install time, so that both agree on names.
 */

const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..', '..');

/**
 * The platforms a prebuilt package is published for: package.json `napi.targets`,
 * in napi-rs's names (__test__/platform.test.js checks that they agree).
 */
const PREBUILT = Object.freeze([
  'linux-x64-gnu',
  'linux-x64-musl',
  'linux-arm64-gnu',
  'linux-arm64-musl',
  'darwin-x64',
  'darwin-arm64',
  'win32-x64-msvc',
]);

/** The accelerated build's extra name part (x86-64 only; see docs/performance.md). */
const ACCELERATED = 'x86-64-v3';

const isMuslName = (file) => typeof file === 'string' && (file.includes('libc.musl-') || file.includes('ld-musl-'));

// musl or glibc, detected as napi-rs's generated loader does: /usr/bin/ldd's
// text, then the process report (glibc processes have glibcVersionRuntime),
// then `ldd --version`. Each step answers null when it cannot tell.
function muslFromLdd() {
  try {
    return fs.readFileSync('/usr/bin/ldd', 'utf8').includes('musl');
  } catch {
    return null;
  }
}

function muslFromReport() {
  if (!process.report || typeof process.report.getReport !== 'function') return null;
  process.report.excludeNetwork = true;
  const report = process.report.getReport();
  if (!report) return null;
  if (report.header && report.header.glibcVersionRuntime) return false;
  return Array.isArray(report.sharedObjects) && report.sharedObjects.some(isMuslName);
}

function muslFromChildProcess() {
  try {
    return require('node:child_process').execSync('ldd --version', { encoding: 'utf8' }).includes('musl');
  } catch {
    return false;
  }
}

let musl;
function isMusl() {
  if (process.platform !== 'linux') return false;
  if (musl === undefined) {
    musl = muslFromLdd();
    if (musl === null) musl = muslFromReport();
    if (musl === null) musl = muslFromChildProcess();
  }
  return musl;
}

/** napi-rs's platform-arch-abi name of this process: 'linux-x64-gnu', 'darwin-arm64', 'win32-x64-msvc', … */
function platformKey() {
  const { platform, arch } = process;
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`;
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

/** The two file names of a platform's addon: the portable build, and the accelerated one (x86-64 only). */
function fileNames(key = platformKey()) {
  return { portable: `fieldcrypt.${key}.node`, accelerated: `fieldcrypt.${key}.${ACCELERATED}.node` };
}

/** The platform package's name, e.g. 'fieldcrypt-linux-x64-gnu'. */
function packageName(key = platformKey()) {
  return `fieldcrypt-${key}`;
}

/** The directory of the installed platform package, or null when it is not installed. */
function platformPackageDir(key = platformKey()) {
  try {
    return path.dirname(require.resolve(`${packageName(key)}/package.json`, { paths: [root] }));
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND') return null;
    throw err;
  }
}

module.exports = { root, PREBUILT, ACCELERATED, isMusl, platformKey, fileNames, packageName, platformPackageDir };
