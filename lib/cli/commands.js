'use strict';

/**
 * The commands: keygen, status, encrypt, rotate, bind, decrypt, reindex (its
 * planner in reindex.js). Each returns an exit
 * code; results go to `out` (stdout), progress and errors to `err` (stderr).
 */

const crypto = require('node:crypto');
const keys = require('../core/keys');
const { UsageError } = require('./args');
const { connect, redactUri, formatId } = require('./driver');
const { resolveTargets } = require('./targets');
const { classify, encryptTransform, rotateTransform, decryptTransform, preflight } = require('./values');
const { contextsFor, probe, bindTransform } = require('./binding');
const { runScan, projectionFor, newTotals } = require('./scan');
const { CheckpointStore } = require('./checkpoint');
const { Progress } = require('./progress');
const { forEachAtPath } = require('../paths');
const { reindexJob, reindexSummary } = require('./reindex');
const { indexCoverage, coverageRows } = require('./index-coverage');

const num = (n) => n.toLocaleString('en-US');
const MAX_ERRORS_PRINTED = 20;

// ---------------------------------------------------------------------------
// keygen

function keygen(opts, io) {
  const key = crypto.randomBytes(32).toString('hex');
  if (opts.json) io.out(JSON.stringify({ key, variable: opts.env ? `ENCRYPTION_KEY_V${opts.env}` : undefined }));
  else io.out(opts.env ? `ENCRYPTION_KEY_V${opts.env}=${key}` : key);
  return 0;
}

// ---------------------------------------------------------------------------
// status

function versionsText(encrypted) {
  const versions = Object.keys(encrypted).sort();
  return versions.length ? versions.map((v) => `${v}: ${num(encrypted[v])}`).join(', ') : '0';
}

function fieldOk(s, current) {
  return (
    s.plaintext === 0 &&
    s.malformed === 0 &&
    s.unsupported === 0 &&
    s.unbound === 0 &&
    s.elsewhere === 0 &&
    Object.keys(s.encrypted).every((v) => v === current)
  );
}

/** A bound field's encrypted value, counted as bound, unbound or bound elsewhere (inside the addon). */
function countBinding(s, value, context) {
  try {
    s[probe(value, context).state]++;
  } catch (err) {
    if (err.code !== 'ERR_FIELDCRYPT_CONTEXT_MISMATCH') throw err;
    s.elsewhere++;
  }
}

async function status(opts, io) {
  const { uri, db: dbName, targets } = await resolveTargets(opts);
  const current = keys.currentVersion();
  const client = await connect(uri);
  const report = { command: 'status', db: dbName, currentVersion: current, ok: true, collections: [] };
  try {
    const db = client.db(dbName);
    for (const target of targets) {
      const { collection, fields, bindings } = target;
      const coverage = indexCoverage(target);
      if (coverage) report.indexVersion = coverage.version;
      const totals = newTotals(fields);
      const contextOf = contextsFor(collection, bindings);
      for (const field of fields) totals.fields[field].elsewhere = 0;
      const progress = new Progress({
        label: `status ${collection}`,
        total: await db.collection(collection).estimatedDocumentCount(),
        quiet: opts.quiet,
        interval: opts.progressInterval,
        stream: io.errStream,
      });
      const projection = coverage ? { ...projectionFor(fields), ...coverage.projection } : projectionFor(fields);
      const cursor = db.collection(collection).find({}, { projection, batchSize: 1000 });
      for await (const doc of cursor) {
        totals.documents++;
        for (const field of fields) {
          const s = totals.fields[field];
          forEachAtPath(doc, field, (value) => {
            const kind = classify(value);
            if (kind === 'encrypted') {
              const v = value.slice(0, 2);
              s.encrypted[v] = (s.encrypted[v] || 0) + 1;
              const context = contextOf(field, doc._id);
              if (context !== undefined) countBinding(s, value, context);
            } else {
              s[kind]++;
            }
          });
        }
        if (coverage) coverage.add(doc);
        if (totals.documents % 1000 === 0) progress.update(totals.documents, 0);
      }
      progress.update(totals.documents, 0);
      progress.stop();
      const entry = { collection, documents: totals.documents, fields: {} };
      for (const field of fields) {
        const { plaintext, empty, encrypted, malformed, unsupported, bound, unbound, elsewhere } = totals.fields[field];
        const ok = fieldOk(totals.fields[field], current);
        if (!ok) report.ok = false;
        entry.fields[field] = { plaintext, empty, encrypted, malformed, unsupported, ok };
        const mode = bindings && bindings[field];
        if (mode) entry.fields[field].binding = { mode, bound, unbound, elsewhere };
      }
      if (coverage) {
        entry.index = coverage.report();
        if (Object.values(entry.index).some((c) => !c.ok)) report.ok = false;
      }
      report.collections.push(entry);
    }
  } finally {
    await client.close();
  }
  if (opts.json) {
    io.out(JSON.stringify(report, null, 2));
  } else {
    io.out(
      `database ${dbName}, current key version ${current}${report.indexVersion ? `, current index-key version ${report.indexVersion}` : ''}`,
    );
    for (const c of report.collections) {
      io.out(`\n${c.collection} (${num(c.documents)} documents)`);
      const bound = Object.values(c.fields).some((s) => s.binding);
      const rows = [
        ['field', 'plaintext', 'empty', 'malformed', 'unsupported', 'encrypted', ...(bound ? ['binding'] : []), ''],
      ];
      for (const [field, s] of Object.entries(c.fields)) {
        rows.push([
          field,
          num(s.plaintext),
          num(s.empty),
          num(s.malformed),
          num(s.unsupported),
          versionsText(s.encrypted),
          ...(bound ? [bindingText(s.binding)] : []),
          s.ok ? 'ok' : 'NOT CURRENT',
        ]);
      }
      io.out(table(rows));
      if (c.index) io.out(`\n${table(coverageRows(c.index))}`);
    }
    io.out(
      report.ok
        ? `\nok: every value is encrypted under key version ${current}${anyBound(report) ? ', and bound where its field is' : ''}${report.indexVersion ? `, and indexed under index-key version ${report.indexVersion}` : ''}`
        : `\nnot current: some values are plaintext, malformed, of an unsupported type, under another key version than ${current}${anyBound(report) ? ', or not bound to their place (run bind; values bound elsewhere need a person)' : ''}${report.indexVersion ? `, or their blind index is missing, stale or not under index-key version ${report.indexVersion} (run reindex)` : ''}`,
    );
  }
  return report.ok ? 0 : 1;
}

function bindingText(b) {
  if (!b) return '-';
  return `${b.mode}: ${num(b.bound)} bound, ${num(b.unbound)} unbound${b.elsewhere ? `, ${num(b.elsewhere)} ELSEWHERE` : ''}`;
}

function anyBound(report) {
  return report.collections.some((c) => Object.values(c.fields).some((s) => s.binding));
}

function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  return rows
    .map(
      (r) =>
        '  ' +
        r
          .map((cell, i) => (i === 0 ? String(cell).padEnd(widths[i]) : String(cell).padStart(widths[i])))
          .join('  ')
          .trimEnd(),
    )
    .join('\n');
}

// ---------------------------------------------------------------------------
// encrypt, rotate, decrypt

/** The command line to continue a stopped run: the same arguments plus --resume, password hidden. */
function resumeCommand(argv) {
  const args = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--uri' && i + 1 < argv.length) {
      args.push(a, redactUri(argv[++i]));
    } else if (a.startsWith('--uri=')) {
      args.push(`--uri=${redactUri(a.slice(6))}`);
    } else if (a !== '--resume') {
      args.push(a);
    }
  }
  args.push('--resume');
  return `fieldcrypt ${args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`)).join(' ')}`;
}

const VERBS = {
  encrypt: { done: 'encrypted', would: 'would encrypt' },
  rotate: { done: 're-encrypted', would: 'would re-encrypt' },
  bind: { done: 'bound', would: 'would bind' },
  decrypt: { done: 'decrypted', would: 'would decrypt' },
};

function fieldSummary(command, s, opts) {
  const verb = opts.dryRun ? VERBS[command].would : VERBS[command].done;
  const parts = [`${num(s.changed)} ${verb}${command === 'rotate' ? ` to ${opts.to}` : ''}`];
  if (command === 'encrypt') parts.push(`already encrypted ${versionsText(s.encrypted)}`);
  if (command === 'rotate') {
    parts.push(`already ${opts.to}: ${num(s.encrypted[opts.to] || 0)}`);
    parts.push(`plaintext ${num(s.plaintext)} (untouched)`);
  }
  if (command === 'decrypt') parts.push(`plaintext ${num(s.plaintext)}`);
  if (command === 'bind') parts.push(`already bound ${num(s.bound)}`, `plaintext ${num(s.plaintext)} (untouched)`);
  // `encrypt --typed` converts values of other types with the typed codec.
  const otherTypes =
    command === 'encrypt' && opts.typed
      ? `other types ${num(s.unsupported)} (through the typed codec)`
      : `unsupported type ${num(s.unsupported)} (untouched)`;
  parts.push(
    `empty ${num(s.empty)}`,
    `malformed ${num(s.malformed)} (untouched)`,
    otherTypes,
    `errors ${num(s.errors)}`,
  );
  return parts.join(', ');
}

async function migrate(command, opts, io) {
  if (command === 'decrypt' && !opts.yes && !opts.dryRun) {
    throw new UsageError(
      'decrypt writes plaintext back into the database: pass --yes to confirm (or --dry-run to see what it would do)',
    );
  }
  if (command === 'rotate' && !opts.to)
    throw new UsageError('rotate needs --to VV, the key version to re-encrypt into (e.g. --to 02)');
  if (command !== 'rotate' && opts.to) throw new UsageError('--to is for rotate');
  if (command !== 'encrypt' && opts.typed)
    throw new UsageError('--typed is for encrypt (decrypt always reads typed values back)');
  if (command !== 'reindex' && opts.searchable) throw new UsageError('--searchable is for reindex and status');
  const resolved = await resolveTargets(opts);
  const { uri, db: dbName } = resolved;
  let { targets } = resolved;
  if (command === 'reindex') {
    targets = targets.filter((t) => t.searchable.length);
    if (!targets.length) {
      throw new UsageError(
        'reindex: no searchable fields: pass --searchable with the --field paths, list "searchable" in a config target, or mark schema paths searchable',
      );
    }
  }
  if (command === 'bind') {
    for (const { collection, fields, bindings } of targets) {
      const unbound = fields.filter((f) => !bindings[f]);
      if (unbound.length) {
        throw new UsageError(
          `bind: ${collection}.${unbound[0]} is not a bound field: pass --bind collection|document, or set bind in the config or the schema`,
        );
      }
    }
  }
  const writeVersion = command === 'encrypt' ? keys.currentVersion() : command === 'rotate' ? opts.to : undefined;
  preflight(command, { to: opts.to, dryRun: opts.dryRun });

  /** The command's transform for one target (its bound fields' contexts). */
  const transformFor = (collection, bindings) => {
    const contextOf = contextsFor(collection, bindings);
    if (command === 'encrypt') return encryptTransform(opts, contextOf);
    if (command === 'rotate') return rotateTransform(opts, contextOf);
    if (command === 'bind') return bindTransform(opts, contextOf, classify);
    return decryptTransform(opts, contextOf);
  };

  const stop = { requested: false, signal: undefined };
  const onSignal = (signal) => {
    if (stop.requested) {
      io.err(`fieldcrypt: ${signal} again: exiting now (safe: every write is a compare-and-swap; rerun with --resume)`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    }
    stop.requested = true;
    stop.signal = signal;
    io.err(
      `\nfieldcrypt: ${signal}: finishing the batches in flight and saving the checkpoint (press Ctrl-C again to exit at once)`,
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const client = await connect(uri);
  const report = {
    command,
    db: dbName,
    dryRun: opts.dryRun,
    version: writeVersion,
    partition: opts.partition || null,
    collections: [],
  };
  let exitCode = 0;
  let incomplete = false; // a target stopped by a signal before it was done
  let printedErrors = 0;
  const onError = (e) => {
    if (printedErrors++ < MAX_ERRORS_PRINTED) {
      io.err(
        `fieldcrypt: error: _id ${e.id}${e.path ? `, path ${e.path}` : ''}: ${e.message}${e.code ? ` [${e.code}]` : ''}`,
      );
    } else if (printedErrors === MAX_ERRORS_PRINTED + 1) {
      io.err('fieldcrypt: further errors are counted, not printed');
    }
  };
  try {
    const db = client.db(dbName);
    for (const target of targets) {
      if (stop.requested) {
        incomplete = true;
        break;
      }
      const { collection, bindings } = target;
      const coll = db.collection(collection);
      // reindex: its own planner over the searchable fields, writing under the current index-key version.
      const job = command === 'reindex' ? reindexJob(target, opts) : undefined;
      const fields = job ? job.fields : target.fields;
      const transform = job ? undefined : transformFor(collection, bindings);
      const to = job ? job.version : opts.to;
      if (job) report.version = job.version;
      const identity = { command, collection, fields, to, partition: opts.partition, bindings };
      const checkpoint = opts.dryRun ? undefined : new CheckpointStore(db, identity);
      let start;
      if (opts.resume) {
        const saved = await new CheckpointStore(db, identity).load();
        if (saved && saved.status === 'done') {
          io.err(
            `fieldcrypt: ${command} ${collection}: the checkpointed run finished at ${saved.finishedAt ? saved.finishedAt.toISOString() : 'an earlier time'}; continuing after its last _id (run without --resume to rescan everything)`,
          );
        }
        if (saved && saved.lastId !== undefined) {
          start = { lastId: saved.lastId, totals: saved.totals };
          io.err(`fieldcrypt: ${command} ${collection}: resuming after _id ${formatId(saved.lastId)}`);
        } else {
          io.err(`fieldcrypt: ${command} ${collection}: no checkpoint to resume from; starting at the beginning`);
        }
      } else if (checkpoint) {
        const saved = await checkpoint.load();
        if (saved && saved.status !== 'done' && saved.lastId !== undefined) {
          io.err(
            `fieldcrypt: ${command} ${collection}: an earlier run stopped (${saved.status}); starting over from the beginning (safe; --resume would continue after its checkpoint)`,
          );
        }
        await checkpoint.reset();
      }
      // For the progress bar only: the collection's metadata count when starting
      // from the beginning (a full count can take long on a big collection).
      const total = start
        ? await coll.countDocuments({ _id: { $gt: start.lastId } })
        : await coll.estimatedDocumentCount();
      const label = `${command}${opts.dryRun ? ' (dry run)' : ''} ${collection}${opts.partition ? ` [partition ${opts.partition.index}/${opts.partition.count}]` : ''}`;
      const progress = new Progress({
        label,
        total: opts.limit && !opts.partition ? Math.min(total, opts.limit) : total,
        quiet: opts.quiet,
        interval: opts.progressInterval,
        stream: io.errStream,
      });
      const started = performance.now();
      let result;
      try {
        result = await runScan({
          coll,
          fields,
          transform,
          planDoc: job && job.planDoc,
          newStats: job && job.newStats,
          projection: job ? job.projection : undefined,
          opts,
          start,
          checkpoint,
          progress,
          stop,
          onError,
        });
      } catch (err) {
        progress.stop();
        if (err.scanTotals) {
          io.err(
            `fieldcrypt: ${command} ${collection} stopped by an error after ${num(err.scanTotals.documents)} documents; the checkpoint is saved. Fix the cause, then continue with:\n  ${resumeCommand(io.argv)}`,
          );
        }
        throw err;
      }
      progress.stop();
      const seconds = (performance.now() - started) / 1000;
      const t = result.totals;
      const entry = {
        collection,
        fields,
        status: result.status,
        seconds: Number(seconds.toFixed(3)),
        scanned: t.scanned,
        documents: t.documents,
        updated: t.updated,
        conflicts: t.conflicts,
        vanished: t.vanished,
        errors: t.errors,
        docsPerSecond: Math.round(t.scanned / Math.max(seconds, 1e-9)),
        perField: t.fields,
        firstErrors: result.errors,
      };
      report.collections.push(entry);
      if (t.errors) exitCode = 1;
      if (result.status === 'interrupted') incomplete = true;
      if (!opts.json) {
        const what = opts.dryRun ? 'nothing written' : result.status;
        io.out(`${label}: ${what} in ${seconds.toFixed(1)} s`);
        io.out(
          `  documents: ${num(t.documents)} read${opts.partition ? ` (of ${num(t.scanned)} scanned)` : ''}, ${num(t.updated)} updated, ${num(t.conflicts)} concurrent writes retried, ${num(t.vanished)} deleted meanwhile, ${num(t.errors)} errors; ${num(entry.docsPerSecond)} docs/s`,
        );
        for (const field of fields) {
          const s = t.fields[field];
          io.out(`  ${field}: ${job ? reindexSummary(s, opts, job.version) : fieldSummary(command, s, opts)}`);
        }
      }
      if (result.status === 'limit' && !opts.dryRun)
        io.err(`fieldcrypt: stopped at --limit ${opts.limit}; continue with:\n  ${resumeCommand(io.argv)}`);
    }
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await client.close();
  }
  if (opts.json) io.out(JSON.stringify(report, null, 2));
  if (stop.requested && incomplete) {
    if (!opts.dryRun)
      io.err(`fieldcrypt: interrupted; the checkpoint is saved. Continue with:\n  ${resumeCommand(io.argv)}`);
    return stop.signal === 'SIGTERM' ? 143 : 130;
  }
  return exitCode;
}

module.exports = { keygen, status, migrate, resumeCommand, fieldOk };
