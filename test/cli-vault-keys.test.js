'use strict';

// The data commands with keys from a key vault (lib/cli/vault-keys.js): a
// config whose `keyVault` names the vault and its KMS providers makes
// `encrypt`, `status`, `rotate` and `decrypt` use the vault's DEKs, with no
// ENCRYPTION_KEY* in the environment; a vault that cannot be loaded stops the
// command before anything is written; no key material in any output.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { runCli, jsonOf, openCliDatabase } = require('./cli-helpers');

const STORED = /^(\d\d):[0-9a-f]{32}:[0-9a-f]{32}:([0-9a-f]{2})*$/;
const SSNS = ['123-45-6789', '987-65-4320', '555-66-7777'];

describe('data commands with keys from the config’s key vault', () => {
  let t;
  let dir;
  let config;
  let env;
  const masterKey = crypto.randomBytes(96).toString('base64');

  before(async () => {
    t = await openCliDatabase(__filename);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldcrypt-cli-vault-'));
    config = path.join(dir, 'fieldcrypt.config.js');
    const ns = `${t.dbName}.__keyVault`;
    fs.writeFileSync(
      config,
      `module.exports = {
        db: ${JSON.stringify(t.dbName)},
        keyVault: { keyVaultNamespace: ${JSON.stringify(ns)}, kmsProviders: { local: { key: 'env:TEST_MASTER_KEY' } } },
        targets: [{ collection: 'people', fields: ['ssn'] }],
      };\n`,
    );
    // No ENCRYPTION_KEY*: every key comes from the vault.
    env = { ENCRYPTION_KEY: undefined, ENCRYPTION_KEY_V02: undefined, TEST_MASTER_KEY: masterKey };
    await t.db.collection('people').insertMany(SSNS.map((ssn, i) => ({ _id: i + 1, ssn })));
    for (const version of ['05', '06']) {
      const made = await runCli(
        ['keys', 'create', '--config', config, '--kms', 'local', '--version', version, '--alt-name', `k${version}`],
        { uri: t.uri, env },
      );
      assert.equal(made.code, 0, made.stderr);
    }
  });

  after(async () => {
    if (t) await t.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const people = () => t.db.collection('people').find({}).sort({ _id: 1 }).toArray();
  const output = (r) => r.stdout + r.stderr;

  it('encrypt writes with the newest active vault key; status reads with the vault', async () => {
    const r = await runCli(['encrypt', '--config', config, '--json'], { uri: t.uri, env });
    assert.equal(r.code, 0, r.stderr);
    for (const doc of await people()) assert.equal(STORED.exec(doc.ssn)?.[1], '06', doc.ssn);
    const status = await runCli(['status', '--config', config, '--json'], { uri: t.uri, env });
    assert.equal(status.code, 0, status.stderr);
    const report = jsonOf(status);
    assert.equal(report.currentVersion, '06');
    assert.equal(report.ok, true);
  });

  it('rotate and decrypt use the vault key versions', async () => {
    let r = await runCli(['rotate', '--config', config, '--to', '05'], { uri: t.uri, env });
    assert.equal(r.code, 0, r.stderr);
    for (const doc of await people()) assert.equal(STORED.exec(doc.ssn)?.[1], '05');
    r = await runCli(['decrypt', '--config', config, '--yes'], { uri: t.uri, env });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(
      (await people()).map((d) => d.ssn),
      SSNS,
    );
  });

  it('a vault that cannot be loaded (wrong master key) stops the command before any write', async () => {
    const before = await people();
    const r = await runCli(['encrypt', '--config', config], {
      uri: t.uri,
      env: { ...env, TEST_MASTER_KEY: crypto.randomBytes(96).toString('base64') },
    });
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /ERR_FIELDCRYPT_KMS|ERR_FIELDCRYPT_KEY_VAULT/);
    assert.deepEqual(await people(), before);
    for (const ssn of SSNS) assert.ok(!output(r).includes(ssn));
    assert.ok(!output(r).includes(masterKey));
  });
});
