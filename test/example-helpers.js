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

module.exports = { EXAMPLE, DIST, buildExample, exampleModule, SEED, OTHER };
