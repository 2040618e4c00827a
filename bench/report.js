'use strict';

/**
 * Reporting: the stdout table, RESULTS.md, results.json and chart.svg (a
 * hand-written SVG line chart, log-log, one panel per operation).
 */

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { ratio } = require('./runner');

const OP_TITLES = { encrypt: 'encrypt', decrypt: 'decrypt', roundtrip: 'round trip (encrypt + decrypt)' };
const OP_SHORT = { encrypt: 'encrypt', decrypt: 'decrypt', roundtrip: 'round trip' };

// ---------------------------------------------------------------- formatting

/** 1234567 -> "1.23M", 45678 -> "45.7k", 123.4 -> "123". */
function fmtRate(x) {
  if (!Number.isFinite(x)) return '-';
  if (x >= 1e6) return `${(x / 1e6).toFixed(x >= 1e7 ? 1 : 2)}M`;
  if (x >= 1e3) return `${(x / 1e3).toFixed(x >= 1e5 ? 0 : x >= 1e4 ? 1 : 2)}k`;
  if (x >= 10) return x.toFixed(0);
  return x.toFixed(1);
}

function fmtRatio(r) {
  return `${r.value.toFixed(2)}×`;
}

function fmtRatioRange(r) {
  return `${r.value.toFixed(2)}× (${r.min.toFixed(2)}–${r.max.toFixed(2)})`;
}

function pad(s, n, right) {
  s = String(s);
  return right ? s.padStart(n) : s.padEnd(n);
}

// ---------------------------------------------------------------- machine

function cpuModel() {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    // not Linux
  }
  const cpus = os.cpus();
  return cpus.length ? cpus[0].model : 'unknown';
}

function machineInfo() {
  return {
    cpu: cpuModel(),
    cores: os.cpus().length,
    availableParallelism: typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length,
    memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    v8: process.versions.v8,
    openssl: process.versions.openssl,
    loadavg: os.loadavg().map((x) => +x.toFixed(2)),
  };
}

// ---------------------------------------------------------------- stdout

/** One progress line: medians and fieldcrypt's ratios. */
function caseLine(c, impls) {
  const parts = impls.map((i) => `${i.id} ${fmtRate(c.results.get(i.id).median)}`);
  const ratios = Object.entries(c.ratios).map(([id, r]) => `fc/${id} ${fmtRatio(r)}`);
  return `${parts.join('  ')}   ${ratios.join(' ')}`;
}

function textTables(run) {
  const { impls, cases, opts } = run;
  const others = impls.filter((i) => i.id !== 'fieldcrypt');
  const hasFc = impls.some((i) => i.id === 'fieldcrypt');
  const colW = 24;
  let out = '';
  for (const op of opts.ops) {
    const rows = cases.filter((c) => c.op === op);
    if (!rows.length) continue;
    out += `\n${OP_TITLES[op]}: ops/s, median of ${opts.rounds} rounds [min–max]\n`;
    let head = pad('size', 12) + impls.map((i) => pad(i.label.slice(0, colW - 2), colW)).join('');
    if (hasFc) head += others.map((o) => pad(`fc÷${o.id}`, 10, true)).join('');
    out += `${head}\n${'-'.repeat(head.length)}\n`;
    for (const c of rows) {
      let line = pad(c.size.label, 12);
      for (const i of impls) {
        const r = c.results.get(i.id);
        line += pad(`${fmtRate(r.median)} [${fmtRate(r.min)}–${fmtRate(r.max)}]`, colW);
      }
      if (hasFc) line += others.map((o) => pad(fmtRatio(c.ratios[o.id]), 10, true)).join('');
      out += `${line}\n`;
    }
  }
  if (run.batch) out += textBatch(run.batch);
  if (run.ivCosts) out += `\n${ivCostsLines(run.ivCosts).join('\n')}\n`;
  if (run.index) out += `\n${indexLines(run.index).join('\n')}\n`;
  return out;
}

/** Blind index values per second next to encrypts per second (see bench/index.js indexValues). */
function indexLines(ix) {
  const rate = (r, per = 1) => `${fmtRate(r.median * per)} (${fmtRate(r.min * per)}-${fmtRate(r.max * per)})`;
  const line = (name, results, per) =>
    `  ${name}: ${['fc-index', 'node-index', 'fc-encrypt', 'node-encrypt']
      .map((id) => `${id} ${rate(results.get(id), per)}`)
      .join(', ')}`;
  const fcOverNode = (results) => fmtRatio(ratio(results.get('fc-index'), results.get('node-index')));
  return [
    `Blind index values vs encrypts, values/s, ${ix.valueLength}-character values, median (min-max) of rounds:`,
    line('one value per call', ix.single, 1),
    line(`batches of ${ix.batchSize} (blindIndexMany, encryptMany; node:crypto in a loop)`, ix.batch, ix.batchSize),
    `  fieldcrypt index values over node:crypto HMAC with the same derivation: ${fcOverNode(ix.single)} single, ${fcOverNode(ix.batch)} batched`,
  ];
}

/** What a 16-byte IV costs from each source (see bench/index.js ivCosts). */
function ivCostsLines(iv) {
  const ns = (x) => `${x.toFixed(1)} ns`;
  return [
    `IV sources, ns per IV (median of ${iv.rounds} rounds of ${iv.count.toLocaleString('en-US')}):`,
    `  OS generator, pooled per thread, fork-safe (what fieldcrypt uses): ${ns(iv.pool)}`,
    `  OS generator, one call per IV: ${ns(iv.osEach)}`,
    `  user-space ChaCha (rand::rng(), not fork-safe; the source before): ${ns(iv.userSpace)}`,
    `  cost of fork-safe OS IVs over user-space ChaCha: +${ns(iv.pool - iv.userSpace)} per encryption`,
  ];
}

function textBatch(b) {
  let out = '\nbatch APIs\n';
  for (const n of b.notes) out += `  ${n}\n`;
  for (const s of b.sync) {
    out += `  ${s.name}, batches of ${s.batchSize} x ${s.size || '100 B'}: `;
    out += [...s.results].map(([id, r]) => `${id} ${fmtRate(r.median * s.batchSize)} values/s`).join(', ');
    out += `; ${s.name} ÷ ${Object.entries(s.ratios)
      .map(([id, r]) => `${id} ${fmtRatio(r)}`)
      .join(', ')}\n`;
  }
  for (const a of b.async) {
    out +=
      `  ${a.asyncName} x${a.n}: ${fmtRate(a.async.rate.median)} values/s = ${fmtRatio(a.ratio)} of ${a.syncName}; ` +
      `max event-loop delay ${a.async.delay.max.toFixed(1)} ms (median ${a.async.delay.median.toFixed(1)}) ` +
      `vs ${a.sync.delay.median.toFixed(0)} ms for ${a.syncName}` +
      (a.bound ? `; ${a.cores}-core bound ${fmtRatioRange(a.bound)}` : '') +
      '\n';
    if (a.inARow) {
      const t = a.inARow;
      out +=
        `  ${a.asyncName} x${a.n}, ${t.inARow} in a row: ${t.async.ms.median.toFixed(1)} ms per call = ${fmtRatio(t.ratio)} of ${a.syncName} ` +
        `(${t.sync.ms.median.toFixed(1)} ms); CPU ${t.async.cpuMs.median.toFixed(1)} vs ${t.sync.cpuMs.median.toFixed(1)} ms; ` +
        `max event-loop delay ${t.async.delay.max.toFixed(1)} ms (median ${t.async.delay.median.toFixed(1)})` +
        (t.parity ? `; at CPU parity at most ${fmtRatioRange(t.parity)}` : '') +
        '\n';
    }
    if (a.stalls) {
      const st = a.stalls;
      out +=
        `  ${a.asyncName} stalls of ${st.thresholdMs} ms or more in ${st.calls} calls: ${st.count} (${st.ms.toFixed(1)} ms), ` +
        `waiting for a core ${st.waitMs.toFixed(1)} ms, in V8 pauses ${st.gcMs.toFixed(1)} ms\n`;
    }
  }
  return out;
}

// ---------------------------------------------------------------- RESULTS.md

function mdTable(header, rows, align) {
  const a = align || header.map((_, i) => (i === 0 ? ':--' : '--:'));
  return [`| ${header.join(' | ')} |`, `| ${a.join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function markdown(run) {
  const { impls, cases, opts, machine: m } = run;
  const others = impls.filter((i) => i.id !== 'fieldcrypt');
  const hasFc = impls.some((i) => i.id === 'fieldcrypt');
  const hasNode = impls.some((i) => i.id === 'node');
  const lines = [];
  const add = (...xs) => lines.push(...xs);

  add('# fieldcrypt benchmark results', '');
  add(
    `Generated by \`npm run bench\`${opts.quick ? ' (BENCH_QUICK=1: a smoke run, not for quoting)' : ''}` +
      ` on ${run.started.toISOString().replace(/\.\d+Z$/, 'Z')}, in ${run.seconds.toFixed(0)} s.`,
    '',
  );
  add(
    'The machine is shared and noisy, so these are **ratios measured side by side in one process**, not',
    'absolute speeds: compare the columns of one row, not numbers across machines or runs.',
    '',
  );

  add('## Machine', '');
  add(
    mdTable(
      ['', ''],
      [
        ['CPU', m.cpu],
        ['cores', `${m.cores} (available parallelism ${m.availableParallelism})`],
        ['memory', `${m.memGiB} GiB`],
        ['OS', m.os],
        ['Node', `${m.node} (V8 ${m.v8}, OpenSSL ${m.openssl})`],
        ['load average (1, 5, 15 min) at start; at end', `${run.loadStart.join(', ')}; ${m.loadavg.join(', ')}`],
      ],
      [':--', ':--'],
    ),
    '',
  );

  add('## Implementations', '');
  add(
    mdTable(
      ['short name', 'implementation', 'version', 'what is timed'],
      impls.map((i) => [i.short, i.label, i.version, i.note]),
      [':--', ':--', ':--', ':--'],
    ),
    '',
  );
  if (run.skipped.length) {
    add('Left out: ' + run.skipped.map((s) => `${s.id} (${s.reason})`).join('; ') + '.', '');
  }
  add(
    'Every implementation is probed first (round trips of empty, ASCII, multi-byte and 5,000-character',
    "values; fieldcrypt and node:crypto must also read each other's output), so all of them produce",
    'correct results. mongoose-field-encryption uses AES-256-CBC without authentication and @47ng/cloak',
    "a 12-byte IV and base64url, so their outputs are not in fieldcrypt's format.",
    '',
  );

  add('## Method', '');
  add(
    `- Plaintexts: printable ASCII strings of ${opts.sizes
      .filter((s) => !s.multiByte)
      .map((s) => s.label)
      .join(', ')}` +
      (opts.sizes.some((s) => s.multiByte)
        ? '; plus "1 KiB UTF-8", 1,024 bytes of mixed 1- to 4-byte characters.'
        : '.'),
    '- Operations: `encrypt` (one value, fresh random IV each call), `decrypt` (cycling through 8 stored values made',
    '  beforehand by the same implementation), `round trip` (encrypt then decrypt the result).',
    `- For each size and operation: each implementation is warmed up for ${opts.warmupMs} ms, which also calibrates how`,
    `  many calls fill a ${opts.sliceMs} ms slice; then ${opts.rounds} interleaved rounds, each running every implementation`,
    '  once for its calibrated number of calls, the order rotated every round. Each round gives one ops/s sample',
    '  per implementation.',
    '- Reported: the median ops/s over the rounds and the min–max. A ratio is one median divided by another;',
    '  the range in brackets is the min–max of the same ratio taken round by round (samples seconds apart),',
    '  a guide to how much of a difference is noise.',
    '',
  );

  if (hasFc && hasNode) add(...summary(run), '');

  add('## Results', '');
  add('![median ops/s by size](chart.svg)', '');
  for (const op of opts.ops) {
    const rows = cases.filter((c) => c.op === op);
    if (!rows.length) continue;
    add(`### ${OP_TITLES[op]}`, '');
    add(
      `Median ops/s, min–max over ${opts.rounds} rounds; ratio = fieldcrypt median ÷ other median (per-round range).`,
      '',
    );
    const header = ['size', ...impls.map((i) => i.label)];
    if (hasFc) header.push(...others.map((o) => `fieldcrypt ÷ ${o.short}`));
    add(
      mdTable(
        header,
        rows.map((c) => {
          const cells = [c.size.label];
          for (const i of impls) {
            const r = c.results.get(i.id);
            cells.push(`**${fmtRate(r.median)}** (${fmtRate(r.min)}–${fmtRate(r.max)})`);
          }
          if (hasFc) cells.push(...others.map((o) => fmtRatioRange(c.ratios[o.id])));
          return cells;
        }),
      ),
      '',
    );
  }

  if (hasNode) {
    add('### Relative to node:crypto', '');
    add(
      "Each implementation's median ÷ node:crypto's median for the same case (above 1 = faster than node:crypto).",
      '',
    );
    const header = ['size', 'operation', ...impls.filter((i) => i.id !== 'node').map((i) => i.short)];
    add(
      mdTable(
        header,
        cases.map((c) => [
          c.size.label,
          OP_SHORT[c.op],
          ...impls.filter((i) => i.id !== 'node').map((i) => fmtRatio(c.vsNode[i.id])),
        ]),
        header.map((_, k) => (k < 2 ? ':--' : '--:')),
      ),
      '',
    );
  }

  if (run.batch) add(...markdownBatch(run.batch), '');
  if (run.ivCosts) {
    add('## IV sources', '');
    add(
      "Every encryption draws a 16-byte IV. fieldcrypt reads them from the operating system, pooled per thread and discarded after fork(); for comparison, the OS asked once per IV and a user-space ChaCha generator (fast, but a forked child would repeat its parent's IVs).",
      '',
    );
    add('```', ...ivCostsLines(run.ivCosts), '```', '');
  }
  if (run.index) {
    add('## Blind index values', '');
    add(
      'Index values (HMAC-SHA256 under a per-path key derived with HKDF, docs/format.md) per second, next to encrypts per second: `blindIndex`/`blindIndexMany` against node:crypto `createHmac` with the same derivation (its path key derived once, as the addon caches it), and `encrypt`/`encryptMany` against node:crypto AES-GCM.',
      '',
    );
    add('```', ...indexLines(run.index), '```', '');
  }

  add('## Reproducing', '');
  add(
    '```sh',
    'npm install',
    'npm run bench                                   # this file, chart.svg and results.json',
    'BENCH_QUICK=1 npm run bench                     # ~20 s smoke run, written to bench/out/',
    'npm run bench -- --sizes=1k,1m --impls=fieldcrypt,node --ops=encrypt',
    'npm run bench:mongoose                          # save/find overhead on a MongoDB-compatible server',
    'npm run bench:leak                              # RSS over 5 million encrypt+decrypt calls',
    '```',
    '',
  );
  return lines.join('\n');
}

/**
 * fieldcrypt vs node:crypto per operation, in words: "faster" or "slower"
 * only when it was so in every round, otherwise "no consistent difference".
 */
function summary(run) {
  const out = ['## Summary: fieldcrypt vs node:crypto', ''];
  out.push('Faster or slower means in every one of the rounds (the per-round ratio range excludes 1).', '');
  for (const op of run.opts.ops) {
    const groups = { faster: [], slower: [], mixed: [] };
    for (const c of run.cases.filter((x) => x.op === op)) {
      const r = c.ratios.node;
      const key = r.min > 1 ? 'faster' : r.max < 1 ? 'slower' : 'mixed';
      groups[key].push(`${c.size.label} (${fmtRatio(r)})`);
    }
    const parts = [];
    if (groups.faster.length) parts.push(`faster at ${groups.faster.join(', ')}`);
    if (groups.slower.length) parts.push(`slower at ${groups.slower.join(', ')}`);
    if (groups.mixed.length) parts.push(`no consistent difference at ${groups.mixed.join(', ')}`);
    out.push(`- **${OP_SHORT[op]}**: ${parts.join('; ')}.`);
  }
  return out;
}

function markdownBatch(b) {
  const out = ['## Batch APIs', ''];
  if (!b.present.length) {
    out.push(
      'fieldcrypt has none of encryptMany, decryptMany, encryptManyAsync, decryptManyAsync, encryptBuffer yet; this section fills in when it does.',
    );
    return out;
  }
  out.push(`Present: ${b.present.map((n) => `\`${n}\``).join(', ')}.`, '');
  if (b.present.includes('encryptBuffer'))
    out.push('encryptBuffer/decryptBuffer are timed as "fieldcrypt (Buffer)" in the tables above.', '');
  for (const n of b.notes) out.push(`- ${n}`);
  if (b.notes.length) out.push('');
  for (const s of b.sync) {
    out.push(`### ${s.name}, batches of ${s.batchSize} values of ${s.size || '100 B'}`, '');
    out.push(
      mdTable(
        ['', 'values/s (median, min–max)', `${s.name} ÷ this`],
        [...s.results].map(([id, r]) => [
          id,
          `**${fmtRate(r.median * s.batchSize)}** (${fmtRate(r.min * s.batchSize)}–${fmtRate(r.max * s.batchSize)})`,
          s.ratios[id] ? fmtRatioRange(s.ratios[id]) : '',
        ]),
      ),
      '',
    );
  }
  if (b.async.length) {
    out.push('### Async batches vs sync batches', '');
    out.push(
      'One call on all the values; the sync and async calls alternate which goes first, after one unrecorded warm-up',
      'round. Max event-loop delay: `perf_hooks.monitorEventLoopDelay({ resolution: 1 })` over the call. A sync',
      'call blocks the loop for its whole duration, so its delay is its run time. CPU: `process.cpuUsage()` over the',
      "call, all threads of the process (JS, libuv pool, V8's collector threads); JS thread: that thread alone (Linux,",
      'from /proc). Full collections: rounds in which perf_hooks saw V8 run a mark-compact collection during the call.',
      '',
    );
    const hasCpu = b.async.every((a) => a.bound);
    const hasJs = hasCpu && b.async.every((a) => a.sync.jsMs && a.async.jsMs);
    const header = [
      'call',
      'values',
      'values/s (median, min–max)',
      'max event-loop delay, ms (median of rounds; worst)',
    ];
    if (hasCpu) header.push('wall ms (median)', 'CPU ms (median)');
    if (hasJs) header.push('JS thread CPU ms (median)');
    if (hasCpu) header.push('rounds with a full collection');
    header.push('throughput ÷ sync');
    const row = (a, name, r, last) => {
      const cells = [
        `\`${name}\``,
        a.n,
        `**${fmtRate(r.rate.median)}** (${fmtRate(r.rate.min)}–${fmtRate(r.rate.max)})`,
      ];
      cells.push(`${r.delay.median.toFixed(1)}; ${r.delay.max.toFixed(1)}`);
      if (hasCpu) cells.push(r.ms.median.toFixed(1), r.cpuMs.median.toFixed(1));
      if (hasJs) cells.push(r.jsMs.median.toFixed(1));
      if (hasCpu) cells.push(`${r.withMajorGc} of ${r.ms.samples.length}`);
      cells.push(last);
      return cells;
    };
    out.push(
      mdTable(
        header,
        b.async.flatMap((a) => [
          row(a, a.syncName, a.sync, '1× (baseline)'),
          row(a, a.asyncName, a.async, fmtRatioRange(a.ratio)),
        ]),
      ),
    );
    if (hasCpu) {
      out.push(
        '',
        `Bound: with ${b.async[0].cores} cores, an async call takes at least its CPU time ÷ ${b.async[0].cores}, so it can be at most`,
        '(sync wall time × cores ÷ async CPU time) times faster than the sync call. Median of that per round (min–max):',
        '',
        ...b.async.map(
          (a) =>
            `- \`${a.asyncName}\`: at most ${fmtRatioRange(a.bound)} the sync batch; measured ${fmtRatioRange(a.ratio)}.`,
        ),
      );
      if (hasJs) {
        out.push(
          '',
          "Only the JS thread can turn results into strings, and V8 runs its collections' pauses there: an async call",
          'takes at least its JS thread time, so it can be at most (sync wall time ÷ async JS thread time) times faster.',
          '',
          ...b.async.map(
            (a) => `- \`${a.asyncName}\`: ${(a.sync.ms.median / a.async.jsMs.median).toFixed(2)}× from the medians.`,
          ),
        );
      }
    }
    const rows = b.async.filter((a) => a.inARow);
    if (rows.length) {
      const t0 = rows[0].inARow;
      const withJs = rows.every((a) => a.inARow.sync.jsMs && a.inARow.async.jsMs);
      out.push(
        '',
        `#### ${t0.inARow} calls in a row`,
        '',
        `The same values in blocks of ${t0.inARow} calls back to back, sync and async blocks alternating which goes first, ${t0.rounds} rounds`,
        'after an unrecorded warm-up. A single call can leave the collection its results set off to whatever runs next (a',
        'sync call, which never yields, leaves it to the pause after it); in a block every call but the last pays for the',
        'one before it, as in a process that does nothing else. Per call: wall time, CPU time (all threads) and the JS',
        "thread's CPU time; the max event-loop delay is over the whole block.",
        '',
        mdTable(
          [
            'call',
            'ms per call (median, min–max)',
            'CPU ms per call (median)',
            ...(withJs ? ['JS thread CPU ms per call (median)'] : []),
            'max event-loop delay, ms (median of rounds; worst)',
            'throughput ÷ sync',
          ],
          rows.flatMap((a) => {
            const t = a.inARow;
            const cells = (name, r, last, delay) => [
              `\`${name}\``,
              `**${r.ms.median.toFixed(1)}** (${r.ms.min.toFixed(1)}–${r.ms.max.toFixed(1)})`,
              r.cpuMs.median.toFixed(1),
              ...(withJs ? [r.jsMs.median.toFixed(1)] : []),
              delay,
              last,
            ];
            return [
              cells(a.syncName, t.sync, '1× (baseline)', 'its run time'),
              cells(
                a.asyncName,
                t.async,
                fmtRatioRange(t.ratio),
                `${t.async.delay.median.toFixed(1)}; ${t.async.delay.max.toFixed(1)}`,
              ),
            ];
          }),
        ),
      );
      if (rows.every((a) => a.inARow.parity)) {
        out.push(
          '',
          `At CPU parity: an async batch that used no more CPU time (all threads) than the sync batch would, on ${rows[0].inARow.cores} cores,`,
          `still take at least half of it; it could then be at most (sync ms per call × cores ÷ sync CPU ms per call) times`,
          'faster. Median of that per block (min–max), and the CPU time the async batch used against the sync one:',
          '',
          ...rows.map(
            (a) =>
              `- \`${a.asyncName}\`: at most ${fmtRatioRange(a.inARow.parity)} the sync batch at CPU parity; measured ${fmtRatioRange(a.inARow.ratio)}, ` +
              `using ${(a.inARow.async.cpuMs.median / a.inARow.sync.cpuMs.median).toFixed(2)}× its CPU time.`,
          ),
          '',
          'Taken from single calls, the parity figure would mean less: a single sync call leaves part of the collections',
          'it sets off to the pause after it, outside its time.',
        );
      }
      if (withJs) {
        out.push(
          '',
          'Bound set by the JS thread (sync ms per call ÷ async JS thread ms per call, from the medians): ' +
            rows
              .map((a) => `\`${a.asyncName}\` ${(a.inARow.sync.ms.median / a.inARow.async.jsMs.median).toFixed(2)}×`)
              .join(', ') +
            '.',
        );
      }
    }
    const withStalls = b.async.filter((a) => a.stalls);
    if (withStalls.length) {
      const s0 = withStalls[0].stalls;
      const pct = (part, whole) => (whole > 0 ? `${Math.round((100 * part) / whole)}%` : '-');
      out.push(
        '',
        `#### What the event loop's stalls were made of`,
        '',
        `A pass of its own after the timed ones: ${s0.rounds} rounds alternating a single async call and a block of ${s0.inARow} in`,
        `a row, ${s0.calls} calls in all, with a 1 ms timer. For each gap of ${s0.thresholdMs} ms or more between its ticks:`,
        "how long the JS thread was runnable but waiting for a core (the scheduler's count in /proc), and how much of",
        'the gap V8 spent in collection pauses (perf_hooks GC entries). The two can overlap: a pause whose thread',
        'waits for a core counts in both.',
        '',
        mdTable(
          [
            'call',
            'calls',
            `stalls of ${s0.thresholdMs} ms or more`,
            'their time, ms',
            'waiting for a core',
            'in V8 pauses',
            'worst stall, ms (waiting; in V8 pauses)',
          ],
          withStalls.map((a) => {
            const st = a.stalls;
            return [
              `\`${a.asyncName}\``,
              st.calls,
              st.count,
              st.ms.toFixed(1),
              st.count ? `${st.waitMs.toFixed(1)} ms (${pct(st.waitMs, st.ms)})` : '-',
              st.count ? `${st.gcMs.toFixed(1)} ms (${pct(st.gcMs, st.ms)})` : '-',
              st.worst ? `${st.worst.ms.toFixed(1)} (${st.worst.waitMs.toFixed(1)}; ${st.worst.gcMs.toFixed(1)})` : '-',
            ];
          }),
        ),
      );
    }
  }
  return out;
}

// ---------------------------------------------------------------- chart.svg

const PALETTE = {
  fieldcrypt: '#D55E00',
  node: '#0072B2',
  mfe: '#009E73',
  cloak: '#CC79A7',
  fcbuf: '#555555',
  fcbound: '#999999',
};
const EXTRA_COLORS = ['#E69F00', '#56B4E9', '#000000'];
/** Variants of fieldcrypt are dashed. */
const DASHED = new Set(['fcbuf', 'fcbound']);
const dash = (id) => (DASHED.has(id) ? ' stroke-dasharray="6 3"' : '');

function esc(s) {
  return String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function decadeLabel(e) {
  const units = ['', 'k', 'M', 'G'];
  const u = Math.floor(e / 3);
  return `${10 ** (e - 3 * u)}${units[u]}`;
}

function marker(shape, x, y, color) {
  const r = 3.6;
  if (shape === 1)
    return `<rect x="${(x - r).toFixed(1)}" y="${(y - r).toFixed(1)}" width="${2 * r}" height="${2 * r}" fill="${color}"/>`;
  if (shape === 2)
    return `<path d="M${x.toFixed(1)} ${(y - r - 1).toFixed(1)}L${(x + r + 0.5).toFixed(1)} ${(y + r).toFixed(1)}L${(x - r - 0.5).toFixed(1)} ${(y + r).toFixed(1)}Z" fill="${color}"/>`;
  if (shape === 3)
    return `<path d="M${x.toFixed(1)} ${(y - r - 1).toFixed(1)}L${(x + r + 1).toFixed(1)} ${y.toFixed(1)}L${x.toFixed(1)} ${(y + r + 1).toFixed(1)}L${(x - r - 1).toFixed(1)} ${y.toFixed(1)}Z" fill="${color}"/>`;
  return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r}" fill="${color}"/>`;
}

/**
 * Median ops/s by plaintext size, one panel per operation, one line per
 * implementation; log-scale y (shared) and log-scale x (bytes); thin
 * vertical bars show each median's min–max over the rounds.
 */
function svgChart(run) {
  const W = 800;
  const H = 450;
  const { impls, cases, opts } = run;
  const sizes = opts.sizes.filter((s) => !s.multiByte);
  const ops = opts.ops.filter((op) => cases.some((c) => c.op === op && !c.size.multiByte));
  const color = (impl, k) => PALETTE[impl.id] || EXTRA_COLORS[k % EXTRA_COLORS.length];

  const all = cases
    .filter((c) => !c.size.multiByte && ops.includes(c.op))
    .flatMap((c) => [...c.results.values()].flatMap((r) => [r.min, r.max]));
  if (!all.length) {
    return (
      `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="60" font-family="Helvetica, Arial, sans-serif">` +
      '<text x="10" y="35">No ASCII sizes in this run: nothing to chart.</text></svg>\n'
    );
  }
  const yLo = Math.floor(Math.log10(Math.min(...all)));
  const yHi = Math.ceil(Math.log10(Math.max(...all)));
  const xs = sizes.map((s) => Math.log10(s.bytes));
  const xLo = Math.min(...xs);
  const xHi = Math.max(...xs);

  const m = { left: 74, right: 16, top: 78, bottom: 62 };
  const gap = 22;
  const panelW = (W - m.left - m.right - gap * (ops.length - 1)) / Math.max(1, ops.length);
  const plotH = H - m.top - m.bottom;
  const yPos = (v) => m.top + plotH * (1 - (Math.log10(v) - yLo) / (yHi - yLo || 1));
  const inset = 14;
  const xPos = (p, bytes) => {
    const x0 = m.left + p * (panelW + gap) + inset;
    const w = panelW - 2 * inset;
    return xHi === xLo ? x0 + w / 2 : x0 + (w * (Math.log10(bytes) - xLo)) / (xHi - xLo);
  };

  const o = [];
  o.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" ` +
      'font-family="Helvetica, Arial, sans-serif" font-size="12">',
  );
  o.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  o.push(
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="16" font-weight="bold">` +
      'Median operations per second by plaintext size (higher is better)</text>',
  );

  // Legend, centred under the title.
  const legendItems = impls.map((impl, k) => ({ id: impl.id, label: impl.label, color: color(impl, k), k }));
  const itemW = legendItems.map((it) => 34 + it.label.length * 6.6);
  let lx = (W - itemW.reduce((a, b) => a + b, 0)) / 2;
  for (const [n, it] of legendItems.entries()) {
    const width = it.label === 'fieldcrypt' ? 3 : 2;
    o.push(
      `<line x1="${lx}" y1="44" x2="${lx + 22}" y2="44" stroke="${it.color}" stroke-width="${width}"${dash(it.id)}/>`,
    );
    o.push(marker(it.k % 4, lx + 11, 44, it.color));
    o.push(`<text x="${lx + 28}" y="48">${esc(it.label)}</text>`);
    lx += itemW[n];
  }

  // Y axis: decades, with light 2x and 5x lines.
  o.push(
    `<text transform="translate(18 ${m.top + plotH / 2}) rotate(-90)" text-anchor="middle" font-size="13">` +
      'operations per second (log scale)</text>',
  );
  for (let e = yLo; e <= yHi; e++) {
    o.push(`<text x="${m.left - 8}" y="${(yPos(10 ** e) + 4).toFixed(1)}" text-anchor="end">${decadeLabel(e)}</text>`);
  }

  for (const [p, op] of ops.entries()) {
    const x0 = m.left + p * (panelW + gap);
    o.push(`<g>`);
    o.push(
      `<text x="${(x0 + panelW / 2).toFixed(1)}" y="${m.top - 8}" text-anchor="middle" font-weight="bold" font-size="13">${esc(OP_SHORT[op])}</text>`,
    );
    for (let e = yLo; e <= yHi; e++) {
      for (const f of [1, 2, 5]) {
        const v = f * 10 ** e;
        if (Math.log10(v) > yHi + 1e-9) continue;
        const y = yPos(v).toFixed(1);
        o.push(
          `<line x1="${x0.toFixed(1)}" y1="${y}" x2="${(x0 + panelW).toFixed(1)}" y2="${y}" ` +
            `stroke="${f === 1 ? '#c8c8c8' : '#ececec'}" stroke-width="1"/>`,
        );
      }
    }
    o.push(
      `<rect x="${x0.toFixed(1)}" y="${m.top}" width="${panelW.toFixed(1)}" height="${plotH}" fill="none" stroke="#888"/>`,
    );
    for (const s of sizes) {
      const x = xPos(p, s.bytes).toFixed(1);
      o.push(`<line x1="${x}" y1="${m.top + plotH}" x2="${x}" y2="${m.top + plotH + 5}" stroke="#888"/>`);
      o.push(`<text x="${x}" y="${m.top + plotH + 18}" text-anchor="middle" font-size="11">${esc(s.label)}</text>`);
    }
    for (const [k, impl] of impls.entries()) {
      const c = color(impl, k);
      const pts = sizes
        .map((s) => cases.find((cs) => cs.op === op && cs.size.id === s.id))
        .filter(Boolean)
        .map((cs) => ({ x: xPos(p, cs.size.bytes), r: cs.results.get(impl.id) }));
      const d = pts.map((pt, n) => `${n ? 'L' : 'M'}${pt.x.toFixed(1)} ${yPos(pt.r.median).toFixed(1)}`).join('');
      o.push(
        `<path d="${d}" fill="none" stroke="${c}" stroke-width="${impl.id === 'fieldcrypt' ? 3 : 2}"${dash(impl.id)} ` +
          'stroke-linejoin="round" stroke-opacity="0.9"/>',
      );
      for (const pt of pts) {
        o.push(
          `<line x1="${pt.x.toFixed(1)}" y1="${yPos(pt.r.min).toFixed(1)}" x2="${pt.x.toFixed(1)}" y2="${yPos(pt.r.max).toFixed(1)}" stroke="${c}" stroke-width="1.2"/>`,
        );
        o.push(marker(k % 4, pt.x, yPos(pt.r.median), c));
      }
    }
    o.push(`</g>`);
  }
  o.push(
    `<text x="${m.left + (W - m.left - m.right) / 2}" y="${H - 24}" text-anchor="middle" font-size="13">` +
      'plaintext size (ASCII, log scale)</text>',
  );
  o.push(
    `<text x="${W - m.right}" y="${H - 6}" text-anchor="end" font-size="10" fill="#555">` +
      esc(
        `${run.machine.cpu}, ${run.machine.cores} cores, Node ${run.machine.node}; median of ${opts.rounds} interleaved rounds, ` +
          `bars = min–max; ${run.started.toISOString().slice(0, 10)}`,
      ) +
      '</text>',
  );
  o.push('</svg>');
  return `${o.join('\n')}\n`;
}

// ---------------------------------------------------------------- files

function toJSON(run) {
  const mapObj = (m) => Object.fromEntries(m);
  return {
    started: run.started,
    seconds: run.seconds,
    machine: run.machine,
    options: { ...run.opts, sizes: run.opts.sizes.map((s) => s.id) },
    implementations: run.impls.map(({ id, label, pkg, version, note }) => ({ id, label, pkg, version, note })),
    skipped: run.skipped,
    cases: run.cases.map((c) => ({
      size: c.size,
      op: c.op,
      results: mapObj(c.results),
      ratios: c.ratios,
      vsNode: c.vsNode,
    })),
    batch: run.batch && {
      ...run.batch,
      sync: run.batch.sync.map((s) => ({ ...s, results: mapObj(s.results) })),
    },
    index: run.index && { ...run.index, single: mapObj(run.index.single), batch: mapObj(run.index.batch) },
  };
}

function writeAll(run, dir) {
  fs.mkdirSync(dir, { recursive: true });
  const files = {
    'RESULTS.md': markdown(run),
    'chart.svg': svgChart(run),
    'results.json': `${JSON.stringify(toJSON(run), null, 2)}\n`,
  };
  const written = [];
  for (const [name, text] of Object.entries(files)) {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    written.push(path.relative(process.cwd(), file) || file);
  }
  return written;
}

module.exports = { machineInfo, caseLine, textTables, markdown, svgChart, writeAll, fmtRate, fmtRatio };
