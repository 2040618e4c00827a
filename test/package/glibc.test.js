'use strict';

// The prebuilt Linux glibc addons (scripts/build-prebuilt.js: `napi build -x`,
// cargo-zigbuild, glibc 2.17) need no glibc symbol newer than the baseline, so
// that they load on old distributions. A build linked against this machine's
// glibc would not pass this (its figures are printed for comparison).

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const platform = require('../../lib/core/platform');
const native = require('../../lib/core/native');
const { buildPrebuilt } = require('./tools');

const BASELINE = [2, 17];
const key = platform.platformKey();

/** The GLIBC_x.y[.z] versions a shared object's dynamic symbols require, newest first. */
function glibcVersions(file) {
  const out = execFileSync('objdump', ['-T', file], { encoding: 'utf8', maxBuffer: 16 << 20 });
  const versions = new Set(out.match(/\bGLIBC_\d+(?:\.\d+)+/g) || []);
  const parse = (v) => v.slice('GLIBC_'.length).split('.').map(Number);
  return [...versions].map(parse).sort(compare).reverse();
}

function compare(a, b) {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    if ((a[i] || 0) !== (b[i] || 0)) return (a[i] || 0) - (b[i] || 0);
  }
  return 0;
}

test(
  `the prebuilt ${key} addons need glibc ${BASELINE.join('.')} at most`,
  { skip: key !== 'linux-x64-gnu' && 'built and checked on x86-64 Linux with glibc' },
  (t) => {
    const files = buildPrebuilt(key);
    assert.deepEqual(
      files.map((f) => f.slice(f.lastIndexOf('/') + 1)).sort(),
      [native.fileName, native.acceleratedFileName].sort(),
    );
    for (const file of files) {
      const versions = glibcVersions(file);
      assert.ok(versions.length > 0, `${file}: objdump -T found no GLIBC_ versions (not a glibc build?)`);
      t.diagnostic(`${file}: needs GLIBC_${versions[0].join('.')} (${fs.statSync(file).size} bytes)`);
      assert.ok(
        compare(versions[0], BASELINE) <= 0,
        `${file} needs GLIBC_${versions[0].join('.')}, newer than ${BASELINE.join('.')}`,
      );
    }
    if (fs.existsSync(native.addonPath)) {
      t.diagnostic(`for comparison, the local cargo build needs GLIBC_${glibcVersions(native.addonPath)[0].join('.')}`);
    }
  },
);
