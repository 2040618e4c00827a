'use strict';

/**
 * The commands: keygen, encrypt, rotate, bind, decrypt, reindex (its planner
 * in reindex.js), and status (status.js). Each returns an exit
 * code; results go to `out` (stdout), progress and errors to `err` (stderr).
 */

const crypto = require('node:crypto');
const keys = require('../core/keys');
const { UsageError } = require('./args');
const { connect, redactUri, formatId } = require('./driver');
const { resolveTargets } = require('./targets');
const { classify, encryptTransform, rotateTransform, decryptTransform, preflight } = require('./values');
const { contextsFor, bindTransform } = require('./binding');
const { runScan } = require('./scan');
const { CheckpointStore } = require('./checkpoint');
const { Progress } = require('./progress');
const { reindexJob, reindexSummary } = require('./reindex');
const { status, fieldOk, versionsText } = require('./status');

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

/** After encrypt or decrypt changed searchable fields: what their blind indexes need now. */
function searchableHint(command, { collection, searchable }, totals, io) {
  if (!searchable || !searchable.some((s) => totals.fields[s.path] && totals.fields[s.path].changed)) return;
  io.err(
    command === 'encrypt'
      ? `fieldcrypt: ${collection}: the values just encrypted in searchable fields have no blind index yet: run fieldcrypt reindex`
      : `fieldcrypt: ${collection}: the blind indexes of the searchable fields (<path>_bidx) are left in place: remove them once the paths are no longer searchable`,
  );
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
      if (!opts.dryRun && (command === 'encrypt' || command === 'decrypt')) searchableHint(command, target, t, io);
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
