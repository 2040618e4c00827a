'use strict';

/**
 * The core API without Mongoose: single values and Buffers (single.js), sync
 * batches (batch.js) and async batches (batch-async.js). Every function goes
 * to the native addon (native.js); keys are managed by keys.js.
 */

const single = require('./single');
const { encryptMany, decryptMany } = require('./batch');
const { encryptManyAsync, decryptManyAsync } = require('./batch-async');

module.exports = { ...single, encryptMany, decryptMany, encryptManyAsync, decryptManyAsync };
