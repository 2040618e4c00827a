'use strict';

// Blind-index keys (purpose "index") in the key vault, local provider, on
// Mongoose 9 and 8 against the test server: loadKeyVault() installs them in
// the addon's index keys (never as JavaScript values), a searchable path
// saves and is found through the plugin's rewritten query, the stored index
// values carry the vault's version, a key moved from ENCRYPTION_INDEX_KEY
// gives exactly the values node:crypto computes from it, a rewrap changes
// nothing stored, and versions defined twice or retired are handled.

const { describe, it, before, after, beforeEach } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const fieldcrypt = require('..');
const native = require('../lib/core/native').load();
const { useIndexVersion, reloadIndexKeys } = require('../lib/core/blind-index');
const { startServer, mongooseVersions, closeTestDatabase } = require('./harness');
const { startMoto } = require('./moto');
const { LOCAL_PROVIDERS, resetKeys, setMasterKeys, vaultOf, createDek, rewrap } = require('./key-vault-helpers');

const INDEX_VALUE = /^(\d\d):[0-9a-f]{64}$/;
const SSNS = ['123-45-6789', '987-65-4321'];

/** Forgets every index key (environment, configured and vault) and unsets ENCRYPTION_INDEX_KEY*. */
function resetIndexKeys() {
  for (const name of Object.keys(process.env)) if (name.startsWith('ENCRYPTION_INDEX_KEY')) delete process.env[name];
  for (const v of native.indexKeyVersions()) native.vaultForgetIndex(v);
  useIndexVersion(undefined);
  reloadIndexKeys();
}

/** The reference index value, computed with node:crypto from a known index key (docs/format.md). */
function refIndex(hexKey, version, collection, path, input) {
  const info = Buffer.concat([Buffer.from(collection), Buffer.from([0]), Buffer.from(path)]);
  const salt = Buffer.from('fieldcrypt/blind-index/v1');
  const key = Buffer.from(crypto.hkdfSync('sha256', Buffer.from(hexKey, 'hex'), salt, info, 32));
  return `${version}:${crypto.createHmac('sha256', key).update(Buffer.from(input, 'utf8')).digest('hex')}`;
}

/** A connection (commands monitored) and a Patient model whose ssn is encrypted and searchable. */
async function openPatients(mongoose, uri, dbName, onCommand) {
  const connection = await mongoose
    .createConnection(uri, { dbName, serverSelectionTimeoutMS: 15_000, monitorCommands: true })
    .asPromise();
  await connection.dropDatabase();
  connection.getClient().on('commandStarted', onCommand);
  const schema = new mongoose.Schema({
    name: String,
    ssn: { type: String, encrypted: true, searchable: { trim: true } },
  });
  schema.plugin(fieldcrypt.fieldEncryption);
  return { connection, Patient: connection.model('Patient', schema) };
}

for (const { mongoose, label } of mongooseVersions()) {
  describe(`key vault, blind-index keys (${label})`, () => {
    let server;
    let connection;
    let vault;
    let Patient;
    let commands = null;
    const kvs = [];

    before(async () => {
      server = await startServer();
      const dbName = `fieldcrypt_test_key_vault_index_${mongoose.version.split('.')[0]}`;
      ({ connection, Patient } = await openPatients(mongoose, server.uri, dbName, (event) => {
        if (commands) commands.push(JSON.stringify(event.command));
      }));
    });
    after(async () => {
      resetIndexKeys();
      resetKeys();
      await closeTestDatabase(connection);
      await server.stop();
    });
    beforeEach(async () => {
      while (kvs.length) await kvs.pop().close();
      resetIndexKeys();
      resetKeys();
      setMasterKeys();
      await connection.db.collection('patients').deleteMany({});
      if (vault) await vault.coll.drop().catch(() => {});
      vault = await vaultOf(connection);
    });

    const load = async (options = {}) => {
      const kv = await fieldcrypt.loadKeyVault({
        keyVaultNamespace: vault.namespace,
        kmsProviders: LOCAL_PROVIDERS,
        connection,
        ...options,
      });
      kvs.push(kv);
      return kv;
    };
    const raw = () => connection.db.collection('patients').find({}).sort({ _id: 1 }).toArray();

    /** Finds by ssn through the plugin; checks that the command sent holds `value` and no plaintext. */
    async function findBySsn(ssn, value) {
      commands = [];
      let found;
      try {
        found = await Patient.findOne({ ssn });
      } finally {
        const sent = commands.join('\n');
        commands = null;
        assert.ok(sent.includes('ssn_bidx'), 'the filter was rewritten to the index path');
        if (value) assert.ok(sent.includes(value), 'the filter holds the stored index value');
        assert.ok(!sent.includes(ssn), 'no plaintext was sent');
      }
      return found;
    }

    it('keeps both keys in the vault: saves and finds by an index DEK, byte-identical after a rewrap', async () => {
      await createDek(vault, LOCAL_PROVIDERS, 'local');
      const indexDoc = await createDek(vault, LOCAL_PROVIDERS, 'local', { purpose: 'index', version: '03' });
      const kv = await load();
      assert.deepEqual(kv.versions, ['01']);
      assert.deepEqual(kv.indexVersions, ['03']);
      assert.deepEqual(fieldcrypt.indexKeyVersions(), { current: '03', live: ['03'] });
      assert.equal(native.hasIndexKey('03'), true);

      const ids = [];
      for (const ssn of SSNS) ids.push((await Patient.create({ name: 'p', ssn })).id);
      const stored = await raw();
      for (const doc of stored) {
        assert.equal(INDEX_VALUE.exec(doc.ssn_bidx)[1], '03', 'written with the vault index version');
        assert.ok(!JSON.stringify(doc).includes('-45-'), 'no plaintext stored');
      }
      assert.notEqual(stored[0].ssn_bidx, stored[1].ssn_bidx);
      for (const [i, ssn] of SSNS.entries()) {
        const found = await findBySsn(` ${ssn} `, stored[i].ssn_bidx);
        assert.equal(found.id, ids[i]);
        assert.equal(found.ssn, ssn);
      }

      // Rewrap the index DEK under another master key: nothing stored changes, and it still finds.
      assert.equal(await rewrap(vault, LOCAL_PROVIDERS, indexDoc, 'local:2'), 'rewrapped');
      assert.deepEqual(await kv.refresh(), []);
      assert.deepEqual(fieldcrypt.indexKeyVersions(), { current: '03', live: ['03'] });
      for (const [i, ssn] of SSNS.entries()) assert.equal((await findBySsn(ssn, stored[i].ssn_bidx)).id, ids[i]);
      // A new process (keys forgotten, loaded again from the rewrapped vault) finds the same documents.
      await kv.close();
      kvs.length = 0;
      resetIndexKeys();
      resetKeys();
      await load();
      for (const [i, ssn] of SSNS.entries()) assert.equal((await findBySsn(ssn, stored[i].ssn_bidx)).id, ids[i]);
      assert.deepEqual(await raw(), stored, 'documents byte-identical');
    });

    it('moves ENCRYPTION_INDEX_KEY into the vault: the same index values node:crypto computes from it', async () => {
      const hex = crypto.randomBytes(32).toString('hex');
      process.env.ENCRYPTION_INDEX_KEY = hex;
      await createDek(vault, LOCAL_PROVIDERS, 'local');
      await createDek(vault, LOCAL_PROVIDERS, 'local', { purpose: 'index', fromEnv: 'ENCRYPTION_INDEX_KEY' });
      // Defined twice while the variable is still set.
      await assert.rejects(load(), {
        code: 'ERR_FIELDCRYPT_KEY_VAULT',
        message: /Index key version 01 is defined twice.*ENCRYPTION_INDEX_KEY/,
      });
      delete process.env.ENCRYPTION_INDEX_KEY;
      reloadIndexKeys();
      await load();
      await Patient.create({ name: 'p', ssn: SSNS[0] });
      const [doc] = await raw();
      assert.equal(doc.ssn_bidx, refIndex(hex, '01', 'patients', 'ssn', SSNS[0]));
      assert.ok((await findBySsn(SSNS[0], doc.ssn_bidx)) !== null);
    });

    it('works alongside environment index keys, and refuses a version defined by both', async () => {
      const envHex = crypto.randomBytes(32).toString('hex');
      process.env.ENCRYPTION_INDEX_KEY = envHex;
      await createDek(vault, LOCAL_PROVIDERS, 'local');
      await createDek(vault, LOCAL_PROVIDERS, 'local', { purpose: 'index', version: '02' });
      await load();
      assert.deepEqual(fieldcrypt.indexKeyVersions(), { current: '02', live: ['01', '02'] });
      const old = fieldcrypt.blindIndex(SSNS[0], { collection: 'patients', path: 'ssn', version: '01' });
      assert.equal(old, refIndex(envHex, '01', 'patients', 'ssn', SSNS[0]));
      assert.match(fieldcrypt.blindIndex(SSNS[0], { collection: 'patients', path: 'ssn' }), /^02:/);
      // The addon refuses a vault version from configureIndexKeys() or the environment.
      assert.throws(() => fieldcrypt.configureIndexKeys({ '02': crypto.randomBytes(32).toString('hex') }), {
        code: 'ERR_FIELDCRYPT_KEY_VAULT',
        message: /Index key version 02 is defined twice/,
      });
      process.env.ENCRYPTION_INDEX_KEY_V02 = crypto.randomBytes(32).toString('hex');
      assert.throws(() => fieldcrypt.reloadIndexKeys(), { code: 'ERR_FIELDCRYPT_KEY_VAULT' });
      delete process.env.ENCRYPTION_INDEX_KEY_V02;
      fieldcrypt.reloadIndexKeys();
      assert.deepEqual(fieldcrypt.indexKeyVersions(), { current: '02', live: ['01', '02'] });
    });

    it('refuses an index key configured elsewhere at load, and an index DEK that is an encryption key', async () => {
      const hex = crypto.randomBytes(32).toString('hex');
      fieldcrypt.configureIndexKeys({ '01': crypto.randomBytes(32).toString('hex') });
      await createDek(vault, LOCAL_PROVIDERS, 'local', { purpose: 'index' });
      await assert.rejects(load(), {
        code: 'ERR_FIELDCRYPT_KEY_VAULT',
        message: /Index key version 01 is defined twice/,
      });
      resetIndexKeys();
      await vault.coll.deleteMany({});
      process.env.ENCRYPTION_KEY_V05 = hex;
      await createDek(vault, LOCAL_PROVIDERS, 'local', { version: '05', fromEnv: 'ENCRYPTION_KEY_V05' });
      await createDek(vault, LOCAL_PROVIDERS, 'local', { purpose: 'index', fromEnv: 'ENCRYPTION_KEY_V05' });
      delete process.env.ENCRYPTION_KEY_V05;
      await assert.rejects(load(), { code: 'ERR_FIELDCRYPT_KEY_CONFLICT' });
      assert.deepEqual(native.indexKeyVersions(), [], 'nothing stays installed after a failed load');
    });

    it('drops a retired index DEK on refresh, and follows currentIndexVersion', async () => {
      await createDek(vault, LOCAL_PROVIDERS, 'local');
      await createDek(vault, LOCAL_PROVIDERS, 'local', { purpose: 'index' });
      await createDek(vault, LOCAL_PROVIDERS, 'local', { purpose: 'index' });
      const kv = await load({ currentIndexVersion: '01' });
      assert.deepEqual(kv.indexVersions, ['01', '02']);
      assert.deepEqual(fieldcrypt.indexKeyVersions(), { current: '01', live: ['01', '02'] });
      await kv.close();
      kvs.length = 0;
      const kv2 = await load();
      assert.deepEqual(fieldcrypt.indexKeyVersions(), { current: '02', live: ['01', '02'] });
      const before02 = fieldcrypt.blindIndex(SSNS[0], { collection: 'patients', path: 'ssn', version: '02' });

      await vault.coll.updateOne({ purpose: 'index', version: '02' }, { $set: { status: 'retired' } });
      assert.deepEqual(await kv2.refresh(), []);
      assert.deepEqual(kv2.indexVersions, ['01']);
      assert.deepEqual(fieldcrypt.indexKeyVersions(), { current: '01', live: ['01'] });
      assert.equal(native.hasIndexKey('02'), false);
      assert.throws(() => fieldcrypt.blindIndex(SSNS[0], { collection: 'patients', path: 'ssn', version: '02' }), {
        code: 'ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND',
      });
      // Back to decrypt-only: loaded again (queries during a rotation), the same values, not current.
      await vault.coll.updateOne({ purpose: 'index', version: '02' }, { $set: { status: 'decrypt-only' } });
      assert.deepEqual(await kv2.refresh(), []);
      assert.deepEqual(fieldcrypt.indexKeyVersions(), { current: '01', live: ['01', '02'] });
      assert.equal(fieldcrypt.blindIndex(SSNS[0], { collection: 'patients', path: 'ssn', version: '02' }), before02);
      await assert.rejects(load({ currentIndexVersion: '1' }), { code: 'ERR_FIELDCRYPT_INVALID_KEY_VERSION' });
    });
  });

  describe(`key vault, blind-index keys, aws provider on moto (${label})`, () => {
    let server;
    let moto;
    let kms;
    let connection;
    let vault;
    let Patient;
    let providers;
    let kv;

    before(async () => {
      server = await startServer();
      moto = await startMoto();
      const kmsSdk = require('@aws-sdk/client-kms');
      const { region, endpoint, accessKeyId, secretAccessKey } = moto.clientOptions;
      kms = new kmsSdk.KMSClient({ region, endpoint, credentials: { accessKeyId, secretAccessKey } });
      kms.createCmk = async () => (await kms.send(new kmsSdk.CreateKeyCommand({}))).KeyMetadata.Arn;
      providers = { ...LOCAL_PROVIDERS, aws: moto.clientOptions };
      const dbName = `fieldcrypt_test_key_vault_index_aws_${mongoose.version.split('.')[0]}`;
      ({ connection, Patient } = await openPatients(mongoose, server.uri, dbName, () => {}));
      resetIndexKeys();
      resetKeys();
      setMasterKeys();
      vault = await vaultOf(connection);
    });
    after(async () => {
      if (kv) await kv.close();
      resetIndexKeys();
      resetKeys();
      kms.destroy();
      await closeTestDatabase(connection);
      await moto.stop();
      await server.stop();
    });

    it('loads an index DEK moved from ENCRYPTION_INDEX_KEY under a CMK; a ReEncrypt rewrap changes nothing', async () => {
      const hex = crypto.randomBytes(32).toString('hex');
      process.env.ENCRYPTION_INDEX_KEY_V04 = hex;
      const cmk = await kms.createCmk();
      await createDek(vault, providers, 'aws', { masterKey: { key: cmk } });
      const indexDoc = await createDek(vault, providers, 'aws', {
        masterKey: { key: cmk },
        purpose: 'index',
        version: '04',
        fromEnv: 'ENCRYPTION_INDEX_KEY_V04',
      });
      delete process.env.ENCRYPTION_INDEX_KEY_V04;
      kv = await fieldcrypt.loadKeyVault({ keyVaultNamespace: vault.namespace, kmsProviders: providers, connection });
      assert.deepEqual(fieldcrypt.indexKeyVersions(), { current: '04', live: ['04'] });
      const { id } = await Patient.create({ name: 'p', ssn: SSNS[1] });
      const stored = await connection.db.collection('patients').find({}).toArray();
      assert.equal(stored[0].ssn_bidx, refIndex(hex, '04', 'patients', 'ssn', SSNS[1]));

      assert.equal(await rewrap(vault, providers, indexDoc, 'aws', { key: await kms.createCmk() }), 'rewrapped');
      assert.deepEqual(await kv.refresh(), []);
      assert.equal((await Patient.findOne({ ssn: SSNS[1] })).id, id);
      assert.deepEqual(await connection.db.collection('patients').find({}).toArray(), stored);
    });
  });
}
