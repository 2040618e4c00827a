'use strict';

/** Shared by the examples/patients-api suites: building it, loading its modules, its data, its keys. */

const { execFileSync } = require('node:child_process');
const path = require('node:path');

const EXAMPLE = path.join(__dirname, '..', 'examples', 'patients-api');
const DIST = path.join(EXAMPLE, 'dist');

let built = false;
/** Compiles the example with tsc (strict), once per process. */
function buildExample() {
  if (built) return;
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', EXAMPLE], { stdio: 'inherit' });
  built = true;
}

/** A compiled module of the example, e.g. exampleModule('app'). */
const exampleModule = (name) => require(path.join(DIST, `${name}.js`));

/** The original service's walkthrough patient. */
const SEED = {
  firstName: 'Jon',
  lastName: 'Doe',
  patientId: 12345678,
  address: '157 Electric Ave.',
  patientRecord: { ssn: '987-65-4320', billing: { type: 'Visa', number: '4111111111111111' } },
  medications: ['Atorvastatin', 'Levothyroxine'],
};

const OTHER = {
  firstName: 'Ada',
  lastName: 'Byron',
  patientId: 23456789,
  address: '12 St James Sq.',
  patientRecord: { ssn: '123-45-6789', billing: { type: 'Amex', number: '378282246310005' } },
  medications: ['Lisinopril'],
};

/**
 * The service's keys for an in-process test: a throwaway local master key,
 * its data keys created by the example's own make-data-key script (the CLI),
 * then loaded as the service loads them (dist/keys.js, loadKeyVault).
 * Resolves with the KeyVault (close() it) and the environment used.
 */
async function keysForTest(connection, dir) {
  const env = { ...process.env };
  const uri = connectionUri(connection);
  Object.assign(env, {
    MONGODB_URI: uri,
    MONGODB_DB: connection.name,
    PATIENTS_MASTER_KEY_DIR: path.join(dir, 'keys'),
    PATIENTS_KEY_VAULT_NAMESPACE: `${connection.name}.__keyVault`,
  });
  for (const name of Object.keys(env)) if (/^ENCRYPTION_(INDEX_)?KEY/.test(name)) delete env[name];
  execFileSync(process.execPath, [path.join(DIST, 'scripts', 'make-data-key.js')], { env, stdio: 'pipe' });
  // The example reads its settings from process.env (as a service does).
  for (const name of ['PATIENTS_MASTER_KEY_DIR', 'PATIENTS_KEY_VAULT_NAMESPACE']) process.env[name] = env[name];
  return { vault: await exampleModule('keys').loadKeys(connection), env };
}

/** A mongodb:// URI for the connection's server (its first host). */
function connectionUri(connection) {
  const { host, port } = connection;
  return `mongodb://${host}:${port}/`;
}

/**
 * One HTTP request over loopback with node:http (fetch() refuses a body on a
 * GET, which the original service's billing lookup takes): { status, text }.
 */
function httpRequest(url, { method = 'GET', headers = {}, body } = {}) {
  const http = require('node:http');
  return new Promise((resolve, reject) => {
    // GET sends no chunked body by default: give its length.
    const length = body === undefined ? {} : { 'content-length': Buffer.byteLength(body) };
    const req = http.request(url, { method, headers: { ...headers, ...length } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

module.exports = { EXAMPLE, DIST, buildExample, exampleModule, keysForTest, httpRequest, SEED, OTHER };
