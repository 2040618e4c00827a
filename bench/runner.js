'use strict';

/**
 * The interleaved-rounds runner.
 *
 * Shared machines drift: a neighbour's job can slow everything down for a few
 * seconds. Comparing implementations measured minutes apart then compares
 * the machine's moods, not the code. So for one case (an operation at one
 * size) every implementation runs once per round, with the order rotated
 * each round, and each round yields one ops/s sample per implementation.
 * We report the median of the rounds and their min–max, and compare
 * implementations by the ratio of their medians. Each round's samples are
 * taken seconds apart at most, so the per-round ratios are reported too.
 *
 *   1. warm up each implementation for `warmupMs` (JIT, allocator, caches),
 *      and calibrate how many calls fill one slice of `sliceMs`;
 *   2. `rounds` rounds: each implementation runs its calibrated number of
 *      calls once, timed with process.hrtime.bigint().
 *
 * The call count is fixed per implementation after calibration (rather than
 * reading the clock after every call), so timing overhead is negligible even
 * for 10-byte values.
 */

const now = () => process.hrtime.bigint();

/** Keeps results alive so no call can be optimised away. */
let sink = 0;

function timeCalls(fn, calls) {
  const start = now();
  for (let i = 0; i < calls; i++) sink += fn(i).length;
  return Number(now() - start) / 1e9;
}

/**
 * Runs `fn` for about `ms` milliseconds (at least `minCalls` calls); returns
 * the number of calls that fit in `sliceMs`, at least `minCalls`.
 */
function warmUpAndCalibrate(fn, ms, sliceMs, minCalls) {
  let calls = 1;
  let spent = 0;
  let total = 0;
  let rate = 0;
  // Double the batch until one batch takes a measurable time, then keep
  // going until the warm-up budget is spent; the last batch sets the rate.
  while (spent * 1000 < ms || total < minCalls) {
    const s = timeCalls(fn, calls);
    spent += s;
    total += calls;
    if (s > 0) rate = calls / s;
    if (s * 1000 < Math.min(10, sliceMs / 4)) calls *= 2;
  }
  return Math.max(minCalls, Math.round((rate * sliceMs) / 1000));
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function summarize(samples) {
  return { median: median(samples), min: Math.min(...samples), max: Math.max(...samples), samples };
}

/**
 * Measures one case.
 *
 * @param {Array<{id: string, fn: (i: number) => {length: number}}>} entrants
 *   one timed function per implementation; `fn(i)` does one operation (the
 *   i-th call) and returns something with a length.
 * @param {{rounds: number, sliceMs: number, warmupMs: number, minCalls?: number}} opts
 * @returns {Map<string, {median, min, max, samples: number[], calls: number}>}
 *   ops/s per implementation; `samples[r]` is round r.
 */
function runCase(entrants, opts) {
  const { rounds, sliceMs, warmupMs, minCalls = 3 } = opts;
  const calls = new Map();
  for (const e of entrants) calls.set(e.id, warmUpAndCalibrate(e.fn, warmupMs, sliceMs, minCalls));

  const samples = new Map(entrants.map((e) => [e.id, []]));
  for (let r = 0; r < rounds; r++) {
    for (let k = 0; k < entrants.length; k++) {
      const e = entrants[(r + k) % entrants.length];
      const n = calls.get(e.id);
      samples.get(e.id).push(n / timeCalls(e.fn, n));
    }
  }

  const out = new Map();
  for (const e of entrants) out.set(e.id, { ...summarize(samples.get(e.id)), calls: calls.get(e.id) });
  return out;
}

/** ratio of medians a/b, with the min–max of the per-round ratios a[r]/b[r]. */
function ratio(a, b) {
  const perRound = a.samples.map((x, r) => x / b.samples[r]);
  return { value: a.median / b.median, min: Math.min(...perRound), max: Math.max(...perRound) };
}

module.exports = { runCase, ratio, median, summarize, getSink: () => sink };
