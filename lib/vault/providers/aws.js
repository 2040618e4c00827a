'use strict';

/**
 * The `aws` provider: AWS KMS through @aws-sdk/client-kms (an optional peer
 * dependency, required only when this provider is used).
 *
 *   kmsProviders.aws = { region?, endpoint?, credentials? | accessKeyId, secretAccessKey, sessionToken?,
 *                        maxAttempts? }
 *   masterKey        = { provider: 'aws', key: '<CMK id, ARN or alias>', region?, endpoint? }
 *
 * Without credentials the SDK's default chain applies (environment, shared
 * files, instance roles). Every call carries an encryption context binding
 * the DEK to the key vault and to its id and version, so a wrapped key
 * copied to another document or vault does not unwrap.
 *
 * New DEKs come from GenerateDataKeyWithoutPlaintext: their plaintext never
 * leaves KMS at creation. Unwrapping (Decrypt) has to bring the plaintext
 * into the process: the SDK returns it as a Uint8Array, which goes straight
 * to the addon and is zero-filled there. The SDK's HTTP response buffers it
 * was parsed from are not ours to wipe (see docs/key-vault.md).
 */

const native = require('../../core/native').load();
const { adopt } = require('../../core/errors');
const { unwrappedKeys } = require('./unwrapped');

let sdk;
function loadSdk() {
  if (sdk) return sdk;
  try {
    sdk = require('@aws-sdk/client-kms');
  } catch (err) {
    const { kmsError } = require('./index');
    if (err && err.code === 'MODULE_NOT_FOUND') {
      throw kmsError('the aws provider needs @aws-sdk/client-kms: npm install @aws-sdk/client-kms', err);
    }
    throw err;
  }
  return sdk;
}

/** The encryption context of a DEK. */
function encryptionContext(ref) {
  return {
    'fieldcrypt:keyVault': ref.namespace,
    'fieldcrypt:keyId': ref.idHex,
    'fieldcrypt:version': ref.version,
  };
}

function kms(name, what, err) {
  const { kmsError } = require('./index');
  const detail = err && err.name ? `${err.name}: ${err.message}` : String(err);
  return kmsError(`AWS KMS (provider "${name}") could not ${what}: ${detail}`, err);
}

function create(name, options) {
  const clients = new Map();
  function client(masterKey) {
    const region = (masterKey && masterKey.region) || options.region || process.env.AWS_REGION;
    const endpoint = (masterKey && masterKey.endpoint) || options.endpoint;
    const id = `${region}|${endpoint}`;
    if (!clients.has(id)) {
      const { KMSClient } = loadSdk();
      const credentials =
        options.credentials ||
        (options.accessKeyId
          ? {
              accessKeyId: options.accessKeyId,
              secretAccessKey: options.secretAccessKey,
              sessionToken: options.sessionToken,
            }
          : undefined);
      clients.set(
        id,
        new KMSClient({
          region,
          endpoint,
          credentials,
          ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}),
        }),
      );
    }
    return clients.get(id);
  }
  async function send(masterKey, command, what) {
    try {
      return await client(masterKey).send(command);
    } catch (err) {
      throw kms(name, what, err);
    }
  }
  async function decrypt(keyMaterial, masterKey, ref) {
    const { DecryptCommand } = loadSdk();
    const out = await send(
      masterKey,
      new DecryptCommand({
        CiphertextBlob: keyMaterial,
        KeyId: masterKey.key,
        EncryptionContext: encryptionContext(ref),
      }),
      `unwrap the DEK of key version ${ref.version}`,
    );
    return out.Plaintext;
  }
  /**
   * Before a CMK wraps a DEK (create, rewrap): refuses a CMK that is not
   * Enabled, with a clear error instead of a DEK nobody can unwrap later. A
   * role without kms:DescribeKey skips the check (Encrypt still decides).
   */
  async function checkEnabled(masterKey) {
    const { DescribeKeyCommand } = loadSdk();
    let state;
    try {
      const out = await client(masterKey).send(new DescribeKeyCommand({ KeyId: masterKey.key }));
      state = out.KeyMetadata && out.KeyMetadata.KeyState;
    } catch (err) {
      if (err && err.name === 'AccessDeniedException') return;
      throw kms(name, `find the CMK ${masterKey.key}`, err);
    }
    if (state && state !== 'Enabled') {
      throw kms(name, `use the CMK ${masterKey.key}`, new Error(`the CMK is ${state}; enable it or choose another`));
    }
  }
  function checkMasterKey(masterKey) {
    if (!masterKey || typeof masterKey.key !== 'string' || !masterKey.key) {
      throw kms(name, 'use the master key', new Error('masterKey.key must name the CMK (key id, ARN or alias)'));
    }
  }
  return {
    name,
    type: 'aws',
    masterKeyFor: (params) => {
      checkMasterKey(params);
      return { provider: name, ...params };
    },
    sameKey: (a, b) => a.provider === b.provider && a.key === b.key && a.region === b.region,
    async create(masterKey, ref) {
      checkMasterKey(masterKey);
      await checkEnabled(masterKey);
      const { GenerateDataKeyWithoutPlaintextCommand } = loadSdk();
      const out = await send(
        masterKey,
        new GenerateDataKeyWithoutPlaintextCommand({
          KeyId: masterKey.key,
          KeySpec: 'AES_256',
          EncryptionContext: encryptionContext(ref),
        }),
        `create a DEK for key version ${ref.version}`,
      );
      return Buffer.from(out.CiphertextBlob);
    },
    /** Encrypt of an environment key read by the addon (moving it into the vault). */
    async importEnv(variable, masterKey, ref) {
      const plain = new Uint8Array(32);
      try {
        native.vaultImportInto(variable, ref.version, plain);
      } catch (err) {
        plain.fill(0);
        throw adopt(err);
      }
      return this.wrapBytes(plain, masterKey, ref);
    },
    ...unwrappedKeys(decrypt),
    unwrapBytes: decrypt,
    async wrapBytes(plain, masterKey, ref) {
      const { EncryptCommand } = loadSdk();
      try {
        checkMasterKey(masterKey);
        await checkEnabled(masterKey);
        const out = await send(
          masterKey,
          new EncryptCommand({ KeyId: masterKey.key, Plaintext: plain, EncryptionContext: encryptionContext(ref) }),
          `wrap the DEK of key version ${ref.version}`,
        );
        return Buffer.from(out.CiphertextBlob);
      } finally {
        plain.fill(0);
      }
    },
    /** To another CMK of the same provider: ReEncrypt, the DEK never leaves KMS; else undefined. */
    async rewrapTo(toProvider, keyMaterial, fromMasterKey, toMasterKey, ref) {
      if (toProvider !== this) return undefined;
      checkMasterKey(toMasterKey);
      await checkEnabled(toMasterKey);
      const { ReEncryptCommand } = loadSdk();
      const context = encryptionContext(ref);
      const out = await send(
        toMasterKey,
        new ReEncryptCommand({
          CiphertextBlob: keyMaterial,
          SourceKeyId: fromMasterKey.key,
          SourceEncryptionContext: context,
          DestinationKeyId: toMasterKey.key,
          DestinationEncryptionContext: context,
        }),
        `rewrap the DEK of key version ${ref.version}`,
      );
      return Buffer.from(out.CiphertextBlob);
    },
  };
}

module.exports = { create, encryptionContext };
