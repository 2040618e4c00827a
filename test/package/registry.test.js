'use strict';

// `npm install fieldcrypt` as users get it, through a real registry
// (Verdaccio, ./registry.js): the release's packages are built
// (scripts/build-prebuilt.js) and published to it, then installed into fresh
// temp projects whose PATH has no cargo or rustc:
//
// - fieldcrypt alone: the platform package comes along, nothing compiles;
// - fieldcrypt and mongoose: a round trip, and a Mongoose save() through the
//   README's encryptFieldIfModified('idNumber') hook on the test FerretDB;
// - --omit=optional: the install finishes and says what to do; loading
//   fieldcrypt throws ERR_FIELDCRYPT_ADDON_NOT_BUILT with the ways out;
// - --omit=optional with cargo on PATH: it builds from source.
//
// Install times and package sizes are printed (no timing is asserted).

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');

const platform = require('../../lib/core/platform');
const native = require('../../lib/core/native');
const { startServer } = require('../harness');
const { ROOT, log, buildPrebuilt } = require('./tools');
const { startRegistry, publish } = require('./registry');

const key = platform.platformKey();
const triple = { 'linux-x64-gnu': 'x86_64-unknown-linux-gnu' }[key];
const skip = !triple && `the registry test builds and installs the linux-x64-gnu package; this is ${key}`;
const KEY_HEX = crypto.randomBytes(32).toString('hex');
const STORED_RE = /^01:[0-9a-f]{32}:[0-9a-f]{32}:[0-9a-f]+$/;

let work; // temp dir: registry storage, staging, projects, npm cache
let registry;
let published;
const figures = [];

/** This environment without npm's own variables, with PATH and npm's user config (the local registry) given. */
function npmEnv(PATH, userconfig = registry.npmrc) {
  const env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(name) && !/^(CARGO|RUSTUP_TOOLCHAIN|RUSTC)$/.test(name)) env[name] = value;
  }
  return {
    ...env,
    PATH,
    npm_config_userconfig: userconfig,
    npm_config_cache: path.join(work, 'npm-cache'),
    npm_config_update_notifier: 'false',
    npm_config_audit: 'false',
    npm_config_fund: 'false',
  };
}

const hasTool = (dir, name) => fs.existsSync(path.join(dir, name));

/** PATH without the directories that hold cargo or rustc. */
function pathWithoutRust() {
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  return dirs.filter((dir) => !hasTool(dir, 'cargo') && !hasTool(dir, 'rustc')).join(path.delimiter);
}

/** A fresh project; `npm install ...args` in it; resolves with its dir, output and seconds taken. */
function install(name, args, env) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, private: true }) + '\n');
  fs.copyFileSync(path.join(__dirname, 'app.js'), path.join(dir, 'app.js'));
  const start = performance.now();
  const r = spawnSync('npm', ['install', '--foreground-scripts', '--registry', registry.url, ...args], {
    cwd: dir,
    env,
    encoding: 'utf8',
  });
  const seconds = (performance.now() - start) / 1000;
  const output = `${r.stdout}\n${r.stderr}`;
  assert.equal(r.status, 0, `npm install ${args.join(' ')}:\n${output}`);
  figures.push(`${name}: npm install ${args.join(' ')}: ${seconds.toFixed(1)} s`);
  log(`${name}: npm install ${args.join(' ')} took ${seconds.toFixed(1)} s`);
  return { dir, output, seconds };
}

/** Runs app.js in the project; its JSON line. */
function app(dir, env) {
  const r = spawnSync(process.execPath, ['app.js'], {
    cwd: dir,
    env: { ...env, ENCRYPTION_KEY: KEY_HEX },
    encoding: 'utf8',
  });
  const line = r.stdout.trim().split('\n').pop();
  assert.ok(line, `app.js printed nothing:\n${r.stderr}`);
  return { status: r.status, result: JSON.parse(line), stderr: r.stderr };
}

before(async () => {
  if (skip) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldcrypt-registry-'));
  const files = buildPrebuilt(key);
  registry = await startRegistry(path.join(work, 'registry'));
  const env = npmEnv(process.env.PATH, registry.publishNpmrc);
  published = publish({ stage: path.join(work, 'stage'), env, key, triple, files });
  const storage = path.join(work, 'registry', 'storage');
  for (const name of ['fieldcrypt', platform.packageName(key)]) {
    const tgz = path.join(storage, name, `${name}-${published.manifest.version}.tgz`);
    figures.push(`${name} tarball: ${(fs.statSync(tgz).size / 1024).toFixed(1)} KiB`);
  }
});

after(async () => {
  if (registry) await registry.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
  if (figures.length) log(`figures:\n  ${figures.join('\n  ')}`);
});

test('the published fieldcrypt lists the platform package as an optional dependency', { skip }, () => {
  assert.deepEqual(published.manifest.optionalDependencies, {
    [platform.packageName(key)]: published.manifest.version,
  });
});

test('npm install fieldcrypt, no Rust: the prebuilt addon, nothing compiled', { skip }, (t) => {
  const env = npmEnv(pathWithoutRust());
  assert.equal(spawnSync('cargo', ['--version'], { env }).error?.code, 'ENOENT', 'cargo is off PATH');
  const { dir, output, seconds } = install('alone', ['fieldcrypt'], env);
  t.diagnostic(`prebuilt install of fieldcrypt alone: ${seconds.toFixed(1)} s`);
  assert.match(output, new RegExp(`using the prebuilt addon of ${platform.packageName(key)}`));
  const own = path.join(dir, 'node_modules', 'fieldcrypt');
  assert.ok(!fs.existsSync(path.join(own, 'target')), 'nothing was compiled');
  assert.ok(!fs.existsSync(path.join(own, native.fileName)), 'no local build');
  const { status, result } = app(dir, env);
  assert.equal(status, 0, JSON.stringify(result));
  assert.equal(path.dirname(result.nativeInfo.file), path.join(dir, 'node_modules', platform.packageName(key)));
  assert.equal(result.roundTrip.decrypted, 'X1234567 ünïcödé');
  assert.match(result.roundTrip.stored, STORED_RE);
});

test('npm install fieldcrypt mongoose, no Rust: a save() through the helper hook, on FerretDB', { skip }, async (t) => {
  const env = npmEnv(pathWithoutRust());
  const { dir } = install('with-mongoose', ['fieldcrypt', 'mongoose'], env);
  const server = await startServer();
  t.after(() => server.stop());
  const { status, result, stderr } = app(dir, { ...env, MONGODB_URI: server.uri, DB_NAME: 'fieldcrypt_package' });
  assert.equal(status, 0, `${JSON.stringify(result)}\n${stderr}`);
  assert.equal(result.roundTrip.decrypted, 'X1234567 ünïcödé');
  assert.match(result.mongoose.stored, STORED_RE, 'the database holds ciphertext');
  assert.equal(result.mongoose.decrypted, 'X1234567');
  // What the installed package stored decrypts with this checkout's build and the same key.
  const { configureKeys, decrypt } = require('../..');
  configureKeys({ '01': KEY_HEX });
  assert.equal(decrypt(result.mongoose.stored), 'X1234567');
  t.diagnostic(`mongoose ${result.mongoose.version}`);
});

test('npm install --omit=optional, no Rust: the install finishes; loading names the ways out', { skip }, () => {
  const env = npmEnv(pathWithoutRust());
  const { dir, output } = install('omit-no-cargo', ['fieldcrypt', '--omit=optional'], env);
  assert.match(output, /cargo was not found/);
  assert.ok(!fs.existsSync(path.join(dir, 'node_modules', platform.packageName(key))));
  const { status, result } = app(dir, env);
  assert.equal(status, 1);
  assert.equal(result.error.code, 'ERR_FIELDCRYPT_ADDON_NOT_BUILT');
  assert.equal(result.error.name, 'FieldCryptError');
  assert.ok(result.error.message.includes(`for ${key}`), result.error.message);
  assert.ok(result.error.message.includes(`npm install ${platform.packageName(key)}`), result.error.message);
  assert.ok(result.error.message.includes('npm rebuild fieldcrypt'), result.error.message);
});

test('npm install --omit=optional with cargo: builds from source', { skip }, (t) => {
  // A target dir that outlives the run: later runs rebuild fieldcrypt, not its dependencies.
  const env = { ...npmEnv(process.env.PATH), CARGO_TARGET_DIR: path.join(ROOT, 'target', 'package-test') };
  const { dir, output, seconds } = install('omit-cargo', ['fieldcrypt', '--omit=optional'], env);
  t.diagnostic(
    `from-source install of fieldcrypt alone (target/package-test, cold on a first run): ${seconds.toFixed(1)} s`,
  );
  assert.match(output, /building from source/);
  const own = path.join(dir, 'node_modules', 'fieldcrypt');
  assert.ok(fs.existsSync(path.join(own, native.fileName)), output);
  const { status, result } = app(dir, env);
  assert.equal(status, 0, JSON.stringify(result));
  assert.equal(path.dirname(result.nativeInfo.file), own);
  assert.equal(result.roundTrip.decrypted, 'X1234567 ünïcödé');
});
