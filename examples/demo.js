'use strict';

// fieldcrypt in one page: `npm run demo`.
//
// The README quick-start: saves a learner with a passport number, shows what
// the database stores (ciphertext) and what the app reads back (plaintext).
// Uses MONGODB_URI when set; otherwise starts the test database (FerretDB,
// see test/harness.js) and stops it afterwards.

const crypto = require('node:crypto');
const mongoose = require('mongoose');
const { encryptFieldIfModified, createDecryptMethod, createDecryptedGetter } = require('fieldcrypt');
const { startServer } = require('../test/harness');

if (!process.env.ENCRYPTION_KEY) {
  process.env.ENCRYPTION_KEY = crypto.randomBytes(32).toString('hex');
  console.log('ENCRYPTION_KEY is not set: using a throwaway key for this run.\n');
}

const { Schema, model } = mongoose;

const IdentificationSchema = new Schema({ idType: String, idNumber: String, issuingAuthority: String });
IdentificationSchema.pre('save', encryptFieldIfModified('idNumber'));
IdentificationSchema.methods.getDecryptedIdNumber = createDecryptMethod('idNumber');

const DemographicsSchema = new Schema({ alienRegistrationNumber: String });
DemographicsSchema.pre('save', encryptFieldIfModified('alienRegistrationNumber'));
DemographicsSchema.virtual('alienRegistrationNumberPlain').get(createDecryptedGetter('alienRegistrationNumber'));

const Learner = model(
  'Learner',
  new Schema({
    person: { firstName: String },
    personExtended: { identifications: [IdentificationSchema] },
    demographics: DemographicsSchema,
  }),
);

async function main() {
  const server = await startServer();
  try {
    await mongoose.connect(server.uri, { dbName: 'fieldcrypt_demo' });

    const { _id } = await Learner.create({
      person: { firstName: 'Ada' },
      personExtended: { identifications: [{ idType: 'passport', idNumber: 'X1234567', issuingAuthority: 'UK' }] },
      demographics: { alienRegistrationNumber: 'A123456789' },
    });

    const raw = await mongoose.connection.db.collection('learners').findOne({ _id });
    console.log('Stored document, as read through the MongoDB driver:');
    console.log(JSON.stringify(raw, null, 2));

    const learner = await Learner.findById(_id);
    console.log('\nRead back through Mongoose:');
    console.log(`getDecryptedIdNumber():       ${learner.personExtended.identifications[0].getDecryptedIdNumber()}`);
    console.log(`alienRegistrationNumberPlain: ${learner.demographics.alienRegistrationNumberPlain}`);

    await mongoose.connection.dropDatabase();
  } finally {
    await mongoose.disconnect();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
