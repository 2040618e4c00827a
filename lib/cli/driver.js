'use strict';

/**
 * The MongoDB driver the CLI talks through. fieldcrypt has no dependency on
 * it: apps that use fieldcrypt with Mongoose already have it (Mongoose depends
 * on `mongodb`), so the CLI takes `mongodb` if it resolves, else the copy
 * Mongoose exports as `mongoose.mongo`.
 */

const { UsageError } = require('./args');

let driver;

function loadDriver() {
  if (driver) return driver;
  try {
    driver = require('mongodb');
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND') throw err;
    try {
      driver = require('mongoose').mongo;
    } catch (err2) {
      if (err2.code !== 'MODULE_NOT_FOUND') throw err2;
      throw new UsageError('the fieldcrypt CLI needs the MongoDB driver: install mongoose or mongodb in this project');
    }
  }
  return driver;
}

/** The database named in a connection string's path, if any. */
function dbNameFromUri(uri) {
  const m = /^mongodb(?:\+srv)?:\/\/[^/?]*\/([^?]+)/.exec(uri);
  return m ? decodeURIComponent(m[1]) : undefined;
}

/** The URI with any password replaced by ****, for messages. */
function redactUri(uri) {
  return uri.replace(/^(mongodb(?:\+srv)?:\/\/[^:/@]*:)[^@/]*@/, '$1****@');
}

async function connect(uri) {
  const { MongoClient } = loadDriver();
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 15_000 });
  await client.connect();
  return client;
}

/** An `_id` for messages: ObjectId("…"), a JSON string or number, or EJSON. */
function formatId(id) {
  const { BSON, ObjectId } = loadDriver();
  const { EJSON } = BSON;
  if (id instanceof ObjectId) return `ObjectId("${id.toHexString()}")`;
  if (typeof id === 'string' || typeof id === 'number') return JSON.stringify(id);
  return EJSON.stringify(id, { relaxed: true });
}

module.exports = { loadDriver, dbNameFromUri, redactUri, connect, formatId };
