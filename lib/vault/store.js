'use strict';

/**
 * The key vault collection: one document per data key (DEK), in CSFLE's
 * shape where it has one:
 *
 *   { _id: UUID (Binary subtype 4), keyAltNames: ['…'], version: '02',
 *     purpose: 'encryption' | 'index', status: 'active' | 'decrypt-only' | 'retired',
 *     keyMaterial: Binary (the wrapped DEK), masterKey: { provider, …params },
 *     creationDate, updateDate, usage: { encryptions } }
 *
 * Invariants: keyAltNames are unique (a unique index; a DEK created without
 * one gets `<purpose>-<version>`, so the index needs no partial filter);
 * (purpose, version) is unique, so a version never names two keys. Writes
 * to a DEK document compare-and-swap on its keyMaterial and updateDate.
 */

const { codes, FieldCryptError } = require('../core/errors');

const DEFAULT_NAMESPACE = 'encryption.__keyVault';
const PURPOSES = ['encryption', 'index'];
const STATUSES = ['active', 'decrypt-only', 'retired'];

function vaultError(message, cause) {
  const err = new FieldCryptError(codes.KEY_VAULT, `Key vault: ${message}`);
  if (cause) err.cause = cause;
  return err;
}

/** { db, collection } of a "db.collection" namespace. */
function parseNamespace(ns = DEFAULT_NAMESPACE) {
  const dot = typeof ns === 'string' ? ns.indexOf('.') : -1;
  if (dot < 1 || dot === ns.length - 1) {
    throw vaultError(`keyVaultNamespace must be "database.collection" (default ${DEFAULT_NAMESPACE})`);
  }
  return { db: ns.slice(0, dot), collection: ns.slice(dot + 1) };
}

/**
 * Opens the vault collection: `connection` (a Mongoose connection or a
 * MongoClient) or `uri`. Resolves with { coll, namespace, close }; close()
 * closes only a client opened here.
 */
async function openVault({ keyVaultNamespace = DEFAULT_NAMESPACE, connection, uri }) {
  const { db, collection } = parseNamespace(keyVaultNamespace);
  let client;
  let owned = false;
  // The BSON classes of the driver the client belongs to (Mongoose 8 and 9 bring different majors).
  let driver = connection && connection.base && connection.base.mongo;
  if (connection && typeof connection.getClient === 'function') client = connection.getClient();
  else if (connection && typeof connection.db === 'function') client = connection;
  else if (typeof uri === 'string') {
    const { MongoClient } = require('../cli/driver').loadDriver();
    client = new MongoClient(uri, { serverSelectionTimeoutMS: 15_000 });
    await client.connect();
    owned = true;
  } else {
    throw vaultError('pass connection (a Mongoose connection or MongoClient) or uri');
  }
  driver ??= require('../cli/driver').loadDriver();
  const coll = client.db(db).collection(collection);
  return {
    coll,
    namespace: keyVaultNamespace,
    bson: { Binary: driver.Binary, UUID: driver.UUID },
    close: () => (owned ? client.close() : undefined),
  };
}

/** Creates the vault's unique indexes (idempotent). */
async function ensureIndexes(coll) {
  await coll.createIndex({ keyAltNames: 1 }, { unique: true, name: 'keyAltNames_unique' });
  await coll.createIndex({ purpose: 1, version: 1 }, { unique: true, name: 'purpose_version_unique' });
}

/** A DEK id as 32 hex digits (for encryption contexts and messages). */
function idHex(doc) {
  return Buffer.from(idBytes(doc)).toString('hex');
}

/** A DEK id's 16 bytes. */
function idBytes(doc) {
  const id = doc._id;
  const bytes = id && (id.buffer instanceof Uint8Array ? id.buffer : id.buffer?.buffer);
  if (!(bytes instanceof Uint8Array) || bytes.length !== 16) {
    throw vaultError('a key vault document has an _id that is not a 16-byte UUID');
  }
  return bytes;
}

/** The wrapped key's bytes. */
function materialOf(doc) {
  const km = doc.keyMaterial;
  const bytes = km && (km.buffer instanceof Uint8Array ? km.buffer : km);
  if (!(bytes instanceof Uint8Array)) throw vaultError(`the DEK of key version ${doc.version} has no keyMaterial`);
  return bytes;
}

/** Checks a document's fields; returns it. */
function checkDoc(doc) {
  if (!/^\d\d$/.test(doc.version) || doc.version === '00') {
    throw vaultError(`a key vault document has an invalid version (expected 01 to 99)`);
  }
  if (!PURPOSES.includes(doc.purpose)) throw vaultError(`the DEK of key version ${doc.version} has no valid purpose`);
  if (!STATUSES.includes(doc.status)) throw vaultError(`the DEK of key version ${doc.version} has no valid status`);
  if (!doc.masterKey || typeof doc.masterKey.provider !== 'string') {
    throw vaultError(`the DEK of key version ${doc.version} has no masterKey.provider`);
  }
  idBytes(doc);
  materialOf(doc);
  return doc;
}

/** A short name for a DEK in messages. */
function describe(doc) {
  return `key version ${doc.version} (DEK ${idHex(doc)}, ${doc.purpose})`;
}

module.exports = {
  DEFAULT_NAMESPACE,
  PURPOSES,
  STATUSES,
  vaultError,
  parseNamespace,
  openVault,
  ensureIndexes,
  idHex,
  idBytes,
  materialOf,
  checkDoc,
  describe,
};
