// ESM entry point: the same functions as the CommonJS build.
import fieldcrypt from './index.js';

export const {
  encrypt,
  decrypt,
  encryptBuffer,
  decryptBuffer,
  isEncrypted,
  reEncrypt,
  getKeyVersion,
  encryptMany,
  decryptMany,
  encryptManyAsync,
  decryptManyAsync,
  configureKeys,
  reloadKeys,
  loadedKeyVersions,
  keyUsage,
  onKeyUsage,
  encryptFieldIfModified,
  createDecryptMethod,
  createDecryptedGetter,
  nativeInfo,
  fieldEncryption,
  decryptDocument,
  encryptedPaths,
  searchablePaths,
  FieldCryptError,
  errorCodes,
} = fieldcrypt;

export default fieldcrypt;
