'use strict';

/**
 * Reads of hydrated documents: the init hook decrypts the raw document
 * before Mongoose casts it into the document (find, findOne, findById,
 * findOneAnd* results, cursors, populate, Model.hydrate()); the
 * `doc.decryptField(path)` method reads one path on demand (the way to read
 * in explicit mode). Each factory takes the plugin's `{ options, auto }`.
 *
 * Invariants: in auto mode a loaded document holds plaintext, and the
 * stored ciphertext of each value is remembered (PRINTS) so an unchanged
 * value is written back byte-identical; in explicit mode it holds ciphertext.
 */

const { isEncrypted } = require('../../../core');
const { codes, FieldCryptError, describeType } = require('../../../core/errors');
const { named, isSubdocument, selectedFieldsOf } = require('../../compat');
const { normalizeKey } = require('../path-index');
const { documentContext, readContext } = require('../context');
const { decryptLeaf, decryptPlain } = require('../values');
const { stripIndexValues } = require('../search-paths');
const { PRINTS } = require('../state');

function decryptOnInit({ options, auto }) {
  return named('fieldcryptDecryptOnInit', function (raw) {
    if (isSubdocument(this) || !raw || typeof raw !== 'object') return;
    const ctx = readContext(options, this, raw._id);
    // Blind-index values stay in the database unless the query names them (issue 20).
    stripIndexValues(ctx.index, raw, selectedFieldsOf(this));
    if (!auto) return;
    const prints = new Map();
    decryptPlain(ctx, ctx.index, raw, prints);
    PRINTS.set(this, prints);
  });
}

/**
 * doc.decryptField(path): the plaintext of one encrypted path (a concrete
 * path such as 'ids.0.idNumber' works); in explicit mode the way to read.
 */
function decryptFieldMethod({ options, auto }) {
  return function decryptField(path) {
    if (typeof path !== 'string' || path === '') {
      throw new FieldCryptError(
        codes.INVALID_ARGUMENT,
        `decryptField() expects a path such as 'ssn', got ${describeType(path)}`,
      );
    }
    const ctx = documentContext(options, this);
    const leaf = ctx.index.leaves.get(normalizeKey(ctx.index, path).path);
    if (!leaf)
      throw new FieldCryptError(
        codes.INVALID_ARGUMENT,
        `decryptField('${path}'): not an encrypted path of ${ctx.modelName || 'this schema'}`,
      );
    const value = this.get(path, null, { getters: false });
    const decrypt = (v) => (isEncrypted(v) || !auto ? decryptLeaf(ctx, leaf, v) : v);
    return Array.isArray(value) ? value.map(decrypt) : decrypt(value);
  };
}

module.exports = { decryptOnInit, decryptFieldMethod };
