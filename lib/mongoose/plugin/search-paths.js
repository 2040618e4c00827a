'use strict';

/**
 * TEMP shim (issue 20, search-cli): a minimal searchablePaths() per the shared
 * contract, from the schema option `searchable` of encrypted paths only, so
 * the CLI can be built before search-writes lands. The lead drops it at merge.
 */

const { indexOf } = require('./path-index');

const INDEX_SUFFIX = '_bidx';
const NORMALISERS = ['trim', 'lowercase', 'collapseWhitespace', 'normalize'];

function searchablePaths(modelOrSchema) {
  const schema = typeof modelOrSchema === 'function' && modelOrSchema.schema ? modelOrSchema.schema : modelOrSchema;
  const out = [];
  for (const leaf of indexOf(schema).leafList) {
    const option = leaf.schemaType && leaf.schemaType.options ? leaf.schemaType.options.searchable : undefined;
    if (!option) continue;
    const normalize = {};
    if (typeof option === 'object') for (const k of NORMALISERS) if (option[k] !== undefined) normalize[k] = option[k];
    const instance = leaf.schemaType.instance;
    const kind = leaf.element ? 'array' : instance === 'Mixed' || instance === 'Array' ? 'container' : 'scalar';
    out.push({
      path: leaf.path,
      indexPath: leaf.path + INDEX_SUFFIX,
      kind,
      unique: Boolean(option.unique),
      normalize,
    });
  }
  return out;
}

module.exports = { searchablePaths, INDEX_SUFFIX };
