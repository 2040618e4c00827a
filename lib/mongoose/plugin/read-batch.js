'use strict';

/**
 * Decrypting a result set's values together: decryptPlain (values.js) hands
 * the values of String leaves to a ReadBatch, and flush() decrypts each
 * group of values that share a context with one decryptMany() call (which
 * crosses into the addon once per ~60 KiB of values) before putting them in
 * place. Used for lean results and raw documents (reads.js).
 *
 * Invariants: a batch only groups values read with the same context: values
 * of unbound leaves together, values of a collection-bound leaf together;
 * values of document-bound leaves never come here (their context differs
 * per document). A group that does not decrypt as a whole (a plaintext
 * under allowUnencrypted, an unbound value under allowUnbound, a typed value,
 * any error) is decrypted value by value through decryptLeaf, so results,
 * errors (with the failing path) and audit records are the same as one by
 * one; every value is reported to onDecrypt.
 */

const { decryptMany } = require('../../core');
const { leafContext } = require('./binding');
const { decryptLeaf, decryptedText } = require('./values');

/** The group of every unbound leaf's values. */
const UNBOUND = Symbol('fieldcrypt.unbound');

class ReadBatch {
  constructor() {
    // group key (UNBOUND, or a collection-bound leaf) -> the group's entries
    this.groups = new Map();
  }

  /**
   * Queues `stored` (a non-empty string) of `leaf`, read in `ctx`: its result
   * goes to `holder[key]`, or, without a key, to `holder(result)`.
   */
  add(ctx, leaf, stored, holder, key, concretePath) {
    const groupKey = leaf.bind ? leaf : UNBOUND;
    let group = this.groups.get(groupKey);
    if (group === undefined) {
      group = { bound: Boolean(leaf.bind), ctxs: [], leaves: [], values: [], holders: [], keys: [], paths: [] };
      this.groups.set(groupKey, group);
    }
    group.ctxs.push(ctx);
    group.leaves.push(leaf);
    group.values.push(stored);
    group.holders.push(holder);
    group.keys.push(key);
    group.paths.push(concretePath);
  }

  /** Decrypts every queued value and puts it in place; throws as decryptLeaf does. */
  flush() {
    for (const group of this.groups.values()) flushGroup(group);
    this.groups.clear();
  }
}

function flushGroup(group) {
  const { ctxs, leaves, values, holders, keys, paths } = group;
  let texts;
  try {
    // A collection-bound leaf's context is the same for the whole group: one
    // result set comes from one collection.
    texts = group.bound
      ? decryptMany(values, { context: leafContext(ctxs[0], leaves[0], false) })
      : decryptMany(values);
  } catch {
    texts = undefined;
  }
  for (let i = 0; i < values.length; i++) {
    const value =
      texts === undefined
        ? decryptLeaf(ctxs[i], leaves[i], values[i], paths[i])
        : decryptedText(ctxs[i], leaves[i], values[i], texts[i], paths[i]);
    if (keys[i] === undefined) holders[i](value);
    else holders[i][keys[i]] = value;
  }
}

module.exports = { ReadBatch };
