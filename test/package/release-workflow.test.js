'use strict';

// .github/workflows/release.yml cannot run here: actionlint (from the Go
// module proxy, see ./tools.js) checks its syntax, expressions, job needs and
// action inputs, and this test checks that its matrix covers every platform
// package and that it builds and publishes them as package.json says.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { ROOT, ensureActionlint } = require('./tools');

const WORKFLOW = path.join('.github', 'workflows', 'release.yml');
const text = fs.readFileSync(path.join(ROOT, WORKFLOW), 'utf8');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

test('actionlint finds nothing in the release workflow', () => {
  const actionlint = ensureActionlint();
  const r = spawnSync(actionlint, ['-no-color', WORKFLOW], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
});

test('the release builds and tests every target of package.json napi.targets', () => {
  const build = text.slice(text.indexOf('\n  build:'), text.indexOf('\n  test-macos-windows:'));
  const built = [...build.matchAll(/^\s+target: (\S+)$/gm)].map((m) => m[1]);
  assert.deepEqual(built.sort(), [...pkg.napi.targets].sort());
  const tests = text.slice(text.indexOf('\n  test-macos-windows:'), text.indexOf('\n  publish:'));
  for (const target of pkg.napi.targets) assert.ok(tests.includes(target), `no test job for ${target}`);
});

test('it builds with the scripts package.json defines and publishes through napi pre-publish', () => {
  assert.match(text, /npm run build:prebuilt -- --target \$\{\{ matrix\.settings\.target \}\}/);
  assert.equal(pkg.scripts['build:prebuilt'], 'node scripts/build-prebuilt.js');
  assert.match(text, /npm run artifacts/);
  assert.equal(pkg.scripts.artifacts, 'napi artifacts');
  assert.equal(pkg.scripts.prepublishOnly, 'napi pre-publish -t npm --no-gh-release');
  assert.match(text, /npm publish --access public/);
});
