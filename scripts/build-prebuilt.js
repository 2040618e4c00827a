#!/usr/bin/env node
'use strict';

/**
 * `npm run build:prebuilt [-- --target TRIPLE] [-- --out DIR]`: builds the
 * .node file(s) of a platform package with `napi build --platform --release`
 * (@napi-rs/cli), for the release workflow (.github/workflows/release.yml) and
 * for test/package/. The files go to DIR (default target/prebuilt/<platform>),
 * named as the platform package carries them (npm/<platform>/package.json).
 *
 * - Linux targets build with `cargo zigbuild` (napi build -x), which needs zig
 *   and cargo-zigbuild on PATH; glibc targets link against glibc 2.17
 *   (GLIBC_BASELINE), so that the addon loads on old distributions
 *   (test/package/glibc.test.js checks the symbols it needs).
 * - x86_64-unknown-linux-gnu also gets the accelerated build (x86-64-v3 with
 *   AES-NI and PCLMULQDQ) that lib/core/native.js picks on CPUs with those.
 *
 * The default target is this machine's (`rustc -vV`).
 */

const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { parseTriple } = require('@napi-rs/cli');
const { ACCELERATED, fileNames, root } = require('../lib/core/platform');

const GLIBC_BASELINE = '2.17';
const ACCELERATED_RUSTFLAGS = '-Ctarget-cpu=x86-64-v3 -Ctarget-feature=+aes,+pclmulqdq';

function hostTriple() {
  const out = spawnSync('rustc', ['-vV'], { encoding: 'utf8' });
  const m = /^host: (\S+)$/m.exec(out.stdout || '');
  if (!m) throw new Error('could not read the host target from `rustc -vV`');
  return m[1];
}

/** Runs `napi build` into a temp dir; returns the built .node file's path there. */
function napiBuild({ target, zig, targetDir, rustflags }) {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldcrypt-prebuilt-'));
  const napi = path.join(path.dirname(require.resolve('@napi-rs/cli/package.json')), 'dist', 'cli.js');
  const args = [napi, 'build', '--platform', '--release', '--no-js', '--target', target, '--output-dir', tmp];
  args.push('--target-dir', targetDir);
  if (zig) args.push('--cross-compile');
  const env = { ...process.env };
  if (rustflags) env.RUSTFLAGS = [process.env.RUSTFLAGS, rustflags].filter(Boolean).join(' ');
  console.log(`fieldcrypt: napi ${args.slice(1).join(' ')}${rustflags ? ` (RUSTFLAGS ${rustflags})` : ''}`);
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit', env });
  if (result.status !== 0) throw new Error(`napi build failed (exit ${result.status})`);
  return tmp;
}

function main() {
  const { values } = parseArgs({ options: { target: { type: 'string' }, out: { type: 'string' } } });
  const triple = values.target || hostTriple();
  const { platform, arch, abi, platformArchABI: key } = parseTriple(triple);
  const out = path.resolve(values.out || path.join(root, 'target', 'prebuilt', key));
  const names = fileNames(key);
  const zig = platform === 'linux';
  const target = abi === 'gnu' ? `${triple}.${GLIBC_BASELINE}` : triple;
  fs.mkdirSync(out, { recursive: true });

  const builds = [{ name: names.portable, targetDir: path.join(root, 'target', 'prebuilt') }];
  if (platform === 'linux' && arch === 'x64' && abi === 'gnu') {
    builds.push({
      name: names.accelerated,
      targetDir: path.join(root, 'target', `prebuilt-${ACCELERATED}`),
      rustflags: ACCELERATED_RUSTFLAGS,
    });
  }
  for (const build of builds) {
    const tmp = napiBuild({ target, zig, targetDir: build.targetDir, rustflags: build.rustflags });
    try {
      const dest = path.join(out, build.name);
      fs.copyFileSync(path.join(tmp, names.portable), dest);
      console.log(`fieldcrypt: wrote ${path.relative(process.cwd(), dest)} (${fs.statSync(dest).size} bytes)`);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  }
}

main();
