'use strict';

// `fieldcrypt keys create|list|rewrap|retire` (lib/cli/keys.js), run in this
// process through lib/cli's main(argv, io) against the test server and moto,
// on Mongoose 9 and 8: no key material in any output; stored values counted
// per version; retire refused while values use the version; rewrap to AWS
// and to another local master key leaves every stored value byte-identical
// and decrypting, and is safe to rerun; the 2^32 warning.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const kmsSdk = require('@aws-sdk/client-kms');

const fieldcrypt = require('..');
const { main } = require('../lib/cli');
const { startServer, mongooseVersions, openTestDatabase, closeTestDatabase } = require('./harness');
const { startMoto } = require('./moto');
const {
  MASTER_VAR,
  MASTER_VAR_2,
  resetKeys,
  setMasterKeys,
  definePatient,
  rawPatients,
} = require('./key-vault-helpers');

/** Runs the CLI; resolves with { code, stdout, stderr }. */
async function cli(args) {
  let stdout = '';
  let stderr = '';
  const sink = (append) => ({ write: (s) => append(String(s)), isTTY: false });
  const code = await main(args, {
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
  });
  return { code, stdout, stderr };
}

for (const { mongoose, label } of mongooseVersions()) {
  describe(`fieldcrypt keys (${label})`, () => {
    let server;
    let moto;
    let connection;
    let Patient;
    let uri;
    let ns;
    let cmk;
    const saved = {};

    before(async () => {
      server = await startServer();
      moto = await startMoto();
      connection = await openTestDatabase(mongoose, server.uri, __filename);
      Patient = definePatient(mongoose, connection);
      uri = server.uri.replace(/\/?(\?|$)/, `/${connection.name}$1`);
      ns = `${connection.name}.__keyVault`;
      const { region, endpoint, accessKeyId, secretAccessKey } = moto.clientOptions;
      const env = {
        AWS_REGION: region,
        AWS_ENDPOINT_URL_KMS: endpoint,
        AWS_ACCESS_KEY_ID: accessKeyId,
        AWS_SECRET_ACCESS_KEY: secretAccessKey,
        AWS_MAX_ATTEMPTS: '1',
      };
      for (const [k, v] of Object.entries(env)) {
        saved[k] = process.env[k];
        process.env[k] = v;
      }
      const kms = new kmsSdk.KMSClient({ region, endpoint, credentials: { accessKeyId, secretAccessKey } });
      cmk = (await kms.send(new kmsSdk.CreateKeyCommand({}))).KeyMetadata.Arn;
      kms.destroy();
      resetKeys();
      setMasterKeys();
      process.env.FIELDCRYPT_LOCAL_MASTER_KEY = process.env[MASTER_VAR];
    });
    after(async () => {
      resetKeys();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      delete process.env.FIELDCRYPT_LOCAL_MASTER_KEY;
      await closeTestDatabase(connection);
      await moto.stop();
      await server.stop();
    });

    const base = () => ['--uri', uri, '--key-vault-namespace', ns];
    const targets = ['--collection', 'patients', '--field', 'ssn'];
    const secrets = () => [process.env[MASTER_VAR], process.env[MASTER_VAR_2]];
    const assertNoSecrets = (...outputs) => {
      for (const out of outputs) {
        for (const secret of secrets()) assert.ok(!out.includes(secret), 'no master key in the output');
        assert.doesNotMatch(out, /[0-9a-f]{64}/, 'no 32-byte key in hex');
        assert.doesNotMatch(out, /[A-Za-z0-9+/]{43}=/, 'no 32-byte key in base64');
      }
    };

    it('creates, lists, refuses to retire a key in use, rewraps to AWS and to another local master key', async () => {
      let r = await cli(['keys', 'create', '--kms', 'local', '--alt-name', 'patients', ...base()]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /created key version 01 \(DEK [0-9a-f]{32}, encryption\)/);
      assertNoSecrets(r.stdout, r.stderr);
      r = await cli(['keys', 'create', '--kms', 'local', '--status', 'decrypt-only', '--json', ...base()]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).version, '02');

      const kv = await fieldcrypt.loadKeyVault({
        keyVaultNamespace: ns,
        kmsProviders: { local: { key: 'env:FIELDCRYPT_LOCAL_MASTER_KEY' } },
        connection,
      });
      await Patient.create([
        { name: 'Ada', ssn: '123-45-6789' },
        { name: 'Bob', ssn: '987-65-4321' },
      ]);
      await kv.close(); // flushes the usage counts
      const stored = await rawPatients(connection);

      r = await cli(['keys', 'list', '--json', ...base(), ...targets]);
      assert.equal(r.code, 0, r.stderr);
      const listed = JSON.parse(r.stdout);
      assert.deepEqual(
        listed.keys.map((k) => [k.version, k.status, k.provider, k.encryptions, k.storedValues]),
        [
          ['01', 'active', 'local', 2, 2],
          ['02', 'decrypt-only', 'local', 0, 0],
        ],
      );
      assertNoSecrets(r.stdout);

      r = await cli(['keys', 'retire', '01', ...base(), ...targets]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /2 stored values still use key version 01.*\[ERR_FIELDCRYPT_KEY_VAULT\]/);
      r = await cli(['keys', 'retire', '02', ...base()]);
      assert.equal(r.code, 2, 'without targets, nothing tells whether values use it');
      assert.match(r.stderr, /cannot tell whether stored values still use key version 02/);
      r = await cli(['keys', 'retire', '02', ...base(), ...targets]);
      assert.equal(r.code, 0, r.stderr);

      r = await cli(['keys', 'rewrap', '--to', 'aws', '--master-key', cmk, ...base()]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /1 rewrapped, 0 already under/);
      r = await cli(['keys', 'rewrap', '--to', 'aws', '--master-key', cmk, ...base()]);
      assert.match(r.stdout, /0 rewrapped, 1 already under/, 'safe to rerun');
      assert.deepEqual(await rawPatients(connection), stored);

      resetKeys();
      const { region, endpoint, accessKeyId, secretAccessKey } = moto.clientOptions;
      const kv2 = await fieldcrypt.loadKeyVault({
        keyVaultNamespace: ns,
        kmsProviders: { aws: { region, endpoint, accessKeyId, secretAccessKey } },
        connection,
      });
      assert.deepEqual(kv2.versions, ['01']);
      assert.equal((await Patient.findOne({ name: 'Ada' }).lean()).ssn, '123-45-6789');
      await kv2.close();

      r = await cli([
        'keys',
        'rewrap',
        '--to',
        'local:new',
        '--master-key',
        `env:${MASTER_VAR_2}`,
        '--version',
        '01',
        ...base(),
      ]);
      assert.equal(r.code, 0, r.stderr);
      assertNoSecrets(r.stdout, r.stderr);
      resetKeys();
      const kv3 = await fieldcrypt.loadKeyVault({
        keyVaultNamespace: ns,
        kmsProviders: { 'local:new': { key: `env:${MASTER_VAR_2}` } },
        connection,
      });
      assert.equal((await Patient.findOne({ name: 'Bob' }).lean()).ssn, '987-65-4321');
      await kv3.close();
      assert.deepEqual(await rawPatients(connection), stored, 'stored documents byte-identical');
    });

    it('warns as a key nears the 2^32 encryptions of NIST SP 800-38D', async () => {
      await connection.db
        .collection('__keyVault')
        .updateOne({ version: '01' }, { $set: { 'usage.encryptions': 2 ** 31 + 5 } });
      const r = await cli(['keys', 'list', ...base()]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(
        r.stdout,
        /WARNING: key version 01 has done 2,147,483,653 encryptions; NIST SP 800-38D allows 4,294,967,296/,
      );
      assert.match(r.stdout, /stored values: not counted/);
    });

    it('usage errors exit 2', async () => {
      for (const args of [
        ['keys'],
        ['keys', 'create'],
        ['keys', 'rewrap'],
        ['keys', 'retire'],
        ['keys', 'list', '--version', 'x'],
      ]) {
        const r = await cli([...args, ...base()]);
        assert.equal(r.code, 2, args.join(' '));
      }
      const r = await cli(['keys', 'create', '--kms', 'local', '--master-key', 'deadbeef', ...base()]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /never the key itself/);
    });
  });
}
