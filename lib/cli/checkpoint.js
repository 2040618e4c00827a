'use strict';

/**
 * Checkpoints: one document per run kind in the `fieldcrypt_checkpoints`
 * collection of the target database, keyed by command, collection, fields,
 * target version and partition. It holds the last `_id` up to which every
 * document has been processed (documents are processed in `_id` order), and
 * is written after each batch. `--resume` continues after it. Losing a
 * checkpoint write (a crash) only means redoing some documents, which is safe:
 * every step is idempotent.
 */

const COLLECTION = 'fieldcrypt_checkpoints';

/**
 * Totals as stored: per-field counts as an array, since field paths contain
 * dots and stored keys may not.
 */
function totalsToStored(totals) {
  const { fields, ...rest } = totals;
  return { ...rest, fields: Object.entries(fields).map(([field, counts]) => ({ field, ...counts })) };
}

function totalsFromStored(stored) {
  if (!stored || !Array.isArray(stored.fields)) return undefined;
  const { fields, ...rest } = stored;
  const out = { ...rest, fields: {} };
  for (const { field, ...counts } of fields) out.fields[field] = counts;
  return out;
}

function checkpointKey({ command, collection, fields, to, partition, bindings }) {
  const parts = [command, collection, [...fields].sort().join(',')];
  if (to) parts.push(`to=${to}`);
  const bound = Object.entries(bindings || {}).sort(([a], [b]) => (a < b ? -1 : 1));
  if (bound.length) parts.push(`bind=${bound.map(([f, mode]) => `${f}:${mode}`).join(',')}`);
  parts.push(partition ? `partition=${partition.index}/${partition.count}` : 'partition=all');
  return parts.join('|');
}

class CheckpointStore {
  constructor(db, identity) {
    this.coll = db.collection(COLLECTION);
    this.key = checkpointKey(identity);
    this.identity = identity;
    this.chain = Promise.resolve();
  }

  /** The saved checkpoint ({ lastId, status, totals, … }) or null. */
  async load() {
    const saved = await this.coll.findOne({ _id: this.key });
    if (saved) saved.totals = totalsFromStored(saved.totals);
    return saved;
  }

  /**
   * Saves { lastId, status, totals } (writes are serialized, in call order).
   * lastId undefined leaves the stored one.
   */
  save(fields) {
    const { command, collection, fields: paths, to, partition } = this.identity;
    const $set = {
      command,
      collection,
      fields: paths,
      to: to || null,
      partition: partition || null,
      updatedAt: new Date(),
      ...fields,
    };
    if ($set.lastId === undefined) delete $set.lastId;
    if ($set.totals) $set.totals = totalsToStored($set.totals);
    this.chain = this.chain
      .catch(() => {})
      .then(() =>
        this.coll.updateOne({ _id: this.key }, { $set, $setOnInsert: { startedAt: new Date() } }, { upsert: true }),
      )
      .catch((err) => {
        err.operation = 'saving the checkpoint';
        throw err;
      });
    return this.chain;
  }

  async reset() {
    await this.chain;
    await this.coll.deleteOne({ _id: this.key });
  }
}

module.exports = { CheckpointStore, checkpointKey, COLLECTION, totalsToStored, totalsFromStored };
