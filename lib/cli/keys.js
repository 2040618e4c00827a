'use strict';

/**
 * `fieldcrypt keys create|list|rewrap|retire`: the key vault's DEKs (see
 * docs/key-vault.md, docs/cli.md). No command prints key material: DEKs are
 * generated, wrapped and unwrapped inside the addon or the KMS.
 *
 * KMS providers come from the config file's `keyVault.kmsProviders`, else
 * from the environment: `local` with FIELDCRYPT_LOCAL_MASTER_KEY, `aws` with
 * the AWS SDK's own settings (AWS_REGION, credentials, AWS_ENDPOINT_URL_KMS).
 * `--master-key env:NAME|file:PATH` gives a local provider's key (for
 * `--kms`/`--to local` or `local:label`); for aws it names the CMK.
 */

const { parseArgs } = require('node:util');
const { UsageError } = require('./args');
const { resolveTargets, loadConfig } = require('./targets');
const { classify } = require('./values');
const { projectionFor } = require('./scan');
const { forEachAtPath } = require('../paths');
const { codes, FieldCryptError } = require('../core/errors');
const { LIMIT, DEFAULT_THRESHOLD } = require('../core/usage');
const {
  openVault,
  ensureIndexes,
  resolveProviders,
  createDataKey,
  rewrapDataKey,
  DEFAULT_NAMESPACE,
} = require('../vault');
const { describe, idHex, STATUSES } = require('../vault/store');

const OPTIONS = {
  uri: { type: 'string' },
  db: { type: 'string' },
  config: { type: 'string' },
  collection: { type: 'string' },
  field: { type: 'string', multiple: true },
  'key-vault-namespace': { type: 'string' },
  kms: { type: 'string' },
  'master-key': { type: 'string' },
  region: { type: 'string' },
  'alt-name': { type: 'string', multiple: true },
  version: { type: 'string', multiple: true },
  purpose: { type: 'string' },
  status: { type: 'string' },
  'from-env': { type: 'string' },
  to: { type: 'string' },
  force: { type: 'boolean' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean' },
};

const num = (n) => Number(n).toLocaleString('en-US');

function parse(argv) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(err.message);
  }
  const { values, positionals } = parsed;
  const [sub, ...rest] = positionals;
  if (!['create', 'list', 'rewrap', 'retire'].includes(sub)) {
    throw new UsageError(`keys: expected create, list, rewrap or retire, got ${sub ? `"${sub}"` : 'nothing'}`);
  }
  const versions = values.version || [];
  if (sub === 'retire') {
    if (rest.length !== 1) throw new UsageError('keys retire expects one key version, e.g. keys retire 01');
    versions.push(rest[0]);
  } else if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"`);
  for (const v of versions) {
    if (!/^\d\d$/.test(v) || v === '00') throw new UsageError(`expected a key version from 01 to 99, got "${v}"`);
  }
  if (values.purpose && !['encryption', 'index'].includes(values.purpose)) {
    throw new UsageError('--purpose expects encryption or index');
  }
  if (values.status && !['active', 'decrypt-only'].includes(values.status)) {
    throw new UsageError('--status expects active or decrypt-only (retire a key with keys retire)');
  }
  if (sub === 'create' && !values.kms)
    throw new UsageError('keys create needs --kms (local, aws, or a configured name)');
  if (sub === 'rewrap' && !values.to) throw new UsageError('keys rewrap needs --to (local, aws, or a configured name)');
  return { sub, versions, ...values, fields: values.field || [] };
}

function loadConfigFile(file) {
  return file ? loadConfig(file) : {};
}

/** kmsProviders: the config's, else from the environment; --master-key defines a local one. */
function providersFor(opts, config) {
  const kv = config.keyVault || {};
  const kmsProviders = { ...(kv.kmsProviders || {}) };
  if (!kv.kmsProviders) {
    if (process.env.FIELDCRYPT_LOCAL_MASTER_KEY) kmsProviders.local = { key: 'env:FIELDCRYPT_LOCAL_MASTER_KEY' };
    kmsProviders.aws = {
      region: process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION,
      endpoint: process.env.AWS_ENDPOINT_URL_KMS || process.env.AWS_ENDPOINT_URL,
    };
  }
  for (const name of [opts.kms, opts.to]) {
    if (name && name.split(':')[0] === 'local' && opts['master-key']) {
      if (!/^(env|file):./.test(opts['master-key'])) {
        throw new UsageError('--master-key for a local provider is env:NAME or file:PATH (never the key itself)');
      }
      kmsProviders[name] = { key: opts['master-key'] };
    }
  }
  return kmsProviders;
}

/** The masterKey parameters of a target provider. */
function masterKeyParams(provider, opts) {
  if (provider.type === 'local') return {};
  const params = {};
  if (opts['master-key']) params.key = opts['master-key'];
  if (opts.region) params.region = opts.region;
  return params;
}

async function openFromOpts(opts, config) {
  const uri = opts.uri || process.env.MONGODB_URI || config.uri;
  if (!uri) throw new UsageError('no database: pass --uri, set MONGODB_URI, or set uri in the config');
  const keyVaultNamespace =
    opts['key-vault-namespace'] || (config.keyVault && config.keyVault.keyVaultNamespace) || DEFAULT_NAMESPACE;
  const vault = await openVault({ keyVaultNamespace, uri });
  await ensureIndexes(vault.coll);
  return vault;
}

/**
 * How many stored values use each key version, from the targets (--config
 * or --collection/--field), as `status` counts them; null without targets.
 */
async function storedValues(opts) {
  if (!opts.config && !opts.collection) return null;
  const { uri, db: dbName, targets } = await resolveTargets({ ...opts, fields: opts.fields, bind: undefined });
  const { connect } = require('./driver');
  const client = await connect(uri);
  const counts = {};
  try {
    for (const { collection, fields } of targets) {
      const cursor = client
        .db(dbName)
        .collection(collection)
        .find({}, { projection: projectionFor(fields) });
      for await (const doc of cursor) {
        for (const field of fields) {
          forEachAtPath(doc, field, (value) => {
            if (classify(value) === 'encrypted') counts[value.slice(0, 2)] = (counts[value.slice(0, 2)] || 0) + 1;
          });
        }
      }
    }
  } finally {
    await client.close();
  }
  return counts;
}

async function create(opts, vault, providers, io) {
  const provider = providers(opts.kms);
  const masterKey = provider.masterKeyFor(masterKeyParams(provider, opts));
  if (opts.versions.length > 1) throw new UsageError('keys create takes one --version');
  const doc = await createDataKey(vault, provider, {
    masterKey,
    version: opts.versions[0],
    keyAltNames: opts['alt-name'],
    purpose: opts.purpose || 'encryption',
    status: opts.status || 'active',
    fromEnv: opts['from-env'],
  });
  const out = {
    command: 'keys create',
    id: idHex(doc),
    version: doc.version,
    purpose: doc.purpose,
    status: doc.status,
    keyAltNames: doc.keyAltNames,
    masterKey,
  };
  if (opts.json) io.out(JSON.stringify(out, null, 2));
  else {
    io.out(`created ${describe(doc)} under ${JSON.stringify(masterKey)}, alt names ${doc.keyAltNames.join(', ')}`);
    io.out(`the key material is wrapped in ${vault.namespace}; no key was printed`);
  }
  return 0;
}

async function list(opts, vault, io) {
  const docs = await vault.coll.find({}).sort({ purpose: 1, version: 1 }).toArray();
  const stored = await storedValues(opts);
  const rows = docs.map((d) => {
    const encryptions = Number((d.usage && d.usage.encryptions) || 0);
    return {
      version: d.version,
      purpose: d.purpose,
      status: d.status,
      provider: d.masterKey && d.masterKey.provider,
      masterKey: d.masterKey || {},
      keyAltNames: d.keyAltNames,
      id: idHex(d),
      encryptions,
      storedValues: stored ? stored[d.version] || 0 : null,
      nearLimit: encryptions >= DEFAULT_THRESHOLD,
    };
  });
  const orphans = stored ? Object.keys(stored).filter((v) => !docs.some((d) => d.version === v)) : [];
  if (opts.json) {
    io.out(
      JSON.stringify(
        { command: 'keys list', keyVaultNamespace: vault.namespace, keys: rows, storedValues: stored },
        null,
        2,
      ),
    );
  } else {
    io.out(`key vault ${vault.namespace}: ${rows.length} key(s)`);
    for (const r of rows) {
      io.out(
        `  ${r.version} ${r.purpose} ${r.status} ${r.provider}${r.masterKey.key ? ` ${r.masterKey.key}` : ''} ` +
          `[${(r.keyAltNames || []).join(', ')}] encryptions ${num(r.encryptions)}` +
          (r.storedValues === null ? '' : `, stored values ${num(r.storedValues)}`),
      );
      if (r.nearLimit) {
        io.out(
          `  WARNING: key version ${r.version} has done ${num(r.encryptions)} encryptions; NIST SP 800-38D allows ${num(LIMIT)} (2^32) per key with 16-byte IVs: create a new key and rotate to it`,
        );
      }
    }
    if (stored === null) io.out('stored values: not counted (pass --config, or --collection and --field)');
    for (const v of orphans)
      io.out(`  WARNING: ${num(stored[v])} stored values use key version ${v}, which is not in the vault`);
  }
  return 0;
}

async function rewrap(opts, vault, providers, io) {
  const to = providers(opts.to);
  const toMasterKey = to.masterKeyFor(masterKeyParams(to, opts));
  const filter = opts.versions.length ? { version: { $in: opts.versions } } : {};
  const docs = await vault.coll.find({ ...filter, status: { $ne: 'retired' } }).toArray();
  const results = [];
  let failed = 0;
  for (const doc of docs) {
    try {
      results.push({
        version: doc.version,
        purpose: doc.purpose,
        result: await rewrapDataKey(vault, providers, doc, to, toMasterKey),
      });
    } catch (err) {
      failed++;
      results.push({
        version: doc.version,
        purpose: doc.purpose,
        result: 'failed',
        error: err.message,
        code: err.code,
      });
    }
  }
  if (opts.json) io.out(JSON.stringify({ command: 'keys rewrap', to: toMasterKey, results }, null, 2));
  else {
    for (const r of results) {
      io.out(
        `  ${r.version} ${r.purpose}: ${r.result}${r.error ? ` (${r.error}${r.code ? ` [${r.code}]` : ''})` : ''}`,
      );
    }
    io.out(
      `${results.filter((r) => r.result === 'rewrapped').length} rewrapped, ${results.filter((r) => r.result === 'skipped').length} already under ${JSON.stringify(toMasterKey)}, ${failed} failed`,
    );
  }
  return failed ? 1 : 0;
}

async function retire(opts, vault, io) {
  const version = opts.versions[0];
  const purpose = opts.purpose || 'encryption';
  const doc = await vault.coll.findOne({ purpose, version });
  if (!doc)
    throw new FieldCryptError(codes.KEY_VAULT, `Key vault: no ${purpose} key version ${version} in ${vault.namespace}`);
  if (!STATUSES.includes(doc.status))
    throw new FieldCryptError(codes.KEY_VAULT, `Key vault: ${describe(doc)} has an invalid status`);
  if (doc.status === 'retired') {
    io.out(`${describe(doc)} is already retired`);
    return 0;
  }
  if (!opts.force) {
    const stored = await storedValues(opts);
    if (stored === null) {
      throw new FieldCryptError(
        codes.KEY_VAULT,
        `Key vault: cannot tell whether stored values still use key version ${version}: pass --config (or --collection and --field) so they are counted, or --force`,
      );
    }
    if (stored[version]) {
      throw new FieldCryptError(
        codes.KEY_VAULT,
        `Key vault: ${num(stored[version])} stored values still use key version ${version}: rotate them first (fieldcrypt rotate --to VV), or pass --force`,
      );
    }
  }
  const result = await vault.coll.updateOne(
    { _id: doc._id, status: doc.status, updateDate: doc.updateDate },
    { $set: { status: 'retired', updateDate: new Date() } },
  );
  if (result.matchedCount !== 1) {
    throw new FieldCryptError(codes.KEY_VAULT, `Key vault: ${describe(doc)} changed meanwhile; run keys retire again`);
  }
  if (opts.json) io.out(JSON.stringify({ command: 'keys retire', version, purpose, status: 'retired' }));
  else io.out(`retired ${describe(doc)}: processes drop it at their next refresh`);
  return 0;
}

/** `fieldcrypt keys …`; resolves with the exit code. */
async function keys(argv, io) {
  const opts = parse(argv);
  const config = await loadConfigFile(opts.config);
  const providers = resolveProviders(providersFor(opts, config));
  const vault = await openFromOpts(opts, config);
  try {
    if (opts.sub === 'create') return await create(opts, vault, providers, io);
    if (opts.sub === 'list') return await list(opts, vault, io);
    if (opts.sub === 'rewrap') return await rewrap(opts, vault, providers, io);
    return await retire(opts, vault, io);
  } finally {
    await vault.close();
  }
}

module.exports = { keys, parse };
