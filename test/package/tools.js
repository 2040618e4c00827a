'use strict';

/**
 * The tools test/package/ needs, each installed once into .cache/ from its own
 * registry (so that a fresh clone needs nothing set up by hand), and the build
 * of this platform's prebuilt addon with them:
 *
 * - cargo-zigbuild (crates.io, `cargo install`) and zig (the `ziglang` wheel
 *   from PyPI, in a venv): `napi build -x` links against an old glibc with them;
 * - Verdaccio (npm): the local registry of registry.test.js;
 * - actionlint (the Go module proxy, `go install`): release-workflow.test.js.
 *
 * Messages go to stderr, so that stdout stays the test runner's.
 */

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.join(__dirname, '..', '..');
const CACHE = path.join(ROOT, '.cache');

const CARGO_ZIGBUILD_VERSION = '0.24.1';
const ZIGLANG_VERSION = '0.14.1';
const VERDACCIO_VERSION = '6.8.0';
const ACTIONLINT_VERSION = 'v1.7.12';

const ZIGBUILD_DIR = path.join(CACHE, `cargo-zigbuild-${CARGO_ZIGBUILD_VERSION}`);
const ZIG_VENV = path.join(CACHE, `ziglang-${ZIGLANG_VERSION}`);
const VERDACCIO_DIR = path.join(CACHE, `verdaccio-${VERDACCIO_VERSION}`);
const ACTIONLINT_DIR = path.join(CACHE, `actionlint-${ACTIONLINT_VERSION}`);

function log(message) {
  console.error(`[fieldcrypt package tests] ${message}`);
}

/** Runs a command with its output on our stderr; throws when it fails. */
function run(command, args, options = {}) {
  log(`${command} ${args.join(' ')}`);
  const r = spawnSync(command, args, { stdio: ['ignore', 2, 2], ...options });
  if (r.error) throw new Error(`${command}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (exit ${r.status})`);
}

/** Installs into a temp dir beside `dir`, then renames: an interrupted install leaves nothing half-done. */
function installOnce(dir, marker, install) {
  if (fs.existsSync(path.join(dir, marker))) return;
  const tmp = `${dir}.${process.pid}.tmp`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp, { recursive: true });
  try {
    install(tmp);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(tmp, dir);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

function ensureZigbuild() {
  installOnce(ZIGBUILD_DIR, path.join('bin', 'cargo-zigbuild'), (tmp) =>
    run('cargo', ['install', 'cargo-zigbuild', '--version', CARGO_ZIGBUILD_VERSION, '--locked', '--root', tmp]),
  );
  // A venv records its own path: it is made in place, not renamed.
  if (!fs.existsSync(path.join(ZIG_VENV, 'ready'))) {
    fs.rmSync(ZIG_VENV, { recursive: true, force: true });
    run('python3', ['-m', 'venv', ZIG_VENV]);
    run(path.join(ZIG_VENV, 'bin', 'pip'), ['install', '--quiet', `ziglang==${ZIGLANG_VERSION}`]);
    fs.writeFileSync(path.join(ZIG_VENV, 'ready'), '');
  }
  // cargo-zigbuild runs `python3 -m ziglang` when there is no zig on PATH.
  return { PATH: [path.join(ZIGBUILD_DIR, 'bin'), path.join(ZIG_VENV, 'bin'), process.env.PATH].join(path.delimiter) };
}

/** Builds this platform's prebuilt addon(s) with scripts/build-prebuilt.js; returns their paths. */
function buildPrebuilt(key) {
  const env = { ...process.env, ...ensureZigbuild() };
  const out = path.join(ROOT, 'target', 'prebuilt', key);
  run(process.execPath, [path.join(ROOT, 'scripts', 'build-prebuilt.js'), '--out', out], { cwd: ROOT, env });
  return fs
    .readdirSync(out)
    .filter((name) => name.endsWith('.node'))
    .map((name) => path.join(out, name));
}

/** The verdaccio executable. */
function ensureVerdaccio() {
  installOnce(VERDACCIO_DIR, path.join('node_modules', 'verdaccio', 'bin', 'verdaccio'), (tmp) => {
    fs.writeFileSync(path.join(tmp, 'package.json'), '{ "private": true }\n');
    run('npm', ['install', '--no-audit', '--no-fund', '--ignore-scripts', `verdaccio@${VERDACCIO_VERSION}`], {
      cwd: tmp,
    });
  });
  return path.join(VERDACCIO_DIR, 'node_modules', 'verdaccio', 'bin', 'verdaccio');
}

/** The actionlint executable. */
function ensureActionlint() {
  installOnce(ACTIONLINT_DIR, 'actionlint', (tmp) =>
    run('go', ['install', `github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}`], {
      env: { ...process.env, GOBIN: tmp },
    }),
  );
  return path.join(ACTIONLINT_DIR, 'actionlint');
}

module.exports = { ROOT, log, run, ensureZigbuild, buildPrebuilt, ensureVerdaccio, ensureActionlint };
