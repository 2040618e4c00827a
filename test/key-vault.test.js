'use strict';

// The key vault with the local provider (docs/key-vault.md), on Mongoose 9
// and 8 against the test server: DEKs created in the addon and stored
// wrapped, loaded by loadKeyVault() into the addon's key ring, used by the
// plugin; environment keys beside them; rewrapping under another master key
// leaves every stored value byte-identical; failures (wrong master key, a
// version defined twice, a deleted DEK document) are clear and lose nothing.

const { describe, it, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { once } = require('node:events');

const fieldcrypt = require('..');
const { startServer, mongooseVersions, openTestDatabase, closeTestDatabase, STORED_VALUE } = require('./harness');
const {
  MASTER_VAR,
  LOCAL_PROVIDERS,
  resetKeys,
  setMasterKeys,
  vaultOf,
  createDek,
  rewrap,
  definePatient,
  rawPatients,
} = require('./key-vault-helpers');

const ENV_KEY = crypto.randomBytes(32).toString('hex');

for (const { mongoose, label } of mongooseVersions()) {
  describe(`key vault, local provider (${label})`, () => {
    let server;
    let connection;
    let vault;
    let Patient;

    before(async () => {
      server = await startServer();
      connection = await openTestDatabase(mongoose, server.uri, __filename);
      Patient = definePatient(mongoose, connection);
    });
    after(async () => {
      resetKeys();
      await closeTestDatabase(connection);
      await server.stop();
    });
    beforeEach(async () => {
      resetKeys();
      setMasterKeys();
      await connection.db.collection('patients').deleteMany({});
      if (vault) await vault.coll.drop().catch(() => {});
      vault = await vaultOf(connection);
    });

    const load = (options = {}) =>
      fieldcrypt.loadKeyVault({
        keyVaultNamespace: vault.namespace,
        kmsProviders: LOCAL_PROVIDERS,
        connection,
        ...options,
      });

    it('creates a DEK that is stored wrapped, in the CSFLE shape, and encrypts through the plugin', async () => {
      const created = await createDek(vault, LOCAL_PROVIDERS, 'local', { keyAltNames: ['patients'] });
      const [doc] = await vault.coll.find({}).toArray();
      assert.equal(doc._id.sub_type, 4);
      assert.equal(doc._id.buffer.length, 16);
      assert.deepEqual(doc.keyAltNames, ['patients']);
      assert.equal(doc.version, '01');
      assert.equal(doc.purpose, 'encryption');
      assert.equal(doc.status, 'active');
      assert.deepEqual(doc.masterKey, { provider: 'local' });
      assert.equal(doc.keyMaterial.buffer.length, 61);
      assert.ok(doc.creationDate instanceof Date && doc.updateDate instanceof Date);
      assert.deepEqual(doc.usage, { encryptions: 0 });
      assert.equal(created.version, '01');

      const kv = await load();
      assert.deepEqual(kv.versions, ['01']);
      assert.deepEqual(fieldcrypt.loadedKeyVersions(), ['01']);
      await Patient.create([
        { name: 'Ada', ssn: '123-45-6789' },
        { name: 'Bob', ssn: '987-65-4321' },
      ]);
      const raw = await rawPatients(connection);
      for (const r of raw) {
        assert.match(r.ssn, STORED_VALUE);
        assert.equal(r.ssn.slice(0, 2), '01');
      }
      const read = await Patient.find().sort({ _id: 1 }).lean();
      assert.deepEqual(
        read.map((p) => p.ssn),
        ['123-45-6789', '987-65-4321'],
      );
      await kv.flushUsage();
      const after = await vault.coll.findOne({ version: '01' });
      assert.equal(Number(after.usage.encryptions), 2);
      await kv.close();
    });

    it('serves environment keys alongside the vault, and refuses a version defined in both', async () => {
      process.env.ENCRYPTION_KEY = ENV_KEY;
      const old = fieldcrypt.encrypt('legacy');
      assert.equal(old.slice(0, 2), '01');
      await createDek(vault, LOCAL_PROVIDERS, 'local', { version: '02' });
      const kv = await load();
      const fresh = fieldcrypt.encrypt('new');
      assert.equal(fresh.slice(0, 2), '02', 'new values use the newest active vault key');
      assert.equal(fieldcrypt.decrypt(old), 'legacy');
      assert.equal(fieldcrypt.decrypt(fresh), 'new');
      // configureKeys()/reloadKeys() keep the vault's keys and may not redefine them.
      assert.throws(() => fieldcrypt.configureKeys({ '02': ENV_KEY }), { code: 'ERR_FIELDCRYPT_KEY_VAULT' });
      fieldcrypt.configureKeys({ '01': ENV_KEY });
      assert.equal(fieldcrypt.decrypt(fresh), 'new');
      await kv.close();

      // The environment defines 02 as well: loading refuses, and installs nothing.
      resetKeys();
      process.env.ENCRYPTION_KEY_V02 = ENV_KEY;
      await assert.rejects(load(), (err) => {
        assert.equal(err.code, 'ERR_FIELDCRYPT_KEY_VAULT');
        assert.match(err.message, /Key version 02 is defined twice/);
        assert.doesNotMatch(err.message, new RegExp(ENV_KEY));
        return true;
      });
      assert.deepEqual(fieldcrypt.loadedKeyVersions(), []);
    });

    it('moves an environment key into the vault under its own version: no value is re-encrypted', async () => {
      process.env.ENCRYPTION_KEY_V03 = ENV_KEY;
      process.env.ENCRYPTION_KEY_VERSION = '03';
      fieldcrypt.reloadKeys();
      await Patient.create({ name: 'Ada', ssn: '123-45-6789' });
      const before = await rawPatients(connection);
      assert.equal(before[0].ssn.slice(0, 2), '03');
      await createDek(vault, LOCAL_PROVIDERS, 'local', { version: '03', fromEnv: 'ENCRYPTION_KEY_V03' });
      resetKeys(); // the environment key is gone
      const kv = await load();
      assert.equal((await Patient.findOne().lean()).ssn, '123-45-6789');
      assert.deepEqual(await rawPatients(connection), before);
      await kv.close();
    });

    it('rewraps a DEK under another master key: stored values byte-identical and still decrypting', async () => {
      const doc = await createDek(vault, LOCAL_PROVIDERS, 'local');
      let kv = await load();
      await Patient.create([
        { name: 'Ada', ssn: '123-45-6789' },
        { name: 'Bob', ssn: '987-65-4321' },
      ]);
      await kv.close();
      const before = await rawPatients(connection);

      assert.equal(await rewrap(vault, LOCAL_PROVIDERS, doc, 'local:2'), 'rewrapped');
      const moved = await vault.coll.findOne({ version: '01' });
      assert.deepEqual(moved.masterKey, { provider: 'local:2' });
      assert.notDeepEqual(moved.keyMaterial.buffer, doc.keyMaterial.buffer);
      // Safe to rerun: already under that master key.
      assert.equal(await rewrap(vault, LOCAL_PROVIDERS, moved, 'local:2'), 'skipped');
      // A stale copy of the document is not written over.
      await assert.rejects(rewrap(vault, LOCAL_PROVIDERS, doc, 'local:2'), { code: 'ERR_FIELDCRYPT_KEY_VAULT' });

      resetKeys();
      process.env[MASTER_VAR] = 'the old master key is gone';
      kv = await fieldcrypt.loadKeyVault({
        keyVaultNamespace: vault.namespace,
        kmsProviders: { 'local:2': LOCAL_PROVIDERS['local:2'] },
        connection,
      });
      assert.deepEqual(await rawPatients(connection), before);
      const read = await Patient.find().sort({ _id: 1 }).lean();
      assert.deepEqual(
        read.map((p) => p.ssn),
        ['123-45-6789', '987-65-4321'],
      );
      await kv.close();
    });

    it('a wrong master key fails loudly at start, installs nothing and changes nothing', async () => {
      await createDek(vault, LOCAL_PROVIDERS, 'local');
      const docs = await vault.coll.find({}).toArray();
      process.env[MASTER_VAR] = crypto.randomBytes(96).toString('base64');
      await assert.rejects(load(), (err) => {
        assert.equal(err.code, 'ERR_FIELDCRYPT_KMS');
        assert.match(err.message, /could not unwrap the DEK/);
        return true;
      });
      assert.deepEqual(fieldcrypt.loadedKeyVersions(), []);
      assert.deepEqual(await vault.coll.find({}).toArray(), docs);
      delete process.env[MASTER_VAR];
      await assert.rejects(load(), { code: 'ERR_FIELDCRYPT_KMS', message: /FIELDCRYPT_TEST_MASTER_KEY is not set/ });
    });

    it('a deleted DEK document: refresh keeps serving the loaded key and reports it; a new process cannot decrypt until it is restored', async () => {
      await createDek(vault, LOCAL_PROVIDERS, 'local');
      const kv = await load();
      await Patient.create({ name: 'Ada', ssn: '123-45-6789' });
      const stored = await rawPatients(connection);
      const [dek] = await vault.coll.find({}).toArray();
      await vault.coll.deleteOne({ _id: dek._id });

      const reported = [];
      kv.on('refreshError', (err) => reported.push(err));
      const errors = await kv.refresh();
      assert.equal(errors.length, 1);
      assert.equal(reported[0].code, 'ERR_FIELDCRYPT_KEY_VAULT');
      assert.match(reported[0].message, /no longer in .*still serving it from memory/);
      assert.equal((await Patient.findOne().lean()).ssn, '123-45-6789');
      await kv.close();

      resetKeys();
      const kv2 = await load();
      await assert.rejects(Patient.findOne().lean(), { code: 'ERR_FIELDCRYPT_KEY_NOT_FOUND' });
      await kv2.close();
      assert.deepEqual(await rawPatients(connection), stored, 'nothing was lost');

      await vault.coll.insertOne(dek);
      resetKeys();
      const kv3 = await load();
      assert.equal((await Patient.findOne().lean()).ssn, '123-45-6789');
      await kv3.close();
    });

    it('refresh picks up new DEKs and drops retired ones; decrypt-only keys never write', async () => {
      await createDek(vault, LOCAL_PROVIDERS, 'local', { version: '01' });
      const kv = await load();
      const v1 = fieldcrypt.encrypt('one');
      await createDek(vault, LOCAL_PROVIDERS, 'local', { version: '02', status: 'decrypt-only' });
      await createDek(vault, LOCAL_PROVIDERS, 'local', { version: '03' });
      assert.deepEqual(await kv.refresh(), []);
      assert.deepEqual(kv.versions, ['01', '02', '03']);
      assert.equal(fieldcrypt.encrypt('x').slice(0, 2), '03');
      await vault.coll.updateOne({ version: '03' }, { $set: { status: 'decrypt-only' } });
      await kv.refresh();
      assert.equal(fieldcrypt.encrypt('x').slice(0, 2), '01', 'the newest active key');
      await vault.coll.updateOne({ version: '02' }, { $set: { status: 'retired' } });
      await kv.refresh();
      assert.deepEqual(kv.versions, ['01', '03']);
      assert.deepEqual(fieldcrypt.loadedKeyVersions(), ['01', '03']);
      assert.equal(fieldcrypt.decrypt(v1), 'one');
      await kv.close();
    });

    it('refreshes on its interval: a DEK created meanwhile is loaded and becomes current', async () => {
      await createDek(vault, LOCAL_PROVIDERS, 'local', { version: '01' });
      const kv = await load({ refreshIntervalMS: 20 });
      await createDek(vault, LOCAL_PROVIDERS, 'local', { version: '02' });
      while (!kv.versions.includes('02')) await once(kv, 'refresh');
      assert.equal(fieldcrypt.encrypt('x').slice(0, 2), '02');
      await kv.close();
    });

    it('a custom provider (async wrap/unwrap): DEKs created, loaded, zero-filled after install, rewrapped to local', async () => {
      const secret = crypto.randomBytes(32);
      const handedOut = [];
      const transit = {
        async wrap({ plaintext, context }) {
          const iv = crypto.randomBytes(12);
          const c = crypto.createCipheriv('aes-256-gcm', secret, iv).setAAD(Buffer.from(JSON.stringify(context)));
          const body = Buffer.concat([c.update(plaintext), c.final()]);
          return Buffer.concat([iv, c.getAuthTag(), body]);
        },
        async unwrap({ keyMaterial, context }) {
          const km = Buffer.from(keyMaterial);
          const d = crypto.createDecipheriv('aes-256-gcm', secret, km.subarray(0, 12));
          d.setAAD(Buffer.from(JSON.stringify(context))).setAuthTag(km.subarray(12, 28));
          const out = new Uint8Array(Buffer.concat([d.update(km.subarray(28)), d.final()]));
          handedOut.push(out);
          return out;
        },
      };
      const providers = { ...LOCAL_PROVIDERS, transit };
      const doc = await createDek(vault, providers, 'transit', { masterKey: { keyName: 'app' } });
      assert.deepEqual(doc.masterKey, { provider: 'transit', keyName: 'app' });
      let kv = await load({ kmsProviders: providers });
      await Patient.create({ name: 'Ada', ssn: '123-45-6789' });
      const stored = await rawPatients(connection);
      assert.ok(handedOut.length >= 1 && handedOut.every((b) => b.every((x) => x === 0)), 'zero-filled after install');
      await kv.close();

      assert.equal(await rewrap(vault, providers, doc, 'local'), 'rewrapped');
      resetKeys();
      kv = await load();
      assert.equal((await Patient.findOne().lean()).ssn, '123-45-6789');
      assert.deepEqual(await rawPatients(connection), stored);
      await kv.close();

      // A provider whose unwrap fails: ERR_FIELDCRYPT_KMS naming it, with the cause.
      await vault.coll.deleteMany({});
      await createDek(vault, providers, 'transit', { masterKey: { keyName: 'app' } });
      resetKeys();
      const broken = { ...transit, unwrap: async () => Promise.reject(new Error('transit is sealed')) };
      await assert.rejects(load({ kmsProviders: { transit: broken } }), (err) => {
        assert.equal(err.code, 'ERR_FIELDCRYPT_KMS');
        assert.match(err.message, /provider "transit" could not unwrap the DEK of key version 01: transit is sealed/);
        return true;
      });
    });

    it('refuses bad options (blind-index DEKs: test/key-vault-index.test.js)', async () => {
      await assert.rejects(load({ currentIndexVersion: 7 }), { code: 'ERR_FIELDCRYPT_INVALID_KEY_VERSION' });
      await assert.rejects(fieldcrypt.loadKeyVault({ kmsProviders: LOCAL_PROVIDERS, connection, nope: 1 }), {
        code: 'ERR_FIELDCRYPT_INVALID_ARGUMENT',
      });
      await assert.rejects(
        fieldcrypt.loadKeyVault({ kmsProviders: { gcp: {} }, connection, keyVaultNamespace: vault.namespace }),
        {
          code: 'ERR_FIELDCRYPT_KMS',
        },
      );
      await assert.rejects(
        fieldcrypt.loadKeyVault({ kmsProviders: LOCAL_PROVIDERS, connection, keyVaultNamespace: 'nodot' }),
        { code: 'ERR_FIELDCRYPT_KEY_VAULT' },
      );
    });
  });
}
