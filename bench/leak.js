#!/usr/bin/env node
'use strict';

/**
 * `npm run bench:leak` (or `npm run bench -- leak`): 5 million
 * encrypt + decrypt calls of a 100-byte value through fieldcrypt (then the
 * same with encryptBuffer + decryptBuffer, when present), sampling RSS
 * (after global.gc(), so garbage JS strings do not count) every 500,000 calls.
 * A leak in the native addon shows as RSS that keeps growing; a healthy run
 * levels off after the first samples.
 *
 *   --calls=5000000 / BENCH_LEAK_CALLS    total calls
 *   --every=500000  / BENCH_LEAK_EVERY    sampling interval
 *   --no-yield                            never yield to the event loop (see check())
 *
 * Without --expose-gc it re-runs itself with the flag.
 */

const { spawnSync } = require('node:child_process');
const { KEY_HEX } = require('./impls');

const MB = 1024 * 1024;
const YIELD_EVERY = 10_000;
const turn = () => new Promise((resolve) => setImmediate(resolve));
const signed = (x) => `${x >= 0 ? '+' : ''}${x.toFixed(1)}`;

function options(argv = process.argv.slice(2), env = process.env) {
  const flags = {};
  for (const arg of argv) {
    const m = /^--([\w-]+)(?:=(.*))?$/.exec(arg);
    if (m) flags[m[1]] = m[2] === undefined ? true : m[2];
  }
  const quick = env.BENCH_QUICK && env.BENCH_QUICK !== '0';
  const calls = Number(flags.calls || env.BENCH_LEAK_CALLS || (quick ? 1_000_000 : 5_000_000));
  const every = Number(flags.every || env.BENCH_LEAK_EVERY || (quick ? 100_000 : 500_000));
  // --no-yield: never let the event loop turn (shows memory held by deferred finalizers).
  const yieldToLoop = !flags['no-yield'];
  return { calls, every, yieldToLoop };
}

function gc() {
  // Two passes: the first can leave objects with finalizers (napi
  // references) for the second.
  global.gc();
  global.gc();
}

/**
 * Runs `roundTrip(i)` `calls` times, printing RSS after gc every `every` calls.
 * It yields to the event loop every YIELD_EVERY calls, as a server does
 * between requests: Node runs some native finalizers (those of external
 * Buffers, for one) only when the loop turns, so a loop that never yields
 * holds on to memory that is not leaked.
 */
async function check(label, { calls, every, yieldToLoop }, roundTrip) {
  gc();
  const base = process.memoryUsage();
  const samples = [{ calls: 0, rss: base.rss, heap: base.heapUsed, external: base.external }];
  process.stdout.write(
    `\n${label}: ${calls.toLocaleString('en-US')} round trips of a 100-byte value, RSS after gc every ` +
      `${every.toLocaleString('en-US')}${yieldToLoop ? '' : ', never yielding to the event loop'}\n`,
  );
  process.stdout.write(
    `${'calls'.padStart(10)} ${'RSS MB'.padStart(9)} ${'vs start'.padStart(9)} ${'heap MB'.padStart(8)} ${'ext MB'.padStart(7)}\n`,
  );
  const line = (s) =>
    `${s.calls.toLocaleString('en-US').padStart(10)} ${(s.rss / MB).toFixed(1).padStart(9)} ` +
    `${signed((s.rss - base.rss) / MB).padStart(9)} ` +
    `${(s.heap / MB).toFixed(1).padStart(8)} ${(s.external / MB).toFixed(1).padStart(7)}\n`;
  process.stdout.write(line(samples[0]));

  const t0 = Date.now();
  let n = 0;
  while (n < calls) {
    const stop = Math.min(calls, n + every);
    for (; n < stop; n++) {
      if (!roundTrip(n)) throw new Error(`${label}: round trip failed at call ${n}`);
      if (yieldToLoop && n % YIELD_EVERY === YIELD_EVERY - 1) await turn();
    }
    if (yieldToLoop) await turn();
    gc();
    if (yieldToLoop) await turn();
    const mu = process.memoryUsage();
    const s = { calls: n, rss: mu.rss, heap: mu.heapUsed, external: mu.external };
    samples.push(s);
    process.stdout.write(line(s));
  }

  const first = samples[1];
  const last = samples[samples.length - 1];
  const total = (last.rss - base.rss) / MB;
  // Growth after the first sample: allocator pools and JIT code settle in the first interval.
  const steady = (last.rss - first.rss) / MB;
  const perMillion = last.calls > first.calls ? (steady / (last.calls - first.calls)) * 1e6 : 0;
  process.stdout.write(
    `RSS growth: ${signed(total)} MB overall; ${signed(steady)} MB from ` +
      `${first.calls.toLocaleString('en-US')} to ${last.calls.toLocaleString('en-US')} calls ` +
      `(${perMillion.toFixed(2)} MB per million calls) in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
  );
}

async function main() {
  if (typeof global.gc !== 'function') {
    const res = spawnSync(process.execPath, ['--expose-gc', __filename, ...process.argv.slice(2)], {
      stdio: 'inherit',
    });
    process.exitCode = res.status === null ? 1 : res.status;
    return;
  }
  const opts = options();
  const fc = require('..');
  fc.configureKeys({ '01': KEY_HEX });
  const value = 'x'.repeat(60) + ' a 100-byte value with some text: 0123456789'.slice(0, 40);
  if (value.length !== 100) throw new Error('value must be 100 bytes');

  await check('encrypt + decrypt', opts, () => fc.decrypt(fc.encrypt(value)) === value);
  // The Buffer API hands native memory to JS Buffers: check it too when present.
  if (typeof fc.encryptBuffer === 'function' && typeof fc.decryptBuffer === 'function') {
    const buf = Buffer.from(value);
    await check('encryptBuffer + decryptBuffer', opts, () => fc.decryptBuffer(fc.encryptBuffer(buf)).equals(buf));
  }
}

if (require.main === module) {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

module.exports = { main };
