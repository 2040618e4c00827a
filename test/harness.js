'use strict';

/**
 * The real-database test harness. Two servers, each built once into .cache/,
 * started on a free 127.0.0.1 port (with a fresh temp dir) and stopped (temp
 * dir removed) when the caller is done or the process ends:
 *
 * - 'ferretdb' (the default): FerretDB v1.24 with its SQLite backend, built
 *   with Go from test/ferretdb. It rejects positional updates ($, $[], $[name]).
 * - 'mongo-java-server': de.bwaldvogel:mongo-java-server 1.46.0 with its memory
 *   backend, built with Maven from test/mongo-java-server (a tiny main that
 *   reports MongoDB 6.0, wire version 17, so that current drivers connect).
 *   It executes positional updates.
 *
 *   const server = await startServer();   // FerretDB, or MONGODB_URI, if set
 *   const other = await startServer({ kind: 'mongo-java-server' });
 *   ... server.uri ...
 *   await server.stop();
 *
 * Also the fixtures shared by test/*.test.js: the Mongoose versions under test,
 * a per-file database, and the README quick-start schemas.
 *
 * Messages go to stderr, so that stdout stays the test runner's TAP.
 */

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const { stripVTControlCharacters } = require('node:util');

const ROOT = path.join(__dirname, '..');
const FERRETDB_VERSION = 'v1.24.0';
const FERRETDB_SRC = path.join(__dirname, 'ferretdb');
const FERRETDB_BIN = path.join(ROOT, '.cache', `ferretdb-${FERRETDB_VERSION}`, 'ferretdb');
/** The toolchain to retry with when the machine's Go cannot build FerretDB. */
const FALLBACK_TOOLCHAIN = 'go1.22.12';
const MONGO_JAVA_SERVER_VERSION = '1.46.0'; // also pinned in test/mongo-java-server/pom.xml
const MONGO_JAVA_SERVER_SRC = path.join(__dirname, 'mongo-java-server');
const MONGO_JAVA_SERVER_DIR = path.join(ROOT, '.cache', `mongo-java-server-${MONGO_JAVA_SERVER_VERSION}`);
/** Maven's local repository: the project's own, so that a fresh clone needs no ~/.m2 set-up. */
const MAVEN_REPO = path.join(ROOT, '.cache', 'm2');
const READY_TIMEOUT_MS = 60_000;
const KILL_AFTER_MS = 5_000;

function log(message) {
  console.error(`[fieldcrypt harness] ${message}`);
}

// Whatever is still running or lying around when the process exits (normally,
// via process.exit() or an uncaught error) is killed and removed here. Only
// synchronous work is possible in an 'exit' listener.
const exitCleanups = new Set();
process.on('exit', () => {
  for (const cleanup of exitCleanups) {
    try {
      cleanup();
    } catch {
      // Best effort: the process is going away.
    }
  }
});

function signalExitCode(signal) {
  return 128 + (os.constants.signals[signal] || 0);
}

/**
 * Runs a build tool; resolves with { code, signal, output }: its stdout and
 * stderr without colour codes, which also go on to our stderr (downloads show
 * progress on a cold cache, and Maven prints its errors to stdout). `missing`
 * is the message when the tool is not on PATH.
 */
function runTool(command, args, { cwd, env = process.env, missing }) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const kill = () => child.kill('SIGKILL');
    exitCleanups.add(kill);
    let output = '';
    const collect = (chunk) => {
      // Without colour codes: Debian's Maven 3.8 prints resets even with -q -B.
      const text = stripVTControlCharacters(String(chunk));
      output += text;
      if (text) process.stderr.write(text);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', (err) => {
      exitCleanups.delete(kill);
      if (err.code === 'ENOENT') err.message = missing;
      reject(err);
    });
    child.on('close', (code, signal) => {
      exitCleanups.delete(kill);
      resolve({ code, signal, output });
    });
  });
}

/** Runs `go build` into `output`; resolves with { code, signal, output }. */
function goBuild(output, env) {
  return runTool('go', ['build', '-buildvcs=false', '-o', output, '.'], {
    cwd: FERRETDB_SRC,
    env,
    missing:
      'Go was not found on PATH: install Go (https://go.dev/dl) to build the test FerretDB, or set MONGODB_URI to an existing MongoDB server',
  });
}

let building; // one build per process, however many callers wait for it

/**
 * Builds test/ferretdb into .cache/ferretdb-v1.24.0/ferretdb unless it is
 * already there; resolves with the binary's path. The build goes to a temp
 * name and is renamed into place, so an interrupted build never leaves a half
 * binary.
 */
function ensureFerretDB() {
  if (fs.existsSync(FERRETDB_BIN)) return Promise.resolve(FERRETDB_BIN);
  building ??= buildFerretDB().finally(() => {
    building = undefined;
  });
  return building;
}

async function buildFerretDB() {
  fs.mkdirSync(path.dirname(FERRETDB_BIN), { recursive: true });
  const tmp = `${FERRETDB_BIN}.${process.pid}.tmp`;
  const removeTmp = () => fs.rmSync(tmp, { force: true });
  exitCleanups.add(removeTmp);
  log(
    `building FerretDB ${FERRETDB_VERSION} into ${path.relative(ROOT, FERRETDB_BIN)} (first run only, about 1-2 minutes)`,
  );
  const started = performance.now();
  try {
    let result = await goBuild(tmp, process.env);
    if (result.code !== 0 && result.signal === null) {
      log(`go build failed with the machine's Go; retrying with GOTOOLCHAIN=${FALLBACK_TOOLCHAIN}`);
      result = await goBuild(tmp, { ...process.env, GOTOOLCHAIN: FALLBACK_TOOLCHAIN });
    }
    if (result.code !== 0) {
      throw new Error(`building FerretDB failed (${result.signal || `exit ${result.code}`}):\n${result.output}`);
    }
    fs.renameSync(tmp, FERRETDB_BIN);
  } finally {
    removeTmp();
    exitCleanups.delete(removeTmp);
  }
  log(`built FerretDB in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return FERRETDB_BIN;
}

/** The files test/mongo-java-server is built from (pom.xml, src/), sorted; not target/. */
function mongoJavaServerSources(dir = MONGO_JAVA_SERVER_SRC) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (dir !== MONGO_JAVA_SERVER_SRC || entry.name === 'src') out.push(...mongoJavaServerSources(full));
    } else if (dir !== MONGO_JAVA_SERVER_SRC || entry.name === 'pom.xml') {
      out.push(full);
    }
  }
  return out.sort();
}

/**
 * Where the mongo-java-server jar is built to:
 * .cache/mongo-java-server-1.46.0/mongo-java-server-<hash>.jar, the hash of
 * test/mongo-java-server's pom.xml and sources, so that a change to either
 * builds a new jar instead of reusing a stale one.
 */
function mongoJavaServerJar() {
  const hash = crypto.createHash('sha256');
  for (const file of mongoJavaServerSources()) {
    hash.update(path.relative(MONGO_JAVA_SERVER_SRC, file)).update('\0').update(fs.readFileSync(file)).update('\0');
  }
  return path.join(MONGO_JAVA_SERVER_DIR, `mongo-java-server-${hash.digest('hex').slice(0, 12)}.jar`);
}

let buildingJar; // one build per process, however many callers wait for it

/**
 * Builds test/mongo-java-server with Maven (`mvn -q -B package`, its local
 * repository .cache/m2, its target dir a temp dir under
 * .cache/mongo-java-server-1.46.0/) unless the jar is already there; resolves
 * with the jar's path. The shaded jar is renamed into place, so an interrupted
 * build never leaves a half jar.
 */
function ensureMongoJavaServer() {
  const jar = mongoJavaServerJar();
  if (fs.existsSync(jar)) return Promise.resolve(jar);
  buildingJar ??= buildMongoJavaServer(jar).finally(() => {
    buildingJar = undefined;
  });
  return buildingJar;
}

async function buildMongoJavaServer(jar) {
  fs.mkdirSync(MONGO_JAVA_SERVER_DIR, { recursive: true });
  const tmp = path.join(MONGO_JAVA_SERVER_DIR, `build.${process.pid}.tmp`);
  const removeTmp = () => fs.rmSync(tmp, { recursive: true, force: true });
  removeTmp();
  exitCleanups.add(removeTmp);
  log(
    `building mongo-java-server ${MONGO_JAVA_SERVER_VERSION} into ${path.relative(ROOT, jar)} (first run only, under a minute)`,
  );
  const started = performance.now();
  try {
    const result = await runTool(
      'mvn',
      [
        '-q',
        '-B',
        '-Dstyle.color=never',
        '-f',
        path.join(MONGO_JAVA_SERVER_SRC, 'pom.xml'),
        `-Dmaven.repo.local=${MAVEN_REPO}`,
        `-DbuildDir=${tmp}`,
        'package',
      ],
      {
        cwd: MONGO_JAVA_SERVER_SRC,
        missing:
          'Maven (mvn) was not found on PATH: install Maven 3 and a JDK 17+ to build the test mongo-java-server, or set MONGODB_URI to an existing MongoDB server',
      },
    );
    if (result.code !== 0) {
      throw new Error(
        `building mongo-java-server failed (${result.signal || `exit ${result.code}`}):\n${result.output}`,
      );
    }
    fs.renameSync(path.join(tmp, 'mongo-java-server-test.jar'), jar);
  } finally {
    removeTmp();
    exitCleanups.delete(removeTmp);
  }
  log(`built mongo-java-server in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return jar;
}

/**
 * The servers startServer() can start: a display name, the build, and the
 * command line (it must print "READY <mongodb uri>" to stdout once it accepts
 * connections, and stop on SIGTERM or when its stdin closes).
 */
const SERVER_KINDS = {
  ferretdb: {
    name: 'FerretDB',
    ensure: ensureFerretDB,
    command: (bin, dir) => {
      const dataDir = path.join(dir, 'data');
      fs.mkdirSync(dataDir);
      return [bin, ['-listen-addr', '127.0.0.1:0', '-sqlite-url', `file:${dataDir}/`]];
    },
  },
  'mongo-java-server': {
    name: 'mongo-java-server',
    ensure: ensureMongoJavaServer,
    // The serial collector: fewer threads on a small machine. Port 0: a free one.
    command: (jar) => ['java', ['-XX:+UseSerialGC', '-Xmx1g', '-jar', jar, '0']],
  },
};

/**
 * Starts a server of the given kind ('ferretdb', the default, or
 * 'mongo-java-server'; see the top of this file) on a free port with a fresh
 * temp dir (FerretDB's data, the JVM's working directory); resolves with
 * { uri, kind, external: false, stop } once it accepts connections. With
 * MONGODB_URI set, uses that server instead, whatever the kind, and starts
 * nothing (then kind is 'external' and stop() does nothing).
 *
 * stop() kills the server (SIGTERM, SIGKILL after 5 s), waits for it to exit
 * and removes the temp dir. It also happens on process exit and, unless
 * `handleSignals` is false, on SIGINT/SIGTERM (which then exit the process).
 */
async function startServer({ kind = 'ferretdb', handleSignals = true } = {}) {
  if (process.env.MONGODB_URI) {
    return { uri: process.env.MONGODB_URI, kind: 'external', external: true, stop: async () => {} };
  }
  const server = SERVER_KINDS[kind];
  if (!server) throw new Error(`unknown server kind ${JSON.stringify(kind)} (${Object.keys(SERVER_KINDS).join(', ')})`);
  const { name } = server;
  const bin = await server.ensure();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `fieldcrypt-${kind}-`));

  // stdin is a pipe we never write to: when this process dies, it closes and
  // the server exits (see test/ferretdb/main.go, test/mongo-java-server's Main).
  const [command, args] = server.command(bin, dir);
  const child = spawn(command, args, { cwd: dir, stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.on('error', () => {});
  const exited = new Promise((resolve) => {
    child.once('exit', resolve);
    child.once('error', resolve); // could not start: there will be no 'exit'
  });

  let stopping = false;
  let stopped;
  const cleanupSync = () => {
    child.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (signal) => {
    stop().finally(() => process.exit(signalExitCode(signal)));
  };
  function stop() {
    stopped ??= (async () => {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
        await exited;
        clearTimeout(timer);
      }
      fs.rmSync(dir, { recursive: true, force: true });
      exitCleanups.delete(cleanupSync);
      process.removeListener('SIGINT', onSignal);
      process.removeListener('SIGTERM', onSignal);
    })();
    return stopped;
  }
  exitCleanups.add(cleanupSync);
  if (handleSignals) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }

  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-16_384);
  });

  try {
    const uri = await new Promise((resolve, reject) => {
      const timer = setTimeout(
        () =>
          reject(new Error(`${name} did not report READY within ${READY_TIMEOUT_MS / 1000} s; its stderr:\n${stderr}`)),
        READY_TIMEOUT_MS,
      );
      const fail = (err) => {
        clearTimeout(timer);
        reject(err);
      };
      child.once('error', fail);
      // 'close' comes after the last of stderr has been read.
      child.once('close', (code, signal) =>
        fail(new Error(`${name} exited before it was ready (${signal || `exit ${code}`}); its stderr:\n${stderr}`)),
      );
      readline.createInterface({ input: child.stdout }).on('line', (line) => {
        const m = /^READY (\S+)$/.exec(line);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]);
        }
      });
    });
    child.once('exit', (code, signal) => {
      if (!stopping) log(`${name} exited unexpectedly (${signal || `exit ${code}`}); its stderr:\n${stderr}`);
    });
    return { uri, kind, external: false, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

// ---------------------------------------------------------------------------
// Fixtures for test/*.test.js

/**
 * Rejects when `promise` has not settled within `ms`. node:test reports its
 * own timeouts as "cancelled", not failed; a test that uses this fails instead,
 * so a hang shows up in the `# fail N` count.
 */
async function withTimeout(promise, ms) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms / 1000} s`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The Mongoose versions every integration test runs on. */
function mongooseVersions() {
  return [require('mongoose'), require('mongoose8')].map((mongoose) => ({
    mongoose,
    major: Number(mongoose.version.split('.')[0]),
    label: `Mongoose ${mongoose.version}`,
  }));
}

/**
 * Connects to this test file's own database (fieldcrypt_test_<file>_<major>)
 * on `uri`, dropped first. Close it with closeTestDatabase(), which drops it again.
 */
async function openTestDatabase(mongoose, uri, testFile) {
  const file = path.basename(testFile, '.test.js').replace(/[^a-zA-Z0-9]/g, '_');
  const dbName = `fieldcrypt_test_${file}_${mongoose.version.split('.')[0]}`;
  const connection = await mongoose.createConnection(uri, { dbName, serverSelectionTimeoutMS: 15_000 }).asPromise();
  await connection.dropDatabase();
  return connection;
}

async function closeTestDatabase(connection) {
  try {
    await connection.dropDatabase();
  } finally {
    await connection.close();
  }
}

/**
 * The README quick-start schemas on `connection`, plus a decrypting virtual
 * and a top-level encrypted path (`ssn`).
 */
function defineLearner(mongoose, connection) {
  const { Schema } = mongoose;
  const { encryptFieldIfModified, createDecryptMethod, createDecryptedGetter } = require('..');

  const IdentificationSchema = new Schema({ idType: String, idNumber: String, issuingAuthority: String });
  IdentificationSchema.pre('save', encryptFieldIfModified('idNumber'));
  IdentificationSchema.methods.getDecryptedIdNumber = createDecryptMethod('idNumber');

  const DemographicsSchema = new Schema({ alienRegistrationNumber: String });
  DemographicsSchema.pre('save', encryptFieldIfModified('alienRegistrationNumber'));
  DemographicsSchema.virtual('alienRegistrationNumberPlain').get(createDecryptedGetter('alienRegistrationNumber'));

  const LearnerSchema = new Schema({
    person: { firstName: String },
    personExtended: { identifications: [IdentificationSchema] },
    demographics: DemographicsSchema,
    ssn: String,
  });
  LearnerSchema.pre('save', encryptFieldIfModified('ssn'));
  LearnerSchema.methods.getDecryptedSsn = createDecryptMethod('ssn');

  return connection.model('Learner', LearnerSchema);
}

/** A stored value as fieldcrypt writes it: `VV:IV:TAG:CT`, lowercase hex. */
const STORED_VALUE = /^\d\d:[0-9a-f]{32}:[0-9a-f]{32}:([0-9a-f]{2})*$/;

/**
 * The encrypted paths present in a raw learner document (as read through the
 * driver), e.g. { 'personExtended.identifications.0.idNumber': '01:…', ssn: '01:…' }.
 */
function encryptedPathsOf(raw) {
  const out = {};
  const identifications = (raw.personExtended && raw.personExtended.identifications) || [];
  identifications.forEach((identification, i) => {
    if ('idNumber' in identification) out[`personExtended.identifications.${i}.idNumber`] = identification.idNumber;
  });
  if (raw.demographics && 'alienRegistrationNumber' in raw.demographics) {
    out['demographics.alienRegistrationNumber'] = raw.demographics.alienRegistrationNumber;
  }
  if ('ssn' in raw) out.ssn = raw.ssn;
  return out;
}

module.exports = {
  ensureFerretDB,
  ensureMongoJavaServer,
  startServer,
  SERVER_KINDS: Object.keys(SERVER_KINDS),
  withTimeout,
  mongooseVersions,
  openTestDatabase,
  closeTestDatabase,
  defineLearner,
  STORED_VALUE,
  encryptedPathsOf,
  signalExitCode,
  log,
  FERRETDB_BIN,
};
