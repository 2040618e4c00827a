'use strict';

// The key vault with the aws provider against a real AWS KMS API: moto's
// server on loopback (test/moto.js), through the real @aws-sdk/client-kms,
// on Mongoose 9 and 8 against the test server. DEKs created by
// GenerateDataKeyWithoutPlaintext, rewrapped to a new CMK (ReEncrypt) and to
// and from the local provider with every stored value byte-identical and
// still decrypting; a wrong encryption context, a disabled CMK and an
// unreachable KMS each give a clear ERR_FIELDCRYPT_KMS and lose nothing.

const { describe, it, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const kmsSdk = require('@aws-sdk/client-kms');

const fieldcrypt = require('..');
const { startServer, mongooseVersions, openTestDatabase, closeTestDatabase, STORED_VALUE } = require('./harness');
const { startMoto } = require('./moto');
const {
  LOCAL_PROVIDERS,
  resetKeys,
  setMasterKeys,
  vaultOf,
  createDek,
  rewrap,
  definePatient,
  rawPatients,
} = require('./key-vault-helpers');

for (const { mongoose, label } of mongooseVersions()) {
  describe(`key vault, aws provider on moto (${label})`, () => {
    let server;
    let moto;
    let kms; // an SDK client for setting up CMKs
    let connection;
    let vault;
    let Patient;
    let providers;

    const createCmk = async () => (await kms.send(new kmsSdk.CreateKeyCommand({}))).KeyMetadata.Arn;

    before(async () => {
      server = await startServer();
      moto = await startMoto();
      const { region, endpoint, accessKeyId, secretAccessKey } = moto.clientOptions;
      kms = new kmsSdk.KMSClient({ region, endpoint, credentials: { accessKeyId, secretAccessKey } });
      providers = { ...LOCAL_PROVIDERS, aws: moto.clientOptions };
      connection = await openTestDatabase(mongoose, server.uri, __filename);
      Patient = definePatient(mongoose, connection);
    });
    after(async () => {
      resetKeys();
      kms.destroy();
      await closeTestDatabase(connection);
      await moto.stop();
      await server.stop();
    });
    beforeEach(async () => {
      resetKeys();
      setMasterKeys();
      await connection.db.collection('patients').deleteMany({});
      if (vault) await vault.coll.drop().catch(() => {});
      vault = await vaultOf(connection);
    });

    const load = (kmsProviders = providers) =>
      fieldcrypt.loadKeyVault({ keyVaultNamespace: vault.namespace, kmsProviders, connection });

    async function seedPatients() {
      await Patient.create([
        { name: 'Ada', ssn: '123-45-6789' },
        { name: 'Bob', ssn: '987-65-4321' },
      ]);
      return rawPatients(connection);
    }

    async function assertReadable(expectedRaw) {
      assert.deepEqual(await rawPatients(connection), expectedRaw, 'stored documents byte-identical');
      const read = await Patient.find().sort({ _id: 1 }).lean();
      assert.deepEqual(
        read.map((p) => p.ssn),
        ['123-45-6789', '987-65-4321'],
      );
    }

    it('creates a DEK under a CMK (no plaintext at creation), loads it and encrypts through the plugin', async () => {
      const cmk = await createCmk();
      await createDek(vault, providers, 'aws', { masterKey: { key: cmk }, keyAltNames: ['patients-aws'] });
      const doc = await vault.coll.findOne({});
      assert.deepEqual(doc.masterKey, { provider: 'aws', key: cmk });
      assert.equal(doc._id.sub_type, 4);
      const kv = await load();
      assert.deepEqual(kv.versions, ['01']);
      const raw = await seedPatients();
      for (const r of raw) assert.match(r.ssn, STORED_VALUE);
      await assertReadable(raw);
      await kv.close();
    });

    it('rewraps to a new CMK (ReEncrypt), to the local provider and back: values byte-identical, still decrypting', async () => {
      const cmk1 = await createCmk();
      const cmk2 = await createCmk();
      await createDek(vault, providers, 'aws', { masterKey: { key: cmk1 } });
      let kv = await load();
      const raw = await seedPatients();
      await kv.close();

      const steps = [
        ['aws', { key: cmk2 }, { provider: 'aws', key: cmk2 }],
        ['local', {}, { provider: 'local' }],
        ['aws', { key: cmk1 }, { provider: 'aws', key: cmk1 }],
      ];
      for (const [to, params, expected] of steps) {
        const doc = await vault.coll.findOne({ version: '01' });
        assert.equal(await rewrap(vault, providers, doc, to, params), 'rewrapped');
        const after = await vault.coll.findOne({ version: '01' });
        assert.deepEqual(after.masterKey, expected);
        assert.equal(await rewrap(vault, providers, after, to, params), 'skipped', 'safe to rerun');
        resetKeys();
        kv = await load();
        await assertReadable(raw);
        await kv.close();
      }
    });

    it('a wrong encryption context (a wrapped DEK copied to another document) is refused; nothing is installed', async () => {
      const cmk = await createCmk();
      const doc = await createDek(vault, providers, 'aws', { masterKey: { key: cmk } });
      const copy = { ...doc, _id: new vault.bson.UUID().toBinary(), version: '02', keyAltNames: ['copied'] };
      await vault.coll.insertOne(copy);
      await assert.rejects(load(), (err) => {
        assert.equal(err.code, 'ERR_FIELDCRYPT_KMS');
        assert.match(
          err.message,
          /AWS KMS \(provider "aws"\) could not unwrap the DEK of key version 02: InvalidCiphertextException/,
        );
        return true;
      });
      assert.deepEqual(fieldcrypt.loadedKeyVersions(), []);
      assert.equal(await vault.coll.countDocuments({}), 2, 'nothing removed');
    });

    it('a disabled CMK is refused as a rewrap target and for new DEKs; the DEK document is untouched', async () => {
      const cmk = await createCmk();
      const disabled = await createCmk();
      await createDek(vault, providers, 'aws', { masterKey: { key: cmk } });
      let kv = await load();
      const raw = await seedPatients();
      await kv.close();
      await kms.send(new kmsSdk.DisableKeyCommand({ KeyId: disabled.split('/').pop() }));
      const before = await vault.coll.findOne({});
      await assert.rejects(rewrap(vault, providers, before, 'aws', { key: disabled }), {
        code: 'ERR_FIELDCRYPT_KMS',
        message: /the CMK is Disabled/,
      });
      assert.deepEqual(await vault.coll.findOne({}), before, 'the DEK document is untouched');
      await assert.rejects(createDek(vault, providers, 'aws', { masterKey: { key: disabled } }), {
        code: 'ERR_FIELDCRYPT_KMS',
        message: /Disabled/,
      });
      resetKeys();
      kv = await load();
      await assertReadable(raw);
      await kv.close();
    });

    it('an unreachable KMS: refresh keeps serving the loaded keys and reports it; a new start fails loudly', async () => {
      const cmk1 = await createCmk();
      const cmk2 = await createCmk();
      await createDek(vault, providers, 'aws', { masterKey: { key: cmk1 } });
      const kv = await load();
      const raw = await seedPatients();
      // Another process rewraps the DEK; then this process loses the KMS.
      await rewrap(vault, providers, await vault.coll.findOne({}), 'aws', { key: cmk2 });
      const down = { ...providers, aws: { ...moto.clientOptions, endpoint: 'http://127.0.0.1:9' } };
      const kvDown = await fieldcrypt
        .loadKeyVault({ keyVaultNamespace: vault.namespace, kmsProviders: down, connection })
        .catch((err) => err);
      assert.equal(kvDown.code, 'ERR_FIELDCRYPT_KMS', 'fails loudly at start');
      assert.match(kvDown.message, /could not unwrap the DEK of key version 01/);
      assert.deepEqual(fieldcrypt.loadedKeyVersions(), ['01'], 'the keys loaded before are still served');

      kv._providers = require('../lib/vault').resolveProviders(down);
      const reported = [];
      kv.on('refreshError', (err) => reported.push(err));
      await kv.refresh();
      assert.equal(reported.length, 1);
      assert.equal(reported[0].code, 'ERR_FIELDCRYPT_KMS');
      await assertReadable(raw);
      fieldcrypt.encrypt('still writing');
      await kv.close();
    });
  });
}
