'use strict';

// Raw native functions with arguments whose accessors run JavaScript while
// the addon reads them. A batch's lengths (a Uint32Array) are read before
// its runs; a run read through an array accessor can detach the lengths'
// buffer (and a collection then frees it). The addon must have copied the
// lengths: it returns correct results, and the process does not crash. Run
// in a child process, so that a crash fails this test instead of the run.

const { test } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const path = require('node:path');
const { randomKeyHex } = require('./helpers');

const CHILD = `
const fieldcrypt = require(${JSON.stringify(path.join(__dirname, '..'))});
const native = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'core', 'native'))}).load();
fieldcrypt.encrypt('load the key'); // keys load on first use, in JS
const values = Array.from({ length: 300000 }, (_, i) => 'v' + (i % 10));
const lens = new Uint32Array(values.map((v) => v.length));
let detached = false;
const runs = [values.join('')];
Object.defineProperty(runs, 0, {
  get() {
    // Detach the lengths' buffer and let a collection free it.
    structuredClone(lens.buffer, { transfer: [lens.buffer] });
    global.gc();
    detached = lens.length === 0;
    return values.join('');
  },
});
const segments = native.encryptJoined(runs, lens, '01');
if (!Array.isArray(segments)) {
  // The addon read the lengths after they were freed and could not split the batch.
  process.stdout.write(JSON.stringify({ detached, ok: false, result: typeof segments }));
  process.exit(0);
}
const out = [];
for (const [joined, ends] of segments) {
  let from = 0;
  for (const end of ends) { out.push(joined.slice(from, end)); from = end; }
}
const ok = out.length === values.length && out.every((s, i) => fieldcrypt.decrypt(s) === values[i]);
process.stdout.write(JSON.stringify({ detached, ok }));
`;

test('encryptJoined copies its lengths before an accessor of its runs can detach them', () => {
  const child = spawnSync(process.execPath, ['--expose-gc', '-e', CHILD], {
    env: { ...process.env, ENCRYPTION_KEY: randomKeyHex() },
    encoding: 'utf8',
  });
  assert.equal(child.signal, null, `the child was killed by ${child.signal}: ${child.stderr}`);
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(JSON.parse(child.stdout), { detached: true, ok: true });
});
