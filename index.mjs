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
  loadKeyVault,
  encryptFieldIfModified,
  createDecryptMethod,
  createDecryptedGetter,
  nativeInfo,
  fieldEncryption,
  decryptDocument,
  encryptedPaths,
  FieldCryptError,
  errorCodes,
} = fieldcrypt;

export default fieldcrypt;
