'use strict';

/**
 * The migration loop shared by encrypt, rotate and decrypt: read documents in
 * `_id` order, compute each document's new values, and write them with a
 * compare-and-swap update.
 *
 * Compare-and-swap: a document's update is
 *
 *   updateOne({ _id, <each concrete path>: <the value read there> },
 *             { $set: { <each concrete path>: <new value> } })
 *
 * (each condition also excludes arrays, so a value that an application turned
 * into an array holding the same string does not match). matchedCount 0 means
 * something wrote to the document between our read and our write: the
 * document is read again, recomputed and retried (up to --max-retries times);
 * such conflicts are counted. Only the concrete paths that change are written,
 * so other fields, other array elements and values that were already done are
 * never touched.
 *
 * Idempotent: the transform skips values that are already in the target state
 * (encrypted; under the target version; plaintext), so a rerun or a resumed
 * run redoes nothing. Together with compare-and-swap this makes any crash
 * safe: a value is either still what it was or fully converted, never both,
 * never twice.
 *
 * Partitions (--partition i/N): a document belongs to partition
 * sha256(canonical EJSON of its _id) mod N, computed here, so it works for any
 * _id type on any server (FerretDB supports no $expr). Each process reads every
 * document's _id (and the target fields) and writes only its own share.
 */

const { createHash } = require('node:crypto');
const { forEachAtPath } = require('../paths');
const { codes } = require('../core/errors');
const { loadDriver, formatId } = require('./driver');

/** Server errors that concern one document; any other error stops the run. */
const PER_DOCUMENT_SERVER_ERRORS = new Set([
  2, // BadValue
  121, // DocumentValidationFailure
  10334, // BSONObjectTooLarge
  11000, // DuplicateKey
  17280, // KeyTooLong
  17419, // document too large after update
]);

const MAX_ERRORS_KEPT = 100;

function partitionOf(id, count) {
  const { EJSON } = loadDriver().BSON;
  const digest = createHash('sha256')
    .update(EJSON.stringify(id, { relaxed: false }))
    .digest();
  return digest.readUInt32BE(0) % count;
}

/** Top-level projection for the fields (dotted projections through arrays differ between servers). */
function projectionFor(fields) {
  const projection = {};
  for (const f of fields) projection[f.split('.')[0]] = 1;
  return projection;
}

/** The value at a concrete dotted path (with array indexes), for checking that a path is addressable. */
function resolve(doc, where) {
  let node = doc;
  for (const part of where.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = node[part];
  }
  return node;
}

/** The condition for one read value (see the header). */
function casCondition(value) {
  return { $eq: value, $not: { $type: 'array' } };
}

function newFieldStats() {
  return {
    plaintext: 0,
    empty: 0,
    encrypted: {},
    malformed: 0,
    unsupported: 0,
    changed: 0,
    errors: 0,
    // Of the encrypted values of a bound field, as `bind` and `status` find them.
    bound: 0,
    unbound: 0,
  };
}

function newTotals(fields, newStats = newFieldStats) {
  const perField = {};
  for (const f of fields) perField[f] = newStats();
  return { scanned: 0, documents: 0, updated: 0, conflicts: 0, vanished: 0, errors: 0, fields: perField };
}

/** Adds the counts of `from` into `into`: every number, and every object of numbers (counts by key version). */
function addCounts(into, from) {
  for (const [k, v] of Object.entries(from || {})) {
    if (typeof v === 'number') into[k] = (into[k] || 0) + v;
    else if (v !== null && typeof v === 'object') addCounts((into[k] ??= {}), v);
  }
  return into;
}

/** Adds counts `b` into `a` (both totals objects). */
function addTotals(a, b) {
  for (const k of ['scanned', 'documents', 'updated', 'conflicts', 'vanished', 'errors']) a[k] += b[k] || 0;
  for (const [f, s] of Object.entries(b.fields || {})) addCounts((a.fields[f] ??= newFieldStats()), s);
  return a;
}

function serverErrorText(err) {
  // Server messages can quote values (a duplicate key error does): keep only code and name.
  return `server error ${err.code}${err.codeName ? ` (${err.codeName})` : ''}`;
}

/**
 * Runs the loop over one collection.
 *
 * @param {object} o
 * @param {import('mongodb').Collection} o.coll
 * @param {string[]} o.fields
 * @param {(value, { field, id }) => {kind, action, value?, version?, binding?}} o.transform
 * @param {object} o.opts   parsed options (batchSize, concurrency, limit, partition, maxRetries, dryRun)
 * @param {object} [o.start]  { lastId, totals } of the checkpoint to continue after
 * @param {import('./checkpoint').CheckpointStore} [o.checkpoint]  saved after each batch (not in dry runs)
 * @param {import('./progress').Progress} [o.progress]
 * @param {{requested: boolean}} o.stop   set `requested` to stop after the batches in flight
 * @param {(error) => void} [o.onError]  called for each value or document error
 * @param {(doc) => {filter, update, seen, valueErrors, changes}} [o.planDoc]  instead of `transform`: a
 *   document's whole update (`reindex`, lib/cli/reindex.js); `seen` entries count like a transform's results
 * @param {() => object} [o.newStats]  a field's empty counts, for `planDoc` commands
 * @param {object} [o.projection]  what to read of each document (default: the fields' top-level paths)
 * @returns {Promise<{ totals, status: 'done'|'limit'|'interrupted', lastId, errors }>}
 */
async function runScan({
  coll,
  fields,
  transform,
  planDoc,
  newStats,
  projection = projectionFor(fields),
  opts,
  start,
  checkpoint,
  progress,
  stop,
  onError = () => {},
}) {
  // What earlier runs (that this one resumes) did, for the checkpoint's running totals.
  const carried = start && start.totals ? start.totals : undefined;
  const cumulative = () => (carried ? addTotals(addTotals(newTotals(fields, newStats), carried), totals) : totals);
  const needsAddressCheck = fields.some((f) => f.split('.').includes('$*'));
  const totals = newTotals(fields, newStats);
  const errors = [];
  const { partition, batchSize, concurrency, limit, maxRetries, dryRun } = opts;

  function recordError(error) {
    totals.errors++;
    if (error.field) totals.fields[error.field].errors++;
    if (errors.length < MAX_ERRORS_KEPT) errors.push(error);
    onError(error);
  }

  /** Computes a document's update; throws only for errors that must stop the run (a missing key). */
  function plan(doc) {
    const filter = { _id: doc._id };
    const set = {};
    const seen = [];
    const valueErrors = [];
    let changes = 0;
    for (const field of fields) {
      forEachAtPath(doc, field, (value, _set, where) => {
        if (needsAddressCheck && resolve(doc, where) !== value) {
          valueErrors.push({
            id: formatId(doc._id),
            field,
            path: where,
            code: 'ERR_FIELDCRYPT_CLI_PATH',
            message: 'a key on this path contains "." or starts with "$", so it cannot be written by path',
          });
          return;
        }
        let r;
        try {
          r = transform(value, { field, id: doc._id });
        } catch (err) {
          if (err && err.code === codes.KEY_NOT_FOUND) throw err;
          valueErrors.push({
            id: formatId(doc._id),
            field,
            path: where,
            code: err.code || 'ERR',
            message: err.message,
          });
          return;
        }
        seen.push({ field, r });
        if (r.action === 'change') {
          changes++;
          filter[where] = casCondition(value);
          set[where] = r.value;
        }
      });
    }
    return { filter, set, seen, valueErrors, changes };
  }

  function record(p, batchTotals) {
    for (const { field, r } of p.seen) {
      const s = batchTotals.fields[field];
      if (r.kind === 'encrypted') {
        const v = r.version || '??';
        s.encrypted[v] = (s.encrypted[v] || 0) + 1;
        if (r.binding) s[r.binding]++;
      } else if (r.kind === 'old') {
        // reindex: an index value under an old index-key version
        s.old[r.version] = (s.old[r.version] || 0) + 1;
      } else {
        s[r.kind] = (s[r.kind] || 0) + 1;
      }
      if (r.action === 'change') s.changed++;
    }
    for (const e of p.valueErrors) recordError(e);
  }

  const live = { done: 0, changed: 0 };
  function tick(docs, changes) {
    live.done += docs;
    live.changed += changes;
    if (progress) progress.update(live.done, live.changed);
  }

  async function processDoc(doc, batchTotals) {
    const changedBefore = Object.values(batchTotals.fields).reduce((n, s) => n + s.changed, 0);
    try {
      await processDocOnce(doc, batchTotals);
    } finally {
      tick(1, Object.values(batchTotals.fields).reduce((n, s) => n + s.changed, 0) - changedBefore);
    }
  }

  async function processDocOnce(doc, batchTotals) {
    let current = doc;
    for (let attempt = 0; ; attempt++) {
      const p = planDoc ? planDoc(current) : plan(current);
      if (dryRun || p.changes === 0) {
        record(p, batchTotals);
        return;
      }
      let res;
      try {
        res = await coll.updateOne(p.filter, p.update || { $set: p.set });
      } catch (err) {
        if (err && err.name === 'MongoServerError' && PER_DOCUMENT_SERVER_ERRORS.has(err.code)) {
          record({ ...p, seen: p.seen.map(({ field, r }) => ({ field, r: { ...r, action: 'skip' } })) }, batchTotals);
          recordError({
            id: formatId(doc._id),
            field: null,
            path: null,
            code: `MONGO_${err.code}`,
            message: serverErrorText(err),
          });
          return;
        }
        throw err;
      }
      if (res.matchedCount === 1) {
        record(p, batchTotals);
        batchTotals.updated++;
        return;
      }
      batchTotals.conflicts++;
      if (attempt >= maxRetries) {
        recordError({
          id: formatId(doc._id),
          field: null,
          path: null,
          code: 'ERR_FIELDCRYPT_CLI_CONFLICT',
          message: `gave up after ${attempt + 1} concurrent writes to this document; rerun to retry it`,
        });
        return;
      }
      current = await coll.findOne({ _id: doc._id }, { projection });
      if (!current) {
        batchTotals.vanished++;
        return;
      }
    }
  }

  async function processBatch(batch) {
    const batchTotals = newTotals(fields, newStats);
    tick(batch.scanned - batch.docs.length, 0); // other partitions' documents
    for (const doc of batch.docs) await processDoc(doc, batchTotals);
    batchTotals.scanned = batch.scanned;
    batchTotals.documents = batch.docs.length;
    return batchTotals;
  }

  // --- reading, dispatching and checkpointing -----------------------------

  const filter = start && start.lastId !== undefined ? { _id: { $gt: start.lastId } } : {};
  const cursor = coll.find(filter, { projection, sort: { _id: 1 }, batchSize: Math.min(batchSize, 1000) });

  const inflight = new Set();
  const pending = []; // batches in dispatch order, until checkpointed
  let failure;
  let committedId = start ? start.lastId : undefined;
  let status = 'done';

  function advance() {
    let moved = false;
    while (pending.length && pending[0].totals) {
      const b = pending.shift();
      addTotals(totals, b.totals);
      committedId = b.lastId;
      moved = true;
    }
    if (moved && checkpoint && !dryRun) {
      checkpoint.save({ lastId: committedId, status: 'running', totals: cumulative() }).catch((err) => {
        failure ??= err;
        stop.requested = true;
      });
    }
  }

  /** Starts a batch once a slot is free; false (nothing started) after a stop or a failure. */
  async function dispatch(batch) {
    while (inflight.size >= concurrency) await Promise.race(inflight);
    if (failure || stop.requested) return false;
    pending.push(batch);
    const p = processBatch(batch).then(
      (batchTotals) => {
        batch.totals = batchTotals;
        advance();
      },
      (err) => {
        failure ??= err;
        stop.requested = true;
      },
    );
    inflight.add(p);
    p.finally(() => inflight.delete(p));
    return true;
  }

  let batch = { docs: [], scanned: 0, lastId: undefined };
  let examined = 0;
  let exhausted = false;
  const flushAfterScanned = batchSize * (partition ? partition.count : 1);
  try {
    for await (const doc of cursor) {
      if (stop.requested) {
        status = 'interrupted';
        break;
      }
      batch.scanned++;
      batch.lastId = doc._id;
      if (!partition || partitionOf(doc._id, partition.count) === partition.index) {
        batch.docs.push(doc);
        examined++;
      }
      const atLimit = limit !== undefined && examined >= limit;
      if (batch.docs.length >= batchSize || batch.scanned >= flushAfterScanned || atLimit) {
        if (!(await dispatch(batch))) {
          status = 'interrupted';
          break;
        }
        batch = { docs: [], scanned: 0, lastId: undefined };
      }
      if (atLimit) {
        status = 'limit';
        break;
      }
    }
    if (status === 'done') {
      exhausted = batch.scanned === 0 || (await dispatch(batch));
    }
  } catch (err) {
    failure ??= err;
  } finally {
    await Promise.allSettled([...inflight]);
    await cursor.close().catch(() => {});
  }
  if (status === 'done' && (!exhausted || failure || pending.length)) status = 'interrupted';
  if (checkpoint && !dryRun) {
    await checkpoint.save({
      lastId: committedId,
      status: failure ? 'failed' : status,
      totals: cumulative(),
      ...(status === 'done' && !failure ? { finishedAt: new Date() } : {}),
    });
  }
  if (failure) {
    failure.scanTotals = totals;
    throw failure;
  }
  return { totals, status, lastId: committedId, errors };
}

module.exports = {
  runScan,
  partitionOf,
  projectionFor,
  newTotals,
  addTotals,
  casCondition,
  MAX_ERRORS_KEPT,
};
