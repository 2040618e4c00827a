'use strict';

/**
 * The filters test/plugin-search-queries.test.js runs through every method,
 * on the fixtures of test/search-query-helpers.js (p1 indexed under key version
 * 01, p2 and p3 under 02; l1 under 01, l2 under 02). Each case: the filter,
 * the documents it selects, and the index values the rewritten filter must
 * send ([schema path, index input]: both live versions of each).
 */

const SSN = 'patientRecord.ssn';
const BILLING = 'patientRecord.billing';
const VISA = '{"number":"4111111111111111","type":"Visa"}';
const AMEX = '{"number":"378282246310005","type":"Amex"}';
const ID = 'personExtended.identifications.idNumber';

// Shapes a test server answers wrongly or rejects although the rewritten
// filter is valid MongoDB (the same shape on unencrypted fields fails the
// same way): there the commands are still checked, the result is not.
const FERRETDB_ELEMMATCH_FIELDS = {
  ferretdb: 'FerretDB v1 rejects $elemMatch with field conditions ("unknown operator")',
};
const FERRETDB_ELEMMATCH_NIN = { ferretdb: 'FerretDB v1 misses matches of $elemMatch with $in and $nin together' };
const FERRETDB_NIN_THROUGH_ARRAY = {
  ferretdb: 'FerretDB v1 applies $nin to each element of an array of subdocuments',
};
const ALL_OF_ELEMMATCH = {
  ...FERRETDB_ELEMMATCH_FIELDS,
  'mongo-java-server': 'mongo-java-server 1.46 matches nothing with $all of $elemMatch conditions',
};

const CASES = [
  // The seed's lookups.
  {
    what: "seed: { 'patientRecord.ssn': '987-65-4320' }",
    filter: { [SSN]: '987-65-4320' },
    expected: ['p1'],
    indexed: [[SSN, '987-65-4320']],
  },
  {
    what: "seed: { 'patientRecord.ssn': { $in: [two SSNs] } } (one indexed under 01, one under 02)",
    filter: { [SSN]: { $in: ['987-65-4320', '987-65-4321'] } },
    expected: ['p1', 'p2'],
    indexed: [
      [SSN, '987-65-4320'],
      [SSN, '987-65-4321'],
    ],
  },
  {
    what: "seed: { medications: 'Atorvastatin' } (an element of an encrypted array)",
    filter: { medications: 'Atorvastatin' },
    expected: ['p1', 'p2'],
    indexed: [['medications', 'Atorvastatin']],
  },
  {
    what: "seed: { 'patientRecord.billing': { type: 'Visa', number: '4111111111111111' } } (a whole container)",
    filter: { [BILLING]: { type: 'Visa', number: '4111111111111111' } },
    expected: ['p1'],
    indexed: [[BILLING, VISA]],
  },
  {
    what: 'a whole container with its keys in another order',
    filter: { [BILLING]: { number: '4111111111111111', type: 'Visa' } },
    expected: ['p1'],
    indexed: [[BILLING, VISA]],
  },
  // Scalars.
  { what: '$eq', filter: { [SSN]: { $eq: '987-65-4321' } }, expected: ['p2'], indexed: [[SSN, '987-65-4321']] },
  { what: '$ne', filter: { [SSN]: { $ne: '987-65-4320' } }, expected: ['p2', 'p3'], indexed: [[SSN, '987-65-4320']] },
  {
    what: '$nin',
    filter: { [SSN]: { $nin: ['987-65-4320', '123-45-6789'] } },
    expected: ['p2'],
    indexed: [
      [SSN, '987-65-4320'],
      [SSN, '123-45-6789'],
    ],
  },
  {
    what: '$in of a value and null (null stays on the encrypted path)',
    filter: { [BILLING]: { $in: [{ type: 'Amex', number: '378282246310005' }, null] } },
    expected: ['p2', 'p3'],
    indexed: [[BILLING, AMEX]],
  },
  { what: 'a value found nowhere', filter: { [SSN]: '000-00-0000' }, expected: [], indexed: [[SSN, '000-00-0000']] },
  {
    what: '$not of $in',
    filter: { [SSN]: { $not: { $in: ['987-65-4320'] } } },
    expected: ['p2', 'p3'],
    indexed: [[SSN, '987-65-4320']],
  },
  {
    what: '$not of $eq on a container',
    filter: { [BILLING]: { $not: { $eq: { type: 'Visa', number: '4111111111111111' } } } },
    expected: ['p2', 'p3'],
    indexed: [[BILLING, VISA]],
  },
  {
    what: "Number path: '42.0625' cast to the number 42.0625 before indexing",
    filter: { age: '42.0625' },
    expected: ['p1'],
    indexed: [['age', '42.0625']],
  },
  {
    what: 'Number path: $in of numbers',
    filter: { age: { $in: [42.0625, 57.5] } },
    expected: ['p1', 'p2'],
    indexed: [
      ['age', '42.0625'],
      ['age', '57.5'],
    ],
  },
  {
    what: 'normalisers (trim, lowercase) applied to the filter value',
    filter: { email: '  ALICE@EXAMPLE.COM ' },
    expected: ['p1'],
    indexed: [['email', 'alice@example.com']],
  },
  // null and $exists: on the encrypted path, no index needed.
  { what: 'null', filter: { age: null }, expected: ['p3'], indexed: [] },
  { what: '$exists', filter: { email: { $exists: true } }, expected: ['p1', 'p2'], indexed: [] },
  // Logical operators.
  {
    what: '$or',
    filter: { $or: [{ [SSN]: '987-65-4320' }, { medications: 'Lisinopril' }] },
    expected: ['p1', 'p2'],
    indexed: [
      [SSN, '987-65-4320'],
      ['medications', 'Lisinopril'],
    ],
  },
  {
    what: '$and on the same path',
    filter: { $and: [{ medications: 'Atorvastatin' }, { medications: 'Metformin' }] },
    expected: ['p1'],
    indexed: [
      ['medications', 'Atorvastatin'],
      ['medications', 'Metformin'],
    ],
  },
  {
    what: '$nor',
    filter: { $nor: [{ medications: 'Atorvastatin' }] },
    expected: ['p3'],
    indexed: [['medications', 'Atorvastatin']],
  },
  {
    what: 'with an unencrypted path',
    filter: { name: 'p2', medications: 'Atorvastatin' },
    expected: ['p2'],
    indexed: [['medications', 'Atorvastatin']],
  },
  // Arrays of encrypted scalars.
  {
    what: '$all on an array',
    filter: { medications: { $all: ['Atorvastatin', 'Metformin'] } },
    expected: ['p1'],
    indexed: [
      ['medications', 'Atorvastatin'],
      ['medications', 'Metformin'],
    ],
  },
  {
    what: '$elemMatch ($eq) on an array of scalars',
    filter: { medications: { $elemMatch: { $eq: 'Lisinopril' } } },
    expected: ['p2'],
    indexed: [['medications', 'Lisinopril']],
  },
  {
    what: '$elemMatch ($in and $ne on one element) on an array of scalars',
    filter: { medications: { $elemMatch: { $in: ['Metformin', 'Ibuprofen'], $ne: 'Atorvastatin' } } },
    expected: ['p1', 'p3'],
    indexed: [
      ['medications', 'Metformin'],
      ['medications', 'Atorvastatin'],
    ],
    limits: FERRETDB_ELEMMATCH_NIN,
  },
  {
    what: '$ne on an array (no element equal)',
    filter: { medications: { $ne: 'Atorvastatin' } },
    expected: ['p3'],
    indexed: [['medications', 'Atorvastatin']],
  },
  {
    what: '$nin on an array',
    filter: { medications: { $nin: ['Metformin'] } },
    expected: ['p2'],
    indexed: [['medications', 'Metformin']],
  },
  {
    what: 'an element by position',
    filter: { 'medications.0': 'Atorvastatin' },
    expected: ['p1'],
    indexed: [['medications', 'Atorvastatin']],
  },
  {
    what: 'a whole array (same elements, same order)',
    filter: { medications: ['Lisinopril', 'Atorvastatin'] },
    expected: ['p2'],
    indexed: [
      ['medications', 'Lisinopril'],
      ['medications', 'Atorvastatin'],
    ],
  },
  {
    what: 'a whole array in another order matches nothing',
    filter: { medications: ['Atorvastatin', 'Lisinopril'] },
    expected: [],
    indexed: [
      ['medications', 'Lisinopril'],
      ['medications', 'Atorvastatin'],
    ],
  },
];

const LEARNER_CASES = [
  {
    what: "seed: Learner.findOne({ 'personExtended.identifications.idNumber': 'P1234567' })",
    filter: { [ID]: 'P1234567' },
    expected: ['l1'],
    indexed: [[ID, 'P1234567']],
  },
  {
    what: '$in on a field of an array of subdocuments',
    filter: { [ID]: { $in: ['D7654321', 'P7777777'] } },
    expected: ['l1', 'l2'],
    indexed: [
      [ID, 'D7654321'],
      [ID, 'P7777777'],
    ],
  },
  {
    what: '$elemMatch with an unencrypted field of the same element',
    filter: { 'personExtended.identifications': { $elemMatch: { idType: 'passport', idNumber: 'P7777777' } } },
    expected: ['l2'],
    indexed: [[ID, 'P7777777']],
    limits: FERRETDB_ELEMMATCH_FIELDS,
  },
  {
    what: '$elemMatch: both conditions on one element, not on two',
    filter: { 'personExtended.identifications': { $elemMatch: { idType: 'license', idNumber: 'P1234567' } } },
    expected: [],
    indexed: [[ID, 'P1234567']],
    limits: FERRETDB_ELEMMATCH_FIELDS,
  },
  {
    what: '$all of two $elemMatch',
    filter: {
      'personExtended.identifications': {
        $all: [{ $elemMatch: { idNumber: 'P1234567' } }, { $elemMatch: { idNumber: 'D7654321' } }],
      },
    },
    expected: ['l1'],
    indexed: [
      [ID, 'P1234567'],
      [ID, 'D7654321'],
    ],
    limits: ALL_OF_ELEMMATCH,
  },
  {
    what: 'an element by position',
    filter: { 'personExtended.identifications.0.idNumber': 'P7777777' },
    expected: ['l2'],
    indexed: [[ID, 'P7777777']],
  },
  {
    what: '$ne',
    filter: { [ID]: { $ne: 'D7654321' } },
    expected: ['l2'],
    indexed: [[ID, 'D7654321']],
    limits: FERRETDB_NIN_THROUGH_ARRAY,
  },
];

const SUPPORTED = 'Supported: a value, $eq, $ne, $in, $nin';

/** Refused filters: the path the error names, what its message says, and the operator it reports. */
const REFUSALS = [
  {
    what: '$gt on a searchable Number',
    filter: { age: { $gt: 40 } },
    path: 'age',
    message: ['$gt', 'searchable', SUPPORTED],
    operator: '$gt',
  },
  {
    what: '$lte on a searchable path',
    filter: { [SSN]: { $lte: '9' } },
    path: SSN,
    message: ['$lte', SUPPORTED],
    operator: '$lte',
  },
  {
    what: '$regex on a searchable path',
    filter: { [SSN]: { $regex: '^987' } },
    path: SSN,
    message: ['$regex', SUPPORTED],
    operator: '$regex',
  },
  { what: 'a RegExp value', filter: { [SSN]: /^987/ }, path: SSN, message: ['$regex'], operator: '$regex' },
  { what: '$not of a RegExp', filter: { medications: { $not: /^A/ } }, path: 'medications', message: ['$regex'] },
  {
    what: '$mod on a searchable Number',
    filter: { age: { $mod: [2, 0] } },
    path: 'age',
    message: ['$mod'],
    operator: '$mod',
  },
  {
    what: '$expr naming a searchable path',
    filter: { $expr: { $eq: ['$patientRecord.ssn', '987-65-4320'] } },
    path: SSN,
    message: ['$expr'],
    operator: '$expr',
  },
  {
    what: 'a path inside a container compared as a whole',
    filter: { 'patientRecord.billing.type': 'Visa' },
    path: BILLING,
    message: ['compared as a whole'],
  },
  {
    what: '$all on a container compared as a whole',
    filter: { [BILLING]: { $all: [{ type: 'Visa' }] } },
    path: BILLING,
    message: ['$all'],
    operator: '$all',
  },
  {
    what: '$elemMatch on a scalar',
    filter: { [SSN]: { $elemMatch: { $eq: '987-65-4320' } } },
    path: SSN,
    message: ['$elemMatch'],
    operator: '$elemMatch',
  },
  {
    what: 'a whole subdocument holding a searchable field',
    filter: { 'personExtended.identifications': { idType: 'passport', idNumber: 'P1234567' } },
    path: ID,
    message: ['$elemMatch'],
  },
  {
    what: 'an encrypted path that is not searchable: equality',
    filter: { notes: 'notes-zz' },
    path: 'notes',
    message: ['searchable: true'],
  },
  {
    what: 'an encrypted path that is not searchable: $in inside $or',
    filter: { $or: [{ name: 'p3' }, { notes: { $in: ['notes-zz'] } }] },
    path: 'notes',
    message: ['searchable: true'],
  },
];

module.exports = { CASES, LEARNER_CASES, REFUSALS };
