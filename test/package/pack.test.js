'use strict';

// What `npm publish` would put in fieldcrypt's tarball (`npm pack --dry-run`):
// the JavaScript, the types, the install script and the Rust sources the
// from-source fallback builds; nothing a user does not need. The sizes are
// printed. (The platform packages' sizes: registry.test.js.)

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const path = require('node:path');
const { ROOT } = require('./tools');

const NEEDED = [
  'package.json',
  'README.md',
  'index.js',
  'index.mjs',
  'index.d.ts',
  'bin/fieldcrypt.js',
  'lib/core/native.js',
  'lib/core/platform.js',
  'lib/mongoose/compat.js',
  'lib/cli/index.js',
  'scripts/build-addon.js',
  'build.rs',
  'Cargo.toml',
  'Cargo.lock',
  'src/lib.rs',
  'src/napi/mod.rs',
  // Cargo.toml declares this test target ([[test]] fork_ivs): without the
  // file, cargo cannot read the manifest, and the from-source build fails.
  'tests/fork_ivs.rs',
];

const NEVER = [
  /^__test__\//,
  /^test\//,
  /^tests\/(?!fork_ivs\.rs$)/,
  /^bench\//,
  /^fuzz\//,
  /^examples\//,
  /(^|\/)node_modules\//,
  /^target\//,
  /^\.cache\//,
  /^\.github\//,
  /^\.ci\//,
  /^npm\//,
  /^docs\//,
  /^src\/testdata\//,
  /^src\/(proptests|vectors)\.rs$/,
  /(^|\/)tests\.rs$/,
  /\.node$/,
  /^scripts\/(?!build-addon\.js$)/,
];

test('npm pack lists what users need and nothing else', (t) => {
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  const [pack] = JSON.parse(out);
  const files = pack.files.map((f) => f.path.split(path.sep).join('/'));
  for (const file of NEEDED) assert.ok(files.includes(file), `${file} is missing from the tarball`);
  for (const file of files) {
    const rule = NEVER.find((re) => re.test(file));
    assert.ok(!rule, `${file} is in the tarball (${rule})`);
  }
  t.diagnostic(
    `fieldcrypt tarball: ${(pack.size / 1024).toFixed(1)} KiB packed, ` +
      `${(pack.unpackedSize / 1024).toFixed(1)} KiB unpacked, ${pack.entryCount} files`,
  );
});
