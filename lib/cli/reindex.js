'use strict';

/**
 * `fieldcrypt reindex` (issue 20, docs/search.md#rotating-the-index-key):
 * writes the blind index of every encrypted value of a target's searchable
 * paths where it is missing, stale (not the value's index) or under an older
 * index-key version: backfill and index-key rotation in one. It runs in the
 * migration loop of encrypt and rotate (lib/cli/scan.js: `_id` order,
 * batches, checkpoints, partitions, progress, --dry-run), with a planner of
 * its own: a document's update sets (or, for an index value without a value,
 * unsets) the sibling `_bidx` paths, and its filter pins both the stored
 * value and the index value that were read, so a concurrent write to either
 * makes the update match nothing, and the document is read again and
 * recomputed (compare-and-swap).
 *
 * Values that are not encrypted (plaintext, empty, malformed, other types)
 * are counted and left without an index: `encrypt` first, then `reindex`.
 */

const { blindIndex } = require('../core/blind-index');
const { casCondition } = require('./scan');
const { formatId } = require('./driver');
const { contextsFor } = require('./binding');
const { forEachSlot, indexProjection, indexer, assess, valueError, isFatal, newIndexStats } = require('./index-values');

const num = (n) => n.toLocaleString('en-US');

/** The compare-and-swap condition for a value or index value as it was read. */
function pin(value) {
  if (value === undefined || value === null) return { $eq: null, $not: { $type: 'array' } };
  if (typeof value === 'string') return casCondition(value);
  return { $eq: value };
}

/**
 * The job of one target for the scan: { fields, planDoc, newStats } (fields
 * are the searchable paths), or undefined when the target has none.
 */
function reindexJob({ collection, searchable, bindings }, { dryRun }) {
  if (!searchable || searchable.length === 0) return undefined;
  const ix = indexer(collection, contextsFor(collection, bindings));
  // Fail once at the start, not at every value, when the current index key is missing.
  blindIndex('', { collection, path: searchable[0].path, version: ix.current });

  function planDoc(doc) {
    const filter = { _id: doc._id };
    const $set = {};
    const $unset = {};
    const seen = [];
    const valueErrors = [];
    let changes = 0;
    for (const spec of searchable) {
      forEachSlot(doc, spec.path, (slot) => {
        let a;
        try {
          a = assess(ix, spec, slot, doc._id);
        } catch (err) {
          if (isFatal(err)) throw err;
          valueErrors.push({ id: formatId(doc._id), field: spec.path, path: slot.where, ...valueError(err) });
          return;
        }
        const change = ['missing', 'stale', 'old', 'orphan'].includes(a.state);
        seen.push({ field: spec.path, r: { kind: a.state, version: a.version, action: change ? 'change' : 'skip' } });
        if (!change) return;
        changes++;
        filter[slot.where] = pin(slot.value);
        filter[slot.siblingWhere] = pin(slot.sibling);
        if (dryRun) return;
        if (a.state === 'orphan') $unset[slot.siblingWhere] = '';
        else $set[slot.siblingWhere] = a.index;
      });
    }
    const update = {};
    if (Object.keys($set).length) update.$set = $set;
    if (Object.keys($unset).length) update.$unset = $unset;
    return { filter, update, seen, valueErrors, changes };
  }

  const fields = searchable.map((s) => s.path);
  return { fields, planDoc, newStats: newIndexStats, projection: indexProjection(fields), version: ix.current };
}

function versionsText(byVersion) {
  const versions = Object.keys(byVersion).sort();
  return versions.length ? versions.map((v) => `${v}: ${num(byVersion[v])}`).join(', ') : '0';
}

/** One line of a reindex run's summary for a field. */
function reindexSummary(s, { dryRun }, version) {
  return [
    `${num(s.changed)} ${dryRun ? 'would be indexed' : 'indexed'} under ${version} (missing ${num(s.missing)}, stale ${num(s.stale)}, old versions ${versionsText(s.old)}; orphaned index values ${dryRun ? 'to remove' : 'removed'} ${num(s.orphan)})`,
    `already current ${num(s.current)}`,
    `not encrypted (not indexed; run encrypt first): plaintext ${num(s.plaintext)}, empty ${num(s.empty)}, malformed ${num(s.malformed)}, unsupported ${num(s.unsupported)}`,
    `errors ${num(s.errors)}`,
  ].join(', ');
}

module.exports = { reindexJob, reindexSummary, pin, versionsText };
