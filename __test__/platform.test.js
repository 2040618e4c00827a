'use strict';

// Platform packages and the loader's order (lib/core/platform.js,
// lib/core/native.js, scripts/build-addon.js), checked on a copy of the
// package laid out as npm installs it: node_modules/fieldcrypt beside
// node_modules/fieldcrypt-<platform>. test/package/ does the same through a
// real registry.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseTriple } = require('@napi-rs/cli');

const platform = require('../lib/core/platform');
const native = require('../lib/core/native');

const ROOT = path.join(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const key = platform.platformKey();

test("PREBUILT is package.json's napi.targets, and npm/ has a package for each, in napi-rs's layout", () => {
  const keys = pkg.napi.targets.map((triple) => parseTriple(triple).platformArchABI);
  assert.deepEqual(keys, [...platform.PREBUILT]);
  assert.deepEqual(fs.readdirSync(path.join(ROOT, 'npm')).sort(), [...platform.PREBUILT].sort());
  for (const triple of pkg.napi.targets) {
    const t = parseTriple(triple);
    const sub = JSON.parse(fs.readFileSync(path.join(ROOT, 'npm', t.platformArchABI, 'package.json'), 'utf8'));
    const names = platform.fileNames(t.platformArchABI);
    assert.equal(sub.name, platform.packageName(t.platformArchABI));
    assert.equal(sub.version, pkg.version, `${sub.name}: versions move together (napi version)`);
    assert.deepEqual(sub.os, [t.platform]);
    assert.deepEqual(sub.cpu, [t.arch]);
    assert.deepEqual(sub.libc, t.abi === 'gnu' ? ['glibc'] : t.abi === 'musl' ? ['musl'] : undefined);
    assert.equal(sub.main, names.portable);
    const files = t.platformArchABI === 'linux-x64-gnu' ? [names.portable, names.accelerated] : [names.portable];
    assert.deepEqual(sub.files, files, sub.name);
  }
});

test('musl or glibc: what the process report says', { skip: process.platform !== 'linux' }, () => {
  const glibc = Boolean(process.report.getReport().header.glibcVersionRuntime);
  assert.equal(platform.isMusl(), !glibc);
  assert.equal(key, `linux-${process.arch}-${glibc ? 'gnu' : 'musl'}`);
});

/** node_modules/fieldcrypt (lib/, index.js, the install script) in a temp project, with or without the platform package. */
function layout(t, { local = false, prebuilt = false } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldcrypt-layout-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const own = path.join(dir, 'node_modules', 'fieldcrypt');
  for (const entry of ['index.js', 'package.json', 'lib', 'scripts']) {
    fs.cpSync(path.join(ROOT, entry), path.join(own, entry), { recursive: true });
  }
  if (local) fs.copyFileSync(native.addonPath, path.join(own, native.fileName));
  if (prebuilt) {
    const sub = path.join(dir, 'node_modules', platform.packageName(key));
    fs.mkdirSync(sub, { recursive: true });
    fs.copyFileSync(path.join(ROOT, 'npm', key, 'package.json'), path.join(sub, 'package.json'));
    fs.copyFileSync(native.addonPath, path.join(sub, native.fileName));
    if (fs.existsSync(native.acceleratedPath)) {
      fs.copyFileSync(native.acceleratedPath, path.join(sub, native.acceleratedFileName));
    }
  }
  return { dir, own };
}

/** Loads fieldcrypt in a child; its nativeInfo() or its error. */
function loadIn(dir, env = {}) {
  const script = `try { console.log(JSON.stringify(require('fieldcrypt').nativeInfo())); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  const clean = { ...process.env, ...env };
  delete clean.FIELDCRYPT_NATIVE_PATH;
  const r = spawnSync(process.execPath, ['-e', script], { cwd: dir, encoding: 'utf8', env: clean });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const supported = platform.PREBUILT.includes(key) && fs.existsSync(native.addonPath);

test('the loader takes the platform package when there is no local build', { skip: !supported }, (t) => {
  const { dir } = layout(t, { prebuilt: true });
  const info = loadIn(dir);
  assert.equal(path.dirname(info.file), path.join(fs.realpathSync(dir), 'node_modules', platform.packageName(key)));
  assert.equal(loadIn(dir, { FIELDCRYPT_NATIVE_VARIANT: 'portable' }).variant, 'portable');
});

test('a local build comes before the platform package', { skip: !supported }, (t) => {
  const { dir, own } = layout(t, { local: true, prebuilt: true });
  const info = loadIn(dir, { FIELDCRYPT_NATIVE_VARIANT: 'portable' });
  assert.equal(info.file, path.join(fs.realpathSync(own), native.fileName));
});

test('neither: one error that names the platform, where it looked, and both ways out', { skip: !supported }, (t) => {
  const { dir, own } = layout(t);
  const r = loadIn(dir);
  assert.equal(r.code, 'ERR_FIELDCRYPT_ADDON_NOT_BUILT');
  assert.ok(r.message.includes(`for ${key}`), r.message);
  assert.ok(r.message.includes(path.join(fs.realpathSync(own), native.fileName)), r.message);
  assert.ok(r.message.includes(`npm install ${platform.packageName(key)}`), r.message);
  assert.ok(r.message.includes('https://rustup.rs') && r.message.includes('npm rebuild fieldcrypt'), r.message);
});

/** Runs the install script in the copy, with a cargo that does not exist (CARGO names the binary it runs). */
function installScript(own, env = {}) {
  return spawnSync(process.execPath, ['scripts/build-addon.js'], {
    cwd: own,
    encoding: 'utf8',
    env: { ...process.env, CARGO: path.join(own, 'no-such-cargo'), ...env },
  });
}

test('the install script does not build when the platform package is there', { skip: !supported }, (t) => {
  const { own } = layout(t, { prebuilt: true });
  const r = installScript(own);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`using the prebuilt addon of ${platform.packageName(key)}`));
});

test(
  'without the platform package or cargo it says what to do and lets the install finish',
  { skip: !supported },
  (t) => {
    const { own } = layout(t);
    const r = installScript(own);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /cargo was not found/);
    assert.ok(r.stderr.includes(`npm install ${platform.packageName(key)}`), r.stderr);
    assert.ok(!fs.existsSync(path.join(own, native.fileName)));
  },
);

test('FIELDCRYPT_BUILD_FROM_SOURCE=1 builds even with the platform package (here: fails, no cargo)', (t) => {
  const { own } = layout(t, { prebuilt: supported });
  const r = installScript(own, { FIELDCRYPT_BUILD_FROM_SOURCE: '1' });
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /cargo was not found/);
});
