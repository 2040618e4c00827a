'use strict';

/**
 * Blind indexes (issue 20) on the read side of the plugin's own hooks: lean
 * results carry no index values unless the query's projection names them,
 * as hydrated documents (hooks/reads.js, the init hook). Query rewriting of
 * filters is filters.js's.
 */

const { named, mongooseHook, isDocument } = require('../../compat');
const { queryIndex } = require('../path-index');
const { stripIndexValues } = require('../search-paths');

/** Query operations whose lean results are documents. */
const LEAN_DOCUMENT_OPS = ['find', 'findOne', 'findOneAndDelete', 'findOneAndUpdate', 'findOneAndReplace'];

function stripLeanIndexValues() {
  return mongooseHook('fieldcryptStripLeanIndexValues', (query) => {
    if (!query.mongooseOptions().lean) return;
    const index = queryIndex(query.model, query.getFilter());
    if (index.search.size === 0) return;
    const projection = query.projection() || undefined;
    const strip = (result) => {
      if (result === null || typeof result !== 'object' || isDocument(result)) return;
      if (Array.isArray(result)) {
        result.forEach(strip);
      } else if (Object.hasOwn(result, 'value') && Object.hasOwn(result, 'ok') && !Object.hasOwn(result, '_id')) {
        strip(result.value); // a driver ModifyResult (includeResultMetadata)
      } else {
        stripIndexValues(index, result, projection);
      }
    };
    query.transform(
      named('fieldcryptStripIndexValues', (result) => {
        strip(result);
        return result;
      }),
    );
  });
}

module.exports = { LEAN_DOCUMENT_OPS, stripLeanIndexValues };
