'use strict';

/**
 * Schema types that hold ciphertext. Every encrypted path stores a
 * `VV:IV:TAG:CT` string whatever its declared type, so a Number path holds a
 * string in the database (and, between encryption and the write, in the
 * document). Rather than re-declaring those paths as String (which would
 * lose casting and validation of the plaintext), each encrypted SchemaType
 * instance lets a well-formed ciphertext string through `cast`,
 * `applySetters` and `castForQuery` unchanged, and validates the decrypted
 * value.
 *
 * Invariants: the schema stays as declared and Mongoose's own casting of the
 * plaintext still applies; each SchemaType instance is patched once; a
 * plaintext assigned to a document while the plugin writes it is encrypted
 * as it is assigned, never stored in clear.
 */

const { isEncrypted } = require('../../core');
const { encodeValue, decodeValue } = require('../../core/codec');
const { isDocument, rootDocument, validateConverted } = require('../compat');
const { audit } = require('./values');
const { writeOptions, decodeForValidation } = require('./binding');
const { registerSubdocumentLeaves } = require('./output');
const { indexLateValue } = require('./search-writes');
const { PATCHED, PREPARED, WRITING, TYPE_LEAVES } = require('./state');

/**
 * Lets `schemaType` hold a ciphertext string: `cast`, `applySetters` and
 * `castForQuery` pass a well-formed `VV:IV:TAG:CT` string through unchanged (everything else is
 * cast as declared), and validators see the decrypted value. Validation of
 * ciphertext happens where Mongoose validates after the plugin encrypted:
 * insertMany, bulkWrite inserts, update validators (`runValidators`).
 */
function acceptCiphertext(schemaType, getBson) {
  if (schemaType[PATCHED]) return;
  const { cast, applySetters, castForQuery } = schemaType;
  const buffer = schemaType.instance === 'Buffer';
  // A bound value is decrypted with the context of the document (or query) validated.
  const plain = (value, scope) => {
    const leaf = TYPE_LEAVES.get(schemaType);
    if (leaf === undefined || !leaf.bind) return decodeValue(value, getBson(), { buffer });
    return decodeForValidation(leaf, value, scope, getBson(), buffer);
  };
  Object.defineProperty(schemaType, PATCHED, { value: true });
  schemaType.cast = function castKeepingCiphertext(value, scope, ...rest) {
    return isEncrypted(value) ? value : sealDuringWrite(this, cast.call(this, value, scope, ...rest), scope);
  };
  schemaType.applySetters = function applySettersKeepingCiphertext(value, scope, ...rest) {
    return isEncrypted(value) ? value : sealDuringWrite(this, applySetters.call(this, value, scope, ...rest), scope);
  };
  // Some types post-process what applySetters returns (Buffer calls toObject()).
  schemaType.castForQuery = function castForQueryKeepingCiphertext(conditional, value, ...rest) {
    if ((conditional === null || conditional === undefined) && isEncrypted(value)) return value;
    return castForQuery.call(this, conditional, value, ...rest);
  };
  validateConverted(schemaType, isEncrypted, plain);
}

/**
 * A value assigned to an encrypted path of a document while the plugin is
 * writing it (after the plugin's pre('save') hook: another pre('save')
 * hook registered after the plugin, a pre('validate') hook during
 * insertMany) is encrypted as it is assigned. Hooks run in registration
 * order and the plugin cannot make its own hook the last one, so this keeps
 * such a late plaintext from being stored in clear; settleLive() puts the
 * plaintext back after the write.
 */
function sealDuringWrite(schemaType, value, scope) {
  if (value === null || value === undefined || isEncrypted(value) || !isDocument(scope)) return value;
  const root = rootDocument(scope);
  const state = WRITING.get(root);
  if (!state) return value;
  const leaf = TYPE_LEAVES.get(schemaType);
  const stored =
    leaf !== undefined && leaf.bind
      ? encodeValue(value, state.ctx.bson, writeOptions(state.ctx, leaf))
      : encodeValue(value, state.ctx.bson);
  audit(state.ctx, 'onEncrypt', leaf ? leaf.path : schemaType.path, stored);
  if (leaf !== undefined && leaf.search) indexLateValue(state.ctx, leaf, scope, schemaType.path, value);
  state.late.set(stored, value);
  return stored;
}

/** Patches the encrypted SchemaTypes of an index (once); `getBson` is called when a validator needs to decrypt. */
function prepareSchema(index, getBson) {
  if (PREPARED.has(index)) return;
  for (const leaf of index.leafList) {
    acceptCiphertext(leaf.schemaType, getBson);
    if (!TYPE_LEAVES.has(leaf.schemaType)) TYPE_LEAVES.set(leaf.schemaType, leaf);
  }
  registerSubdocumentLeaves(index);
  PREPARED.add(index);
}

module.exports = { prepareSchema };
