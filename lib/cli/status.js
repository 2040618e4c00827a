'use strict';

/**
 * `fieldcrypt status`: per field, plaintext, empty, malformed, unsupported and
 * encrypted values (per key version); on bound fields, bound, unbound and bound
 * elsewhere; on searchable fields, the blind-index coverage (index-coverage.js).
 * Exit code 0 only when everything is current.
 */

const keys = require('../core/keys');
const { connect } = require('./driver');
const { resolveTargets } = require('./targets');
const { classify } = require('./values');
const { contextsFor, probe } = require('./binding');
const { projectionFor, newTotals } = require('./scan');
const { Progress } = require('./progress');
const { forEachAtPath } = require('../paths');
const { indexCoverage, coverageRows } = require('./index-coverage');

const num = (n) => n.toLocaleString('en-US');

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

module.exports = { status, fieldOk, versionsText };
