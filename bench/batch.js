'use strict';

/**
 * fieldcrypt's batch APIs, when the package has them (each is detected with
 * `typeof fc.x === 'function'` and probed before use; absent or differently
 * shaped ones are skipped with a note):
 *
 *  - sync batches: encryptMany(values) / decryptMany(values) against a JS
 *    loop over encrypt()/decrypt() and a node:crypto loop, in interleaved
 *    rounds (values/s), on batches of `batchSize` values of 100 B and 1 KiB
 *    and of SYNC_LONG_VALUES values of 64 KiB;
 *  - async batches: encryptManyAsync / decryptManyAsync on `asyncValues`
 *    values, against the sync batch of the same values, alternating which
 *    goes first: throughput (values/s) and event-loop responsiveness, the
 *    max delay seen by perf_hooks.monitorEventLoopDelay during the call;
 *    then the same in blocks of calls back to back (backToBack), and what
 *    the event loop's longest gaps were made of (stallPass).
 *
 * encryptBuffer/decryptBuffer, when present, are benchmarked as their own
 * implementation in the main table (impls.js, "fieldcrypt (Buffer)").
 */

const { monitorEventLoopDelay, PerformanceObserver, performance, constants } = require('node:perf_hooks');
const { runCase, ratio, summarize } = require('./runner');
const { SIZES } = require('./config');

const BATCH_APIS = [
  'encryptMany',
  'decryptMany',
  'encryptManyAsync',
  'decryptManyAsync',
  'encryptBuffer',
  'decryptBuffer',
];
const VALUE_BYTES = 100;
/** Value sizes of the sync comparison (the async one uses VALUE_BYTES). */
const SYNC_SIZES = [SIZES[100], SIZES['1k'], SIZES['64k']];
/** Values per sync batch of the largest size (6.5 MB of text), instead of `batchSize`. */
const SYNC_LONG_VALUES = 100;

/** `n` distinct printable values of `bytes` bytes (100 by default). */
function values(n, bytes = VALUE_BYTES) {
  const out = new Array(n);
  const pad = 'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(Math.ceil(bytes / 36) + 1);
  for (let i = 0; i < n; i++) {
    const id = `value #${i} `;
    out[i] = id + pad.slice(0, bytes - id.length);
  }
  return out;
}

/** Checks that a batch call returned the right values; returns a problem or null. */
function checkBatch(kind, input, output, fc) {
  if (!Array.isArray(output)) return `${kind} did not return an array`;
  if (output.length !== input.length) return `${kind} returned ${output.length} values for ${input.length}`;
  for (const i of [0, input.length >> 1, input.length - 1]) {
    const back = kind.startsWith('encrypt') ? fc.decrypt(output[i]) : output[i];
    const want = kind.startsWith('encrypt') ? input[i] : fc.decrypt(input[i]);
    if (back !== want) return `${kind} result ${i} does not match`;
  }
  return null;
}

async function probe(fc, name) {
  const plain = ['a', '', 'é€😀', 'x'.repeat(300)];
  try {
    const input = name.startsWith('encrypt') ? plain : plain.map((p) => fc.encrypt(p));
    let out = fc[name](input);
    if (name.endsWith('Async')) {
      if (!out || typeof out.then !== 'function') return `${name} did not return a promise`;
      out = await out;
    }
    return checkBatch(name, input, out, fc);
  } catch (err) {
    return `${name}(values) threw ${err && err.code ? `${err.code}: ` : ''}${err && err.message}`;
  }
}

/**
 * The JS thread's scheduler counts so far, in ms (Linux: /proc, to the
 * nanosecond): [time on a core, time runnable but waiting for one], or null
 * where they cannot be read.
 */
function jsThreadSched() {
  try {
    const [run, wait] = require('node:fs').readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ');
    return [Number(run) / 1e6, Number(wait) / 1e6];
  } catch {
    return null;
  }
}

/** CPU time of the JS thread so far, in ms, or null where that cannot be read. */
function jsThreadMs() {
  const s = jsThreadSched();
  return s === null ? null : s[0];
}

/**
 * Runs `call` once; returns its wall time, the max event-loop delay
 * meanwhile, the CPU time the whole process used meanwhile (every thread:
 * JS, libuv pool, V8's collector threads) and the JS thread alone (null if
 * unknown), and when it ran, in performance.now() milliseconds (to match it
 * with V8's full collections).
 */
async function timeWithLoopDelay(call) {
  const h = monitorEventLoopDelay({ resolution: 1 });
  h.enable();
  await new Promise((resolve) => setTimeout(resolve, 5));
  const cpu0 = process.cpuUsage();
  const js0 = jsThreadMs();
  const from = performance.now();
  const start = process.hrtime.bigint();
  const out = await call();
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  const to = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const js1 = jsThreadMs();
  // A blocked loop is recorded when the monitor's timer finally runs.
  await new Promise((resolve) => setTimeout(resolve, 5));
  h.disable();
  const jsMs = js0 === null || js1 === null ? null : js1 - js0;
  return { secs, maxDelayMs: h.max / 1e6, cpuMs: (cpu.user + cpu.system) / 1000, jsMs, from, to, out };
}

/**
 * Records V8's collection pauses on the JS thread, as perf_hooks reports
 * them: `majorsIn` counts the full (mark-compact) collections that overlap a
 * span, `pauseMsIn` sums the time of every pause inside it.
 */
function watchGcs() {
  const seen = [];
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) seen.push([e.startTime, e.startTime + e.duration, e.detail && e.detail.kind]);
  });
  obs.observe({ entryTypes: ['gc'] });
  return {
    majorsIn: (from, to) =>
      seen.filter(([s, e, kind]) => kind === constants.NODE_PERFORMANCE_GC_MAJOR && e >= from && s <= to).length,
    pauseMsIn: (from, to) => seen.reduce((ms, [s, e]) => ms + Math.max(0, Math.min(e, to) - Math.max(s, from)), 0),
    stop: () => obs.disconnect(),
  };
}

/**
 * The sync and the async batch of `op` on `input`, `rounds` recorded rounds
 * after one unrecorded warm-up, the two alternating which goes first. Each
 * sample is `calls` calls back to back; per call: values/s, wall and CPU
 * time (all threads, and the JS thread alone where known), and the rounds
 * in which V8 ran a full collection; the max event-loop delay is over the
 * sample.
 */
async function alternate(fc, op, input, rounds, calls) {
  const names = [`${op}Many`, `${op}ManyAsync`];
  const rows = Object.fromEntries(
    names.map((name) => [name, { rate: [], delay: [], ms: [], cpuMs: [], jsMs: [], spans: [] }]),
  );
  const gcs = watchGcs();
  for (let r = 0; r < rounds + 1; r++) {
    for (const name of r % 2 ? [...names].reverse() : names) {
      const { secs, maxDelayMs, cpuMs, jsMs, from, to, out } = await timeWithLoopDelay(async () => {
        let last;
        for (let k = 0; k < calls; k++) last = await fc[name](input);
        return last;
      });
      const problem = checkBatch(name, input, out, fc);
      if (problem) throw new Error(problem);
      if (r > 0) {
        const row = rows[name];
        row.rate.push((input.length * calls) / secs);
        row.delay.push(maxDelayMs);
        row.ms.push((secs * 1000) / calls);
        row.cpuMs.push(cpuMs / calls);
        if (jsMs !== null) row.jsMs.push(jsMs / calls);
        row.spans.push([from, to]);
      }
    }
  }
  // perf_hooks delivers GC entries after the fact.
  await new Promise((resolve) => setTimeout(resolve, 20));
  gcs.stop();
  const summary = (row) => ({
    rate: summarize(row.rate),
    delay: summarize(row.delay),
    ms: summarize(row.ms),
    cpuMs: summarize(row.cpuMs),
    jsMs: row.jsMs.length === row.ms.length ? summarize(row.jsMs) : null,
    // Rounds during which V8 ran at least one full collection.
    withMajorGc: row.spans.filter(([from, to]) => gcs.majorsIn(from, to) > 0).length,
  });
  const sync = summary(rows[names[0]]);
  const async_ = summary(rows[names[1]]);
  return { syncName: names[0], asyncName: names[1], sync, async: async_, ratio: ratio(async_.rate, sync.rate) };
}

/** Single calls: throughput, event-loop delay, and the bound CPU time sets. */
async function asyncVsSync(fc, op, opts, input, log) {
  const { syncName, asyncName, sync, async: async_, ratio: r } = await alternate(fc, op, input, opts.asyncRounds, 1);
  // On `cores` cores a call takes at least its CPU time / cores: the async
  // batch can be at most this many times faster than the sync batch, round
  // by round, even with every core busy with it throughout.
  const cores = require('node:os').availableParallelism();
  const perRound = summarize(sync.ms.samples.map((ms, i) => (ms * cores) / async_.cpuMs.samples[i]));
  const bound = { value: perRound.median, min: perRound.min, max: perRound.max, samples: perRound.samples };
  const res = { op, n: input.length, syncName, asyncName, sync, async: async_, ratio: r, cores, bound };
  log(
    `  ${asyncName} x${input.length}: ${Math.round(async_.rate.median)} values/s (sync ${Math.round(sync.rate.median)}), ` +
      `max loop delay ${async_.delay.max.toFixed(1)} ms (sync ${sync.delay.median.toFixed(0)} ms), ` +
      `CPU ${async_.cpuMs.median.toFixed(1)} ms (sync ${sync.cpuMs.median.toFixed(1)} ms), bound ${bound.value.toFixed(2)}x`,
  );
  return res;
}

/** Calls in a row per sample of the back-to-back comparison. */
const IN_A_ROW = 5;

/**
 * Steady state: blocks of IN_A_ROW calls back to back. A single call can
 * leave the collection its results set off to whatever runs next (a sync
 * call, which never yields, leaves it to the pause after it); in a block
 * every call but the last pays for the one before it, as in a process that
 * does nothing else.
 */
async function backToBack(fc, op, input, rounds, log) {
  const { asyncName, sync, async: async_, ratio: r } = await alternate(fc, op, input, rounds, IN_A_ROW);
  // At CPU parity: an async batch that used no more CPU time than the sync
  // batch would, on `cores` cores, still take at least that time / cores, so
  // it could be at most this many times faster, block by block. Only in
  // steady state: a single sync call leaves part of the collections it sets
  // off to the pause after it, outside its time.
  const cores = require('node:os').availableParallelism();
  const parity = summarize(sync.ms.samples.map((ms, i) => (ms * cores) / sync.cpuMs.samples[i]));
  log(
    `  ${asyncName} x${input.length}, ${IN_A_ROW} in a row: ${async_.ms.median.toFixed(1)} ms per call (sync ${sync.ms.median.toFixed(1)}), ` +
      `CPU ${async_.cpuMs.median.toFixed(1)} ms (sync ${sync.cpuMs.median.toFixed(1)}), max loop delay ${async_.delay.max.toFixed(1)} ms, ` +
      `at CPU parity at most ${parity.median.toFixed(2)}x`,
  );
  return {
    inARow: IN_A_ROW,
    rounds,
    sync,
    async: async_,
    ratio: r,
    cores,
    parity: { value: parity.median, min: parity.min, max: parity.max },
  };
}

/** Event-loop gaps at least this long are stalls (the delay target is under 10 ms). */
const STALL_MS = 10;
/** Rounds of the stall pass: a single call and a block of IN_A_ROW calls, in turn. */
const STALL_ROUNDS = 8;

/**
 * What the event loop's longest gaps during async calls were made of, in a
 * pass of its own after the timed ones (its 1 ms timer reads /proc on every
 * tick). For each gap of STALL_MS or more between two ticks: how long the JS
 * thread was runnable but waiting for a core (the scheduler's count), and how
 * much of it V8 spent in collection pauses on that thread (perf_hooks GC
 * entries). The two can overlap: a pause whose thread waits for a core
 * counts in both. Linux only (null elsewhere).
 */
async function stallPass(fc, name, input) {
  if (jsThreadSched() === null) return null;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const gcs = watchGcs();
  const gaps = [];
  let on = false;
  let last = performance.now();
  let lastWait = jsThreadSched()[1];
  const tick = () => {
    const now = performance.now();
    const wait = jsThreadSched()[1];
    if (on && now - last >= STALL_MS) gaps.push({ from: last, to: now, waitMs: wait - lastWait });
    last = now;
    lastWait = wait;
  };
  const timer = setInterval(tick, 1);
  let calls = 0;
  for (let r = 0; r < STALL_ROUNDS; r++) {
    await sleep(5);
    tick();
    on = true;
    for (let k = 0; k < (r % 2 ? IN_A_ROW : 1); k++, calls++) await fc[name](input);
    // The gap the last call leaves ends at the next tick.
    await sleep(2);
    on = false;
  }
  clearInterval(timer);
  await sleep(20); // perf_hooks delivers GC entries after the fact
  gcs.stop();
  const stalls = gaps.map((g) => ({ ms: g.to - g.from, waitMs: g.waitMs, gcMs: gcs.pauseMsIn(g.from, g.to) }));
  const sum = (key) => stalls.reduce((t, g) => t + g[key], 0);
  const worst = stalls.reduce((w, g) => (w === null || g.ms > w.ms ? g : w), null);
  return {
    rounds: STALL_ROUNDS,
    inARow: IN_A_ROW,
    calls,
    thresholdMs: STALL_MS,
    count: stalls.length,
    ms: sum('ms'),
    waitMs: sum('waitMs'),
    gcMs: sum('gcMs'),
    worst,
  };
}

async function run(fc, impls, opts, log) {
  const present = BATCH_APIS.filter((name) => typeof fc[name] === 'function');
  const result = { present, notes: [], sync: [], async: [] };
  if (!present.some((n) => n.includes('Many'))) {
    result.notes.push(
      'fieldcrypt has no encryptMany/decryptMany/encryptManyAsync/decryptManyAsync yet: batch section skipped.',
    );
    log(`batch: ${result.notes[0]}`);
    return result;
  }
  const usable = new Set();
  for (const name of present.filter((n) => n.includes('Many'))) {
    const problem = await probe(fc, name);
    if (problem) result.notes.push(`${name} skipped: ${problem}`);
    else usable.add(name);
  }
  for (const n of result.notes) log(`batch: ${n}`);

  const node = impls.find((i) => i.id === 'node');
  for (const { bytes, label: size } of SYNC_SIZES) {
    const batchSize = bytes > 4096 ? SYNC_LONG_VALUES : opts.batchSize;
    log(`batch: sync batches of ${batchSize} x ${size}`);
    const plain = values(batchSize, bytes);
    const stored = plain.map((v) => fc.encrypt(v));
    for (const op of ['encrypt', 'decrypt']) {
      const name = `${op}Many`;
      if (!usable.has(name)) continue;
      const input = op === 'encrypt' ? plain : stored;
      const entrants = [
        { id: name, fn: () => fc[name](input) },
        { id: `${op} loop`, fn: () => input.map((v) => fc[op](v)) },
      ];
      if (node) {
        const nodeInput = op === 'encrypt' ? plain : plain.map((v) => node.encrypt(v));
        entrants.push({ id: `node:crypto ${op} loop`, fn: () => nodeInput.map((v) => node[op](v)) });
      }
      const results = runCase(entrants, { rounds: opts.rounds, sliceMs: opts.sliceMs * 2, warmupMs: opts.warmupMs });
      const many = results.get(name);
      const ratios = {};
      for (const e of entrants.slice(1)) ratios[e.id] = ratio(many, results.get(e.id));
      result.sync.push({ op, name, batchSize, valueBytes: bytes, size, results, ratios });
      log(
        `  ${name}: ` +
          entrants.map((e) => `${e.id} ${Math.round(results.get(e.id).median * batchSize)} values/s`).join(', '),
      );
    }
  }

  const big = values(opts.asyncValues);
  const bigStored = usable.has('decryptManyAsync') ? big.map((v) => fc.encrypt(v)) : null;
  for (const op of ['encrypt', 'decrypt']) {
    if (!usable.has(`${op}ManyAsync`) || !usable.has(`${op}Many`)) {
      if (usable.has(`${op}ManyAsync`))
        result.notes.push(`${op}ManyAsync measured without a ${op}Many baseline: none present`);
      continue;
    }
    log(`batch: ${op}ManyAsync vs ${op}Many, ${opts.asyncValues} values, ${opts.asyncRounds} rounds`);
    const input = op === 'encrypt' ? big : bigStored;
    const res = await asyncVsSync(fc, op, opts, input, log);
    res.inARow = await backToBack(fc, op, input, Math.ceil(opts.asyncRounds / 2), log);
    res.stalls = await stallPass(fc, `${op}ManyAsync`, input);
    if (res.stalls) {
      const st = res.stalls;
      log(
        `  ${op}ManyAsync stalls of ${st.thresholdMs} ms or more in ${st.calls} calls: ${st.count}, ${st.ms.toFixed(1)} ms in all, ` +
          `${st.waitMs.toFixed(1)} ms waiting for a core, ${st.gcMs.toFixed(1)} ms in V8 pauses`,
      );
    }
    result.async.push(res);
  }
  return result;
}

module.exports = { run, values, BATCH_APIS, SYNC_SIZES };
