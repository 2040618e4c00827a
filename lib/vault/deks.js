'use strict';

/**
 * Operations on DEK documents that the loader and the CLI share: creating a
 * DEK, and rewrapping one under another master key.
 *
 * Invariants: a DEK's bytes never change once created (stored values under
 * its version keep decrypting); a rewrap replaces keyMaterial and masterKey
 * only after the new wrapping was unwrapped (verified), with a
 * compare-and-swap on the document's previous keyMaterial and updateDate,
 * so a concurrent rewrap or edit is never overwritten, and rerunning a
 * rewrap skips DEKs already under the target master key.
 */

const { vaultError, idBytes, idHex, materialOf, checkDoc, describe } = require('./store');

/** The reference to a DEK the providers take. */
function refOf(doc, namespace) {
  return { id: idBytes(doc), idHex: idHex(doc), version: doc.version, purpose: doc.purpose, namespace };
}

/**
 * Creates a DEK under `provider` (resolved) and `masterKey`, at `version`
 * (default: the next free one of its purpose): a new random key, or with
 * `fromEnv` the 64-hex key of that environment variable (read inside the
 * addon), so values already stored under that version keep decrypting.
 * Resolves with the inserted document.
 */
async function createDataKey(
  vault,
  provider,
  { masterKey, version, keyAltNames, purpose = 'encryption', status = 'active', fromEnv },
) {
  const { coll, namespace, bson } = vault;
  if (version === undefined) {
    const used = await coll.find({ purpose }, { projection: { version: 1 } }).toArray();
    const max = used.reduce((m, d) => Math.max(m, Number(d.version) || 0), 0);
    if (max >= 99) throw vaultError(`every key version 01..99 of purpose ${purpose} is taken`);
    version = String(max + 1).padStart(2, '0');
  }
  const now = new Date();
  const doc = {
    _id: new bson.UUID().toBinary(),
    keyAltNames: keyAltNames && keyAltNames.length ? keyAltNames : [`${purpose}-${version}`],
    version,
    purpose,
    status,
    masterKey,
    creationDate: now,
    updateDate: now,
    usage: { encryptions: 0 },
  };
  const ref = refOf(doc, namespace);
  const material = fromEnv ? await provider.importEnv(fromEnv, masterKey, ref) : await provider.create(masterKey, ref);
  doc.keyMaterial = new bson.Binary(material);
  checkDoc(doc);
  try {
    await coll.insertOne(doc);
  } catch (err) {
    if (err && err.code === 11000) {
      throw vaultError(
        `key version ${version} (${purpose}) or one of the alternate names already exists in the vault`,
        err,
      );
    }
    throw err;
  }
  return doc;
}

/**
 * Rewraps one DEK under `to` (a resolved provider) and `toMasterKey`.
 * Resolves with 'rewrapped', or 'skipped' when it already is under that key.
 */
async function rewrapDataKey(vault, providers, doc, to, toMasterKey) {
  const { coll, namespace } = vault;
  checkDoc(doc);
  if (to.sameKey(doc.masterKey, toMasterKey)) return 'skipped';
  const from = providers(doc.masterKey.provider);
  const ref = refOf(doc, namespace);
  const material = materialOf(doc);
  let next = from.rewrapTo ? await from.rewrapTo(to, material, doc.masterKey, toMasterKey, ref) : undefined;
  if (next === undefined) {
    const plain = await from.unwrapBytes(material, doc.masterKey, ref);
    next = await to.wrapBytes(plain, toMasterKey, ref); // zero-fills plain
  }
  // Verified before it replaces anything: the new wrapping must unwrap.
  await to.verify(next, toMasterKey, ref);
  const { bson } = vault;
  const result = await coll.updateOne(
    { _id: doc._id, keyMaterial: doc.keyMaterial, updateDate: doc.updateDate },
    { $set: { keyMaterial: new bson.Binary(next), masterKey: toMasterKey, updateDate: new Date() } },
  );
  if (result.matchedCount !== 1) {
    throw vaultError(
      `${describe(doc)} changed while it was being rewrapped; nothing was replaced, run the rewrap again`,
    );
  }
  return 'rewrapped';
}

module.exports = { refOf, createDataKey, rewrapDataKey };
