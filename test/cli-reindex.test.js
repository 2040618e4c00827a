'use strict';

// `fieldcrypt reindex` and the index coverage of `status` (issue 20) against
// the real test database: backfill, rotation 01 -> 02, --dry-run, --limit and
// --resume, partitions, compare-and-swap against concurrent writes, scalars,
// arrays of scalars, fields in arrays of subdocuments, containers, config and
// model targets with normalisers, and output that never shows a plaintext or
// an index value. Expected index values are computed here with node:crypto,
// independently of lib/core, per the shared contract (docs/search.md).

for (const name of Object.keys(process.env)) if (name.startsWith('ENCRYPTION_INDEX_KEY')) delete process.env[name];

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { BSON } = require('mongodb');
const { runCli, spawnCli, jsonOf, openCliDatabase, prng, sleep } = require('./cli-helpers');
const { encrypt } = require('..');
const codec = require('../lib/core/codec');

const INDEX_01 = '5f0e3d2c1b0a99887766554433221100ffeeddccbbaa00112233445566778899';
const INDEX_02 = 'a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f91';
const ONLY_01 = { ENCRYPTION_INDEX_KEY: INDEX_01 };
const BOTH = { ENCRYPTION_INDEX_KEY: INDEX_01, ENCRYPTION_INDEX_KEY_V02: INDEX_02 };
const KEYS = { '01': INDEX_01, '02': INDEX_02 };

/** The contract's derivation, written out: HKDF-SHA256 per collection and path, then HMAC-SHA256. */
function expectedIndex(input, collection, field, version = '01') {
  const info = Buffer.concat([Buffer.from(collection), Buffer.from([0]), Buffer.from(field)]);
  const k = Buffer.from(
    crypto.hkdfSync('sha256', Buffer.from(KEYS[version], 'hex'), 'fieldcrypt/blind-index/v1', info, 32),
  );
  return `${version}:${crypto.createHmac('sha256', k).update(input, 'utf8').digest('hex')}`;
}

const FIELDS = ['ssn', 'tags', 'ids.n', 'billing'];
const fieldArgs = [...FIELDS.flatMap((f) => ['--field', f]), '--searchable'];

function person(i) {
  return {
    _id: i,
    ssn: `987-65-${String(4320 + i)}`,
    tags: [`tag${i % 3}`, i % 2 ? 'Cafe\u0301' : 'plain'], // NFD: indexed as NFC
    ids: [{ kind: 'passport', n: `P${i}` }, { kind: 'dl' }, { kind: 'id', n: `I${i}` }],
    billing: { type: 'Visa', number: `4111${i}`, holder: { name: `H${i}` } },
  };
}

function stored(p) {
  return {
    _id: p._id,
    ssn: encrypt(p.ssn),
    tags: p.tags.map((t) => encrypt(t)),
    ids: p.ids.map((d) => (d.n ? { ...d, n: encrypt(d.n) } : { ...d })),
    billing: codec.encodeValue(p.billing, BSON),
  };
}

/** The index values a person's document must hold under `version`. */
function expectedDoc(p, collection, version = '01') {
  return {
    ssn_bidx: expectedIndex(p.ssn, collection, 'ssn', version),
    tags_bidx: p.tags.map((t) => expectedIndex(t.normalize('NFC'), collection, 'tags', version)),
    ids: p.ids.map((d) => (d.n ? expectedIndex(d.n, collection, 'ids.n', version) : undefined)),
    billing_bidx: expectedIndex(
      `{"holder":{"name":${JSON.stringify(p.billing.holder.name)}},"number":${JSON.stringify(p.billing.number)},"type":"Visa"}`,
      collection,
      'billing',
      version,
    ),
  };
}

function indexesOf(doc) {
  return {
    ssn_bidx: doc.ssn_bidx,
    tags_bidx: doc.tags_bidx,
    ids: doc.ids.map((d) => d.n_bidx),
    billing_bidx: doc.billing_bidx,
  };
}

describe('fieldcrypt reindex', () => {
  let t;
  const common = () => ['--uri', t.uri, '--db', t.dbName];
  const people = new Map();

  async function seed(collection, n) {
    const coll = t.db.collection(collection);
    const docs = [];
    for (let i = 0; i < n; i++) {
      const p = person(i);
      people.set(i, p);
      docs.push(stored(p));
    }
    await coll.insertMany(docs);
    return coll;
  }

  async function checkAll(coll, collection, version, filter = {}) {
    for (const doc of await coll.find(filter).sort({ _id: 1 }).toArray()) {
      assert.deepEqual(indexesOf(doc), expectedDoc(people.get(doc._id), collection, version), `_id ${doc._id}`);
    }
  }

  const cli = (command, collection, env, more = []) =>
    runCli([command, ...common(), '--collection', collection, ...fieldArgs, '--quiet', '--json', ...more], {
      uri: t.uri,
      env,
    });

  before(async () => {
    t = await openCliDatabase(__filename);
  });
  after(() => t && t.close());

  it('backfills every kind of path; --dry-run writes nothing; status reports coverage before and after', async () => {
    const coll = await seed('backfill', 12);
    await coll.insertOne({ _id: 100, ssn: 'not encrypted yet' });
    await coll.insertOne({ _id: 101, ssn_bidx: expectedIndex('gone', 'backfill', 'ssn') }); // orphan
    const before = await coll.find().sort({ _id: 1 }).toArray();

    let r = await cli('status', 'backfill', ONLY_01);
    assert.equal(r.code, 1, r.stderr);
    let index = jsonOf(r).collections[0].index;
    assert.deepEqual(
      { ...index.ssn, notIndexed: undefined },
      {
        version: '01',
        current: 0,
        old: {},
        missing: 12,
        stale: 0,
        orphan: 1,
        errors: 0,
        ok: false,
        notIndexed: undefined,
      },
    );
    assert.equal(index.ssn.notIndexed.plaintext, 1);
    assert.equal(index.tags.missing, 12);
    assert.equal(index['ids.n'].missing, 24);
    assert.equal(index.billing.missing, 12);

    r = await cli('reindex', 'backfill', ONLY_01, ['--dry-run']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(jsonOf(r).collections[0].perField.ssn.changed, 13);
    assert.deepEqual(await coll.find().sort({ _id: 1 }).toArray(), before, 'a dry run writes nothing');

    r = await cli('reindex', 'backfill', ONLY_01);
    assert.equal(r.code, 0, r.stderr);
    const c = jsonOf(r).collections[0];
    assert.equal(c.perField.ssn.missing, 12);
    assert.equal(c.perField.ssn.orphan, 1);
    assert.equal(c.perField.ssn.plaintext, 1);
    assert.equal(c.perField['ids.n'].missing, 24);
    const raw = await coll.find({ _id: { $lt: 100 } }).toArray();
    assert.equal(raw.length, 12);
    await checkAll(coll, 'backfill', '01', { _id: { $lt: 100 } });
    const plain = await coll.findOne({ _id: 100 });
    assert.equal(plain.ssn_bidx, undefined, 'plaintext is never indexed');
    assert.deepEqual(await coll.findOne({ _id: 101 }), { _id: 101 }, 'the orphaned index value is removed');
    for (const d of raw) assert.equal(d.ids[1].n_bidx, undefined, 'no index beside a missing value');

    r = await cli('status', 'backfill', ONLY_01);
    index = jsonOf(r).collections[0].index;
    for (const f of FIELDS) assert.equal(index[f].ok, true, f);
    assert.equal(index.ssn.current, 12);
    assert.equal(index['ids.n'].current, 24);

    // A rerun has nothing to do.
    r = await cli('reindex', 'backfill', ONLY_01);
    assert.equal(jsonOf(r).collections[0].updated, 0);
  });

  it('rotates 01 -> 02 with two index keys live, and finds stale values', async () => {
    const coll = await seed('rotation', 10);
    let r = await cli('reindex', 'rotation', ONLY_01);
    assert.equal(r.code, 0, r.stderr);
    await checkAll(coll, 'rotation', '01');
    // One stale value (not the index of its value) and one missing.
    await coll.updateOne({ _id: 3 }, { $set: { ssn_bidx: expectedIndex('someone else', 'rotation', 'ssn') } });
    await coll.updateOne({ _id: 4 }, { $unset: { billing_bidx: '' } });

    r = await cli('status', 'rotation', BOTH);
    const index = jsonOf(r).collections[0].index;
    assert.equal(index.ssn.version, '02');
    assert.deepEqual(index.ssn.old, { '01': 9 });
    assert.equal(index.ssn.stale, 1);
    assert.equal(index.billing.missing, 1);
    assert.deepEqual(index['ids.n'].old, { '01': 20 });

    // ENCRYPTION_INDEX_KEY_VERSION keeps writing 01: only the stale and missing values change.
    r = await cli('reindex', 'rotation', { ...BOTH, ENCRYPTION_INDEX_KEY_VERSION: '01' });
    assert.equal(jsonOf(r).collections[0].updated, 2);
    await checkAll(coll, 'rotation', '01');

    r = await cli('reindex', 'rotation', BOTH);
    assert.equal(r.code, 0, r.stderr);
    const c = jsonOf(r).collections[0];
    assert.equal(jsonOf(r).version, '02');
    assert.deepEqual(c.perField.ssn.old, { '01': 10 });
    assert.equal(c.updated, 10);
    await checkAll(coll, 'rotation', '02');
    r = await cli('status', 'rotation', BOTH);
    for (const f of FIELDS) assert.equal(jsonOf(r).collections[0].index[f].ok, true, f);
  });

  it('--limit stops, --resume continues from the checkpoint; partitions share the work', async () => {
    const coll = await seed('resume', 30);
    let r = await cli('reindex', 'resume', ONLY_01, ['--limit', '10', '--batch-size', '5']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /continue with:\n {2}fieldcrypt reindex .*--resume/);
    assert.equal(await coll.countDocuments({ ssn_bidx: { $exists: true } }), 10);
    r = await cli('reindex', 'resume', ONLY_01, ['--resume', '--batch-size', '5']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(jsonOf(r).collections[0].documents, 20, '--resume starts after the checkpoint');
    await checkAll(coll, 'resume', '01');

    const parted = await seed('parted', 20);
    for (const part of ['0/2', '1/2']) {
      r = await cli('reindex', 'parted', BOTH, ['--partition', part]);
      assert.equal(r.code, 0, r.stderr);
    }
    await checkAll(parted, 'parted', '02');
  });

  it('compare-and-swap: an update pins the stored value and the index value it read', async () => {
    const { reindexJob } = require('../lib/cli/reindex');
    const { configureIndexKeys } = require('../lib/core/blind-index');
    configureIndexKeys({ '01': INDEX_01 });
    const coll = await seed('cas', 2);
    const job = reindexJob(
      { collection: 'cas', searchable: FIELDS.map((p) => ({ path: p, kind: 'auto', normalize: {} })), bindings: {} },
      { dryRun: false },
    );
    // A concurrent write of the value after the read: the planned update matches nothing.
    const doc0 = await coll.findOne({ _id: 0 });
    const plan0 = job.planDoc(doc0);
    await coll.updateOne({ _id: 0 }, { $set: { ssn: encrypt('new value') } });
    assert.equal((await coll.updateOne(plan0.filter, plan0.update)).matchedCount, 0);
    assert.equal((await coll.findOne({ _id: 0 })).ssn_bidx, undefined);
    // A concurrent write of an index value (by the application, or another run): same.
    const doc1 = await coll.findOne({ _id: 1 });
    const plan1 = job.planDoc(doc1);
    const theirs = expectedIndex(people.get(1).ssn, 'cas', 'ssn');
    await coll.updateOne({ _id: 1 }, { $set: { 'ids.0.n_bidx': theirs } });
    assert.equal((await coll.updateOne(plan1.filter, plan1.update)).matchedCount, 0);
    assert.equal((await coll.findOne({ _id: 1 })).ssn_bidx, undefined);
    // Planned afresh, it applies.
    const plan = job.planDoc(await coll.findOne({ _id: 1 }));
    assert.equal((await coll.updateOne(plan.filter, plan.update)).matchedCount, 1);
    assert.equal((await coll.findOne({ _id: 1 })).ids[0].n_bidx, expectedIndex('P1', 'cas', 'ids.n'));
  });

  it('a concurrent writer (value and index together, as the plugin writes) is never clobbered', async () => {
    const coll = await seed('concurrent', 160);
    const batchSize = 20;
    const concurrency = 2;
    const run = spawnCli(
      [
        'reindex',
        ...common(),
        '--collection',
        'concurrent',
        ...fieldArgs,
        '--quiet',
        '--json',
        '--batch-size',
        String(batchSize),
        '--concurrency',
        String(concurrency),
      ],
      { uri: t.uri, env: ONLY_01 },
    );
    let finished = false;
    run.done.finally(() => (finished = true));
    const checkpoints = t.db.collection('fieldcrypt_checkpoints');
    const random = prng(2020);
    let writes = 0;
    // Writes land on documents the run's cursor may have read but not yet
    // updated. They keep clear of the batches in flight: FerretDB v1 (SQLite)
    // does not apply two updates of one document atomically (see cli-safety).
    const margin = (concurrency + 2) * batchSize;
    while (!finished && writes < 60) {
      const saved = await checkpoints.findOne({ collection: 'concurrent', command: 'reindex' });
      const from = (saved && saved.lastId !== undefined ? saved.lastId + 1 : 0) + margin;
      if (from >= 160) break;
      const i = from + Math.floor(random() * (160 - from));
      const p = { ...people.get(i), ssn: `changed-${writes}` };
      people.set(i, p);
      await coll.updateOne(
        { _id: i },
        { $set: { ssn: encrypt(p.ssn), ssn_bidx: expectedIndex(p.ssn, 'concurrent', 'ssn') } },
      );
      writes++;
      await sleep(10);
    }
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(writes > 5, `the application wrote during the run (${writes} writes)`);
    // Without the pins, a value read before the writer's change would have put its old index back.
    await checkAll(coll, 'concurrent', '01');
    const rerun = await cli('reindex', 'concurrent', ONLY_01);
    assert.equal(jsonOf(rerun).collections[0].updated, 0, 'nothing is left for a rerun');
  });

  it('config and model targets (Mongoose 9 and 8) apply their normalisers', async () => {
    const coll = t.db.collection('normalised');
    await coll.insertMany([
      { _id: 1, email: encrypt('  Ada@Example.COM '), name: encrypt('Ada   Lovelace') },
      { _id: 2, email: encrypt('bob@example.com'), name: encrypt('Bob') },
    ]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldcrypt-reindex-'));
    try {
      const config = path.join(dir, 'fieldcrypt.config.js');
      fs.writeFileSync(
        config,
        `const { fieldEncryption } = require(${JSON.stringify(path.join(__dirname, '..'))});
function person(mongoose, collection) {
  const m = new mongoose.Mongoose();
  const schema = new m.Schema({
    email: { type: String, encrypted: true, searchable: { trim: true, lowercase: true } },
    name: { type: String, encrypted: true },
  });
  schema.plugin(fieldEncryption);
  return m.model('Person', schema, collection);
}
module.exports = { db: ${JSON.stringify(t.dbName)}, targets: [
  { model: person(require(${JSON.stringify(require.resolve('mongoose'))}), 'normalised_models') },
  { model: person(require(${JSON.stringify(require.resolve('mongoose8'))}), 'normalised_models8') },
  { collection: 'normalised', fields: ['email', 'name'],
    searchable: [{ path: 'email', trim: true, lowercase: true }, { path: 'name', collapseWhitespace: true }] },
] };
`,
      );
      for (const c of ['normalised_models', 'normalised_models8'])
        await t.db.collection(c).insertOne({ _id: 1, email: encrypt('  Ada@Example.COM '), name: encrypt('x') });
      const r = await runCli(['reindex', '--config', config, '--uri', t.uri, '--quiet', '--json'], {
        uri: t.uri,
        env: ONLY_01,
      });
      assert.equal(r.code, 0, r.stderr);
      assert.deepEqual(
        jsonOf(r).collections.map((c) => c.fields),
        [['email'], ['email'], ['email', 'name']],
      );
      for (const c of ['normalised_models', 'normalised_models8']) {
        const model = await t.db.collection(c).findOne({ _id: 1 });
        assert.equal(model.email_bidx, expectedIndex('ada@example.com', c, 'email'), c);
        assert.equal(model.name_bidx, undefined, 'name is not searchable in the schema');
      }
      const [ada, bob] = await coll.find().sort({ _id: 1 }).toArray();
      assert.equal(ada.email_bidx, expectedIndex('ada@example.com', 'normalised', 'email'));
      assert.equal(ada.name_bidx, expectedIndex('Ada Lovelace', 'normalised', 'name'));
      assert.equal(bob.email_bidx, expectedIndex('bob@example.com', 'normalised', 'email'));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('errors name the document and path, never a plaintext or an index value', async () => {
    const coll = await seed('errors', 4);
    const tampered = stored(people.get(2)).ssn.replace(/.$/, (ch) => (ch === '0' ? '1' : '0'));
    await coll.updateOne({ _id: 2 }, { $set: { ssn: tampered } });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldcrypt-reindex-'));
    try {
      const config = path.join(dir, 'fieldcrypt.config.js');
      fs.writeFileSync(
        config,
        `module.exports = { db: ${JSON.stringify(t.dbName)}, targets: [{ collection: 'errors', fields: ['ssn', 'tags'],
  searchable: ['ssn', { path: 'tags', normalize: (s) => { if (s === 'tag1') throw new Error('cannot normalise ' + s); return s; } }] }] };
`,
      );
      for (const more of [[], ['--json']]) {
        const r = await runCli(['reindex', '--config', config, '--uri', t.uri, '--quiet', ...more], {
          uri: t.uri,
          env: ONLY_01,
        });
        assert.equal(r.code, 1, r.stderr);
        assert.match(r.stderr, /error: _id 2, path ssn: .*\[ERR_FIELDCRYPT_AUTH_FAILED\]/);
        assert.match(r.stderr, /error: _id 1, path tags: .*message withheld.*\[ERR_FIELDCRYPT_CLI_INDEX\]/);
        const output = r.stdout + r.stderr;
        for (const p of people.values()) {
          for (const secret of [p.ssn, p.tags[0], p.tags[1].normalize('NFC'), p.billing.number, p.ids[0].n])
            if (secret !== 'plain') assert.ok(!output.includes(secret), 'no plaintext');
        }
        assert.doesNotMatch(output, /\d\d:[0-9a-f]{64}/, 'no index value');
      }
      const status = await runCli(['status', '--config', config, '--uri', t.uri, '--quiet'], {
        uri: t.uri,
        env: ONLY_01,
      });
      assert.equal(status.code, 1);
      assert.doesNotMatch(status.stdout + status.stderr, /\d\d:[0-9a-f]{64}|tag1|987-65/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('usage: reindex needs searchable fields and an index key', async () => {
    let r = await runCli(['reindex', ...common(), '--collection', 'backfill', '--field', 'ssn'], {
      uri: t.uri,
      env: ONLY_01,
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /no searchable fields/);
    r = await runCli(['encrypt', ...common(), '--collection', 'backfill', '--field', 'ssn', '--searchable'], {
      uri: t.uri,
    });
    assert.equal(r.code, 2);
    r = await runCli(['reindex', ...common(), '--collection', 'backfill', '--field', 'ssn', '--searchable'], {
      uri: t.uri,
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /ENCRYPTION_INDEX_KEY.*\[ERR_FIELDCRYPT_INDEX_KEY_NOT_FOUND\]/);
  });
});
