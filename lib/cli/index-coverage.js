'use strict';

/**
 * Index coverage for `status` (issue 20): per searchable field, how many of
 * its encrypted values have their blind index under the current index-key
 * version, under an older one, none (missing) or a wrong one (stale), and
 * the index values with no value beside them (orphans). Checking an index
 * value means decrypting the value and recomputing it (lib/cli/index-values.js),
 * so `status` needs the encryption keys and the index keys for these fields.
 */

const { contextsFor } = require('./binding');
const { forEachSlot, indexProjection, indexer, assess, isFatal, newIndexStats, coverageOk } = require('./index-values');
const { versionsText } = require('./reindex');

const num = (n) => n.toLocaleString('en-US');

/** { add(doc), report() } for one target's searchable fields, or undefined when it has none. */
function indexCoverage({ collection, searchable, bindings }) {
  if (!searchable || searchable.length === 0) return undefined;
  const ix = indexer(collection, contextsFor(collection, bindings));
  const stats = Object.fromEntries(searchable.map((s) => [s.path, newIndexStats()]));
  return {
    version: ix.current,
    projection: indexProjection(searchable.map((s) => s.path)),
    add(doc) {
      for (const spec of searchable) {
        const s = stats[spec.path];
        forEachSlot(doc, spec.path, (slot) => {
          let a;
          try {
            a = assess(ix, spec, slot, doc._id);
          } catch (err) {
            if (isFatal(err)) throw err;
            s.errors++;
            return;
          }
          if (a.state === 'old') s.old[a.version] = (s.old[a.version] || 0) + 1;
          else s[a.state]++;
        });
      }
    },
    report() {
      const out = {};
      for (const [path, s] of Object.entries(stats)) {
        const { current, old, missing, stale, orphan, plaintext, empty, malformed, unsupported, errors } = s;
        out[path] = {
          version: ix.current,
          current,
          old,
          missing,
          stale,
          orphan,
          notIndexed: { plaintext, empty, malformed, unsupported },
          errors,
          ok: coverageOk(s),
        };
      }
      return out;
    },
  };
}

/** The text table of a collection's index coverage (`status` without --json). */
function coverageRows(index) {
  const rows = [['searchable field', 'current', 'old versions', 'missing', 'stale', 'orphaned', 'errors', '']];
  for (const [path, c] of Object.entries(index)) {
    rows.push([
      path,
      `${c.version}: ${num(c.current)}`,
      versionsText(c.old),
      num(c.missing),
      num(c.stale),
      num(c.orphan),
      num(c.errors),
      c.ok ? 'ok' : 'REINDEX',
    ]);
  }
  return rows;
}

module.exports = { indexCoverage, coverageRows };
