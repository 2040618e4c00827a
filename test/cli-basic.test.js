'use strict';

// The fieldcrypt CLI against the real test database: keygen, status, encrypt
// (dry run, idempotency, arrays of subdocuments, maps, malformed and
// unsupported values), rotate, decrypt, --limit/--resume, --config, --json,
// usage errors. Each run is a child process, as a user runs it.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { runCli, jsonOf, openCliDatabase } = require('./cli-helpers');
const { decrypt, encrypt, isEncrypted, getKeyVersion } = require('..');
const { isMalformed, classify } = require('../lib/cli/values');
const { resumeCommand } = require('../lib/cli/commands');
const { partitionOf } = require('../lib/cli/scan');
const { checkpointKey } = require('../lib/cli/checkpoint');
const { parse } = require('../lib/cli/args');

const FIELDS = ['ssn', 'personExtended.identifications.idNumber', 'tags'];
const fieldArgs = FIELDS.flatMap((f) => ['--field', f]);

function learner(i) {
  return {
    name: `Learner ${i}`,
    ssn: `SSN-${i}`,
    personExtended: {
      identifications: [
        { idType: 'passport', idNumber: `P-${i}` },
        { idType: 'dl', idNumber: `D-${i}` },
      ],
    },
    tags: [`t${i}a`, `t${i}b`],
  };
}

const N = 40;
const VALID = encrypt('hidden');
const SPECIAL = [
  { _id: 'malformed-truncated', ssn: '01:0123456789abcdef0123456789abcdef:ffff' },
  { _id: 'malformed-whitespace', ssn: ` ${VALID}\n` },
  { _id: 'number', ssn: 12345 },
  { _id: 'date', ssn: new Date(0) },
  { _id: 'empty', ssn: '' },
  { _id: 'null', ssn: null },
  { _id: 'missing', name: 'no ssn' },
  { _id: 'time', ssn: '12:30:45', personExtended: { identifications: [] } },
];

describe('fieldcrypt CLI', () => {
  let t; // { uri, dbName, db, close }
  let learners;
  const originals = new Map(); // String(_id) -> learner(i)
  const common = () => ['--uri', t.uri, '--db', t.dbName];

  before(async () => {
    t = await openCliDatabase(__filename);
    learners = t.db.collection('learners');
    const docs = [];
    for (let i = 0; i < N; i++) docs.push(learner(i));
    await learners.insertMany(docs);
    for (const d of docs) originals.set(String(d._id), d);
    await learners.insertMany(SPECIAL.map((d) => ({ ...d })));
  });
  after(() => t && t.close());

  const raw = () => learners.find({}).sort({ _id: 1 }).toArray();
  const special = async () => (await raw()).filter((d) => typeof d._id === 'string');

  it('keygen prints 64 random hex characters, or an ENCRYPTION_KEY_VNN line', async () => {
    const a = await runCli(['keygen'], { uri: t.uri });
    const b = await runCli(['keygen'], { uri: t.uri });
    assert.equal(a.code, 0);
    assert.match(a.stdout, /^[0-9a-f]{64}\n$/);
    assert.notEqual(a.stdout, b.stdout);
    const env = await runCli(['keygen', '--env', '02'], { uri: t.uri });
    assert.match(env.stdout, /^ENCRYPTION_KEY_V02=[0-9a-f]{64}\n$/);
    assert.equal((await runCli(['keygen', '--env', '2'], { uri: t.uri })).code, 2);
  });

  it('usage errors exit 2 and say what to do', async () => {
    for (const args of [
      ['frobnicate'],
      ['encrypt'],
      ['encrypt', '--collection', 'x'],
      ['rotate', '--collection', 'x', '--field', 'a'],
      ['encrypt', '--collection', 'x', '--field', 'a', '--field', 'a.b'],
      ['encrypt', '--collection', 'x', '--field', '_id'],
      ['encrypt', '--collection', 'x', '--field', 'a', '--partition', '3/3'],
    ]) {
      const r = await runCli([...args, ...common()], { uri: t.uri });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^fieldcrypt: .+\nRun fieldcrypt --help/);
    }
    const help = await runCli(['--help'], { uri: t.uri });
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: fieldcrypt <command>/);
  });

  it('status counts plaintext, empty, malformed, unsupported and encrypted values and exits 1', async () => {
    const r = await runCli(['status', ...common(), '--collection', 'learners', ...fieldArgs, '--json'], { uri: t.uri });
    assert.equal(r.code, 1, r.stderr);
    const report = jsonOf(r);
    assert.equal(report.ok, false);
    assert.equal(report.currentVersion, '01');
    const [c] = report.collections;
    assert.equal(c.documents, N + SPECIAL.length);
    assert.deepEqual(c.fields.ssn, {
      plaintext: N + 1,
      empty: 1,
      encrypted: {},
      malformed: 2,
      unsupported: 2,
      ok: false,
    });
    assert.deepEqual(c.fields['personExtended.identifications.idNumber'], {
      plaintext: 2 * N,
      empty: 0,
      encrypted: {},
      malformed: 0,
      unsupported: 0,
      ok: false,
    });
    assert.deepEqual(c.fields.tags, {
      plaintext: 2 * N,
      empty: 0,
      encrypted: {},
      malformed: 0,
      unsupported: 0,
      ok: false,
    });
    const text = await runCli(['status', ...common(), '--collection', 'learners', ...fieldArgs], { uri: t.uri });
    assert.match(text.stdout, /ssn\s+41\s+1\s+2\s+2\s+0\s+NOT CURRENT/);
  });

  it('encrypt --dry-run reports what would change and writes nothing', async () => {
    const before = await raw();
    const r = await runCli(['encrypt', ...common(), '--collection', 'learners', ...fieldArgs, '--dry-run', '--json'], {
      uri: t.uri,
    });
    assert.equal(r.code, 0, r.stderr);
    const [c] = jsonOf(r).collections;
    assert.equal(c.updated, 0);
    assert.equal(c.perField.ssn.changed, N + 1);
    assert.equal(c.perField.tags.changed, 2 * N);
    assert.deepEqual(await raw(), before);
    assert.equal(await t.db.collection('fieldcrypt_checkpoints').countDocuments(), 0, 'a dry run saves no checkpoint');
  });

  it('encrypt encrypts every plaintext value in place, through arrays, and leaves the rest alone', async () => {
    const specialBefore = await special();
    const r = await runCli(
      ['encrypt', ...common(), '--collection', 'learners', ...fieldArgs, '--batch-size', '7', '--json'],
      { uri: t.uri },
    );
    assert.equal(r.code, 0, r.stderr);
    const [c] = jsonOf(r).collections;
    assert.equal(c.status, 'done');
    assert.equal(c.updated, N + 1);
    assert.equal(c.perField['personExtended.identifications.idNumber'].changed, 2 * N);
    assert.equal(c.perField.ssn.malformed, 2);
    assert.equal(c.perField.ssn.unsupported, 2);
    for (const doc of await raw()) {
      if (typeof doc._id === 'string') continue;
      const o = originals.get(String(doc._id));
      assert.equal(decrypt(doc.ssn), o.ssn);
      assert.deepEqual(
        doc.personExtended.identifications.map((x) => x.idType),
        ['passport', 'dl'],
      );
      assert.deepEqual(
        doc.personExtended.identifications.map((x) => decrypt(x.idNumber)),
        [`P-${doc.name.slice(8)}`, `D-${doc.name.slice(8)}`],
      );
      assert.deepEqual(doc.tags.map(decrypt), o.tags);
      assert.equal(doc.name, o.name);
    }
    const after = await special();
    const time = after.find((d) => d._id === 'time');
    assert.equal(decrypt(time.ssn), '12:30:45', 'a time of day is plaintext, not malformed');
    assert.deepEqual(
      after.filter((d) => d._id !== 'time'),
      specialBefore.filter((d) => d._id !== 'time'),
      'malformed, unsupported, empty, null and missing values are untouched',
    );
  });

  it('is idempotent: a second encrypt changes nothing', async () => {
    const before = await raw();
    const r = await runCli(['encrypt', ...common(), '--collection', 'learners', ...fieldArgs, '--json'], {
      uri: t.uri,
    });
    assert.equal(r.code, 0, r.stderr);
    const [c] = jsonOf(r).collections;
    assert.equal(c.updated, 0);
    assert.deepEqual(c.perField.ssn.encrypted, { '01': N + 1 });
    assert.deepEqual(await raw(), before);
  });

  it('status after encrypt: no plaintext; malformed and unsupported values keep it non-zero', async () => {
    const r = await runCli(['status', ...common(), '--collection', 'learners', ...fieldArgs, '--json'], { uri: t.uri });
    assert.equal(r.code, 1);
    const { fields } = jsonOf(r).collections[0];
    assert.deepEqual(fields.ssn, {
      plaintext: 0,
      empty: 1,
      encrypted: { '01': N + 1 },
      malformed: 2,
      unsupported: 2,
      ok: false,
    });
    assert.equal(fields.tags.ok, true);
  });

  it('rotate --to 02 re-encrypts every value, then status with version 02 is all 02 and exits 0', async () => {
    const clean = t.db.collection('clean');
    await clean.insertMany(
      Array.from({ length: 25 }, (_, i) => ({ secret: `S${i}`, list: [{ v: `a${i}` }, { v: `b${i}` }] })),
    );
    const args = ['--collection', 'clean', '--field', 'secret', '--field', 'list.v'];
    assert.equal((await runCli(['encrypt', ...common(), ...args], { uri: t.uri })).code, 0);
    let r = await runCli(['rotate', ...common(), ...args, '--to', '02', '--json'], {
      uri: t.uri,
      env: { ENCRYPTION_KEY_VERSION: '02' },
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(jsonOf(r).collections[0].perField['list.v'].changed, 50);
    r = await runCli(['status', ...common(), ...args], { uri: t.uri, env: { ENCRYPTION_KEY_VERSION: '02' } });
    assert.equal(r.code, 0, r.stdout);
    assert.match(r.stdout, /current key version 02/);
    assert.match(r.stdout, /secret\s+0\s+0\s+0\s+0\s+02: 25\s+ok/);
    assert.match(r.stdout, /ok: every value is encrypted under key version 02/);
    r = await runCli(['status', ...common(), ...args], { uri: t.uri });
    assert.equal(r.code, 1, 'with 01 current, values under 02 are not current');
    for (const doc of await clean.find().toArray()) {
      assert.equal(getKeyVersion(doc.secret), '02');
      assert.match(decrypt(doc.secret), /^S\d+$/);
      assert.deepEqual(
        doc.list.map((x) => decrypt(x.v).slice(1)),
        [doc.list.length && decrypt(doc.secret).slice(1), decrypt(doc.secret).slice(1)],
      );
    }
  });

  it('rotate on arrays of subdocuments; malformed values are reported and untouched; a rerun changes nothing', async () => {
    const specialBefore = (await special()).filter((d) => d._id !== 'time');
    let r = await runCli(['rotate', ...common(), '--collection', 'learners', ...fieldArgs, '--to', '02', '--json'], {
      uri: t.uri,
    });
    assert.equal(r.code, 0, r.stderr);
    const [c] = jsonOf(r).collections;
    assert.equal(c.perField.ssn.changed, N + 1);
    assert.equal(c.perField.ssn.malformed, 2);
    for (const doc of await raw()) {
      if (typeof doc._id === 'string') continue;
      for (const v of [doc.ssn, ...doc.tags, ...doc.personExtended.identifications.map((x) => x.idNumber)])
        assert.equal(getKeyVersion(v), '02');
      assert.equal(decrypt(doc.ssn), originals.get(String(doc._id)).ssn);
    }
    assert.deepEqual(
      (await special()).filter((d) => d._id !== 'time'),
      specialBefore,
    );
    r = await runCli(['rotate', ...common(), '--collection', 'learners', ...fieldArgs, '--to', '02', '--json'], {
      uri: t.uri,
    });
    assert.equal(jsonOf(r).collections[0].updated, 0);
  });

  it('decrypt refuses without --yes, and with --yes restores every plaintext', async () => {
    const before = await raw();
    let r = await runCli(['decrypt', ...common(), '--collection', 'learners', ...fieldArgs], { uri: t.uri });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--yes/);
    assert.deepEqual(await raw(), before);
    r = await runCli(['decrypt', ...common(), '--collection', 'learners', ...fieldArgs, '--yes'], { uri: t.uri });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /ssn: 41 decrypted/);
    for (const doc of await raw()) {
      if (typeof doc._id === 'string') continue;
      const o = originals.get(String(doc._id));
      assert.equal(doc.ssn, o.ssn);
      assert.deepEqual(doc.tags, o.tags);
      assert.deepEqual(doc.personExtended, o.personExtended);
    }
  });

  it('--limit stops after N documents and --resume continues from the checkpoint', async () => {
    const coll = t.db.collection('limited');
    await coll.insertMany(Array.from({ length: 50 }, (_, i) => ({ v: `value ${i}` })));
    const args = ['encrypt', ...common(), '--collection', 'limited', '--field', 'v', '--batch-size', '8', '--json'];
    let r = await runCli([...args, '--limit', '20'], { uri: t.uri });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(jsonOf(r).collections[0].status, 'limit');
    assert.equal(jsonOf(r).collections[0].documents, 20);
    assert.match(r.stderr, /continue with:\n {2}fieldcrypt encrypt .*--limit 20 .*--resume/);
    const encryptedCount = async () => (await coll.find().toArray()).filter((d) => isEncrypted(d.v)).length;
    assert.equal(await encryptedCount(), 20);
    r = await runCli([...args, '--limit', '20', '--resume'], { uri: t.uri });
    assert.equal(jsonOf(r).collections[0].documents, 20);
    assert.equal(await encryptedCount(), 40);
    r = await runCli([...args, '--resume'], { uri: t.uri });
    assert.equal(jsonOf(r).collections[0].status, 'done');
    assert.equal(jsonOf(r).collections[0].documents, 10);
    assert.equal(await encryptedCount(), 50);
    const saved = await t.db
      .collection('fieldcrypt_checkpoints')
      .findOne({ _id: checkpointKey({ command: 'encrypt', collection: 'limited', fields: ['v'] }) });
    assert.equal(saved.status, 'done');
    assert.equal(saved.totals.documents, 50, 'the checkpoint carries totals across resumed runs');
  });

  it('--config lists targets (collections with fields, models with fields) and maps ($*) work', async () => {
    await t.db.collection('things').insertMany([
      { secret: 's1', attrs: { a: 'x', b: 'y' } },
      { secret: 's2', attrs: {} },
    ]);
    await t.db.collection('others').insertMany([{ code: 'c1' }]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldcrypt-cli-config-'));
    try {
      const config = path.join(dir, 'fieldcrypt.config.js');
      fs.writeFileSync(
        config,
        `const mongoose = require(${JSON.stringify(require.resolve('mongoose'))});
const m = new mongoose.Mongoose();
const Thing = m.model('Thing', new m.Schema({ secret: String, attrs: { type: Map, of: String } }));
module.exports = { db: ${JSON.stringify(t.dbName)}, targets: [{ model: Thing, fields: ['secret', 'attrs.$*'] }, { collection: 'others', fields: ['code'] }] };
`,
      );
      const r = await runCli(['encrypt', '--config', config], { uri: t.uri });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /encrypt things: done/);
      assert.match(r.stdout, /encrypt others: done/);
      const things = await t.db.collection('things').find().sort({ _id: 1 }).toArray();
      assert.equal(decrypt(things[0].secret), 's1');
      assert.deepEqual(Object.fromEntries(Object.entries(things[0].attrs).map(([k, v]) => [k, decrypt(v)])), {
        a: 'x',
        b: 'y',
      });
      assert.equal(decrypt((await t.db.collection('others').findOne()).code), 'c1');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("encrypt --typed stores other types in the plugin's typed format; the plugin reads them back; decrypt restores them", async () => {
    const mongoose = require('mongoose');
    const { fieldEncryption } = require('..');
    // (FerretDB v1 has no Decimal128; the codec's own tests cover it.)
    const { ObjectId } = mongoose.mongo;
    const ref = new ObjectId();
    const when = new Date('2026-01-02T03:04:05.678Z');
    const typedDocs = t.db.collection('typedvalues');
    await typedDocs.insertMany([
      { n: 42, d: when, b: true, dec: ref, s: 'text' },
      { n: 7.5, d: when, b: false, dec: ref, s: 'more' },
    ]);
    const args = [
      ...common(),
      '--collection',
      'typedvalues',
      ...['n', 'd', 'b', 'dec', 's'].flatMap((f) => ['--field', f]),
    ];

    // Without --typed, other types are left alone.
    let r = await runCli(['encrypt', ...args, '--json'], { uri: t.uri });
    assert.equal(r.code, 0, r.stderr);
    let rows = await typedDocs.find().sort({ _id: 1 }).toArray();
    assert.equal(rows[0].n, 42);
    assert.ok(isEncrypted(rows[0].s));

    r = await runCli(['encrypt', ...args, '--typed', '--json'], { uri: t.uri });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(jsonOf(r).collections[0].perField.n.changed, 2);
    rows = await typedDocs.find().sort({ _id: 1 }).toArray();
    for (const row of rows)
      for (const f of ['n', 'd', 'b', 'dec', 's']) assert.ok(isEncrypted(row[f]), `${f} is stored encrypted`);
    r = await runCli(['status', ...args], { uri: t.uri });
    assert.equal(r.code, 0, r.stdout + r.stderr);

    // An app reading through the plugin gets the values with their types.
    const m = new mongoose.Mongoose();
    const conn = await m.createConnection(t.uri, { dbName: t.dbName }).asPromise();
    try {
      const schema = new m.Schema(
        { n: Number, d: Date, b: Boolean, dec: m.Schema.Types.ObjectId, s: String },
        { collection: 'typedvalues' },
      );
      schema.plugin(fieldEncryption, { fields: ['n', 'd', 'b', 'dec', 's'] });
      const Typed = conn.model('TypedValue', schema);
      const docs = await Typed.find().sort({ _id: 1 }).lean();
      assert.equal(docs[0].n, 42);
      assert.equal(docs[1].n, 7.5);
      assert.ok(docs[0].d instanceof Date && docs[0].d.getTime() === when.getTime());
      assert.equal(docs[0].b, true);
      assert.equal(docs[1].b, false);
      assert.equal(String(docs[0].dec), String(ref));
      assert.equal(docs[0].s, 'text');
    } finally {
      await conn.close();
    }

    // decrypt --yes puts back the original types.
    r = await runCli(['decrypt', ...args, '--yes', '--json'], { uri: t.uri });
    assert.equal(r.code, 0, r.stderr);
    rows = await typedDocs.find().sort({ _id: 1 }).toArray();
    assert.equal(rows[0].n, 42);
    assert.ok(rows[0].d instanceof Date && rows[0].d.getTime() === when.getTime());
    assert.equal(rows[1].b, false);
    assert.ok(rows[0].dec instanceof ObjectId && rows[0].dec.equals(ref));
    assert.equal(rows[1].s, 'more');
    assert.equal(
      (await runCli(['decrypt', ...common(), '--collection', 'x', '--field', 'n', '--typed', '--yes'], { uri: t.uri }))
        .code,
      2,
    );
  });

  it('a --config model that uses the plugin needs no fields: they come from encryptedPaths()', async () => {
    await t.db
      .collection('patients')
      .insertMany([{ name: 'A', ssn: '123-45-6789', ids: [{ no: 'X1' }, { no: 'X2' }] }]);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'fieldcrypt-cli-plugin-'));
    try {
      const config = path.join(dir, 'fieldcrypt.config.js');
      fs.writeFileSync(
        config,
        `const mongoose = require(${JSON.stringify(require.resolve('mongoose'))});
const { fieldEncryption } = require(${JSON.stringify(path.join(__dirname, '..'))});
const m = new mongoose.Mongoose();
const schema = new m.Schema({ name: String, ssn: String, ids: [new m.Schema({ no: { type: String, encrypted: true } })] });
schema.plugin(fieldEncryption, { fields: ['ssn'] });
const Patient = m.model('Patient', schema);
module.exports = { db: ${JSON.stringify(t.dbName)}, targets: [{ model: Patient }] };
`,
      );
      const r = await runCli(['encrypt', '--config', config, '--json'], { uri: t.uri });
      assert.equal(r.code, 0, r.stderr);
      const doc = await t.db.collection('patients').findOne();
      assert.equal(doc.name, 'A');
      assert.equal(decrypt(doc.ssn), '123-45-6789');
      assert.deepEqual(
        doc.ids.map((x) => decrypt(x.no)),
        ['X1', 'X2'],
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a missing key fails at the start, naming the variable and not the key', async () => {
    const r = await runCli(['rotate', ...common(), '--collection', 'learners', '--field', 'ssn', '--to', '03'], {
      uri: t.uri,
    });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /ENCRYPTION_KEY_V03/);
  });
});

describe('CLI building blocks', () => {
  it('malformed: damaged stored values, not ordinary text', () => {
    const v = encrypt('x');
    for (const bad of [
      v.slice(0, 40),
      v.slice(0, -1),
      ` ${v}`,
      `${v}\n`,
      `${v}:`,
      v.slice(3),
      `01:${'ab'.repeat(12)}:${'cd'.repeat(16)}:ee`,
    ]) {
      assert.equal(classify(bad), 'malformed', JSON.stringify(bad));
    }
    for (const ok of [
      '12:30:45',
      '00:1A:2B:3C:4D:5E',
      'deadbeef',
      'SSN-1',
      '2001:0db8:85a3:0000:0000:8a2e:0370:7334',
      'A123456789',
    ]) {
      assert.equal(isMalformed(ok), false, ok);
    }
    assert.equal(classify(v), 'encrypted');
    assert.equal(classify(''), 'empty');
    assert.equal(classify(5), 'unsupported');
  });

  it('partitions: stable, for any _id type, and every partition gets a share', () => {
    const { ObjectId } = require('mongodb');
    const ids = [
      ...Array.from({ length: 300 }, () => new ObjectId()),
      ...Array.from({ length: 100 }, (_, i) => `id-${i}`),
      ...Array.from({ length: 100 }, (_, i) => i),
    ];
    const counts = [0, 0, 0];
    for (const id of ids) counts[partitionOf(id, 3)]++;
    for (const n of counts) assert.ok(n > 100, `uneven partitions: ${counts}`);
    // Pinned values of the documented scheme (parallel runs of different versions
    // must agree): sha256 of the _id's canonical Extended JSON, first 4 bytes
    // big-endian, mod N. Computed independently with node:crypto:
    //   createHash('sha256').update('{"$oid":"0123456789abcdef01234567"}').digest().readUInt32BE(0) % N
    const { Long, Double } = require('mongodb');
    const PINNED = [
      [new ObjectId('0123456789abcdef01234567'), [1, 706626, 1366710724]], // {"$oid":"0123456789abcdef01234567"}
      ['person-1', [6, 404304, 3838415818]], // "person-1"
      [42, [5, 779823, 4185792378]], // {"$numberInt":"42"}
      [Long.fromNumber(42), [5, 61466, 894064148]], // {"$numberLong":"42"}
      [new Double(42.5), [5, 478996, 2775487321]], // {"$numberDouble":"42.5"}
    ];
    for (const [id, expected] of PINNED) {
      assert.deepEqual(
        [7, 1_000_003, 2 ** 32 - 1].map((n) => partitionOf(id, n)),
        expected,
        `partitionOf(${String(id)}, N)`,
      );
    }
  });

  it('the resume hint repeats the arguments with --resume and hides the password', () => {
    assert.equal(
      resumeCommand([
        'encrypt',
        '--uri',
        'mongodb://app:s3cret@db.example:27017/prod',
        '--collection',
        'users',
        '--field',
        'a b',
      ]),
      "fieldcrypt encrypt --uri 'mongodb://app:****@db.example:27017/prod' --collection users --field 'a b' --resume",
    );
    assert.equal(
      resumeCommand(['encrypt', '--resume', '--uri=mongodb://u:p@h/d']),
      "fieldcrypt encrypt '--uri=mongodb://u:****@h/d' --resume",
    );
  });

  it('parses options with defaults', () => {
    const o = parse(['migrate', '--collection', 'c', '--field', 'a', '--field', 'b.c', '--partition', '1/4']);
    assert.equal(o.command, 'encrypt');
    assert.deepEqual(o.fields, ['a', 'b.c']);
    assert.deepEqual(o.partition, { index: 1, count: 4 });
    assert.equal(o.batchSize, 500);
    assert.equal(o.concurrency, 4);
  });
});
