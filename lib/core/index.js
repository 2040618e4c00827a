'use strict';

/**
 * The core API without Mongoose: single values, Buffers and batches. Every
 * function here goes to the native addon; see the modules it re-exports.
 */

module.exports = require('./api');
