'use strict';

// Copied into the temp projects of registry.test.js and run there, with
// fieldcrypt (and mongoose) installed from the local registry: what a user's
// app does. Prints one JSON line: the loaded build, an encrypt/decrypt round
// trip, and, with MONGODB_URI, a Mongoose save() through the README's
// encryptFieldIfModified('idNumber') hook with the value as stored.

async function main() {
  const fieldcrypt = require('fieldcrypt');
  const result = { nativeInfo: fieldcrypt.nativeInfo() };
  const plaintext = 'X1234567 ünïcödé';
  const stored = fieldcrypt.encrypt(plaintext);
  result.roundTrip = { stored, decrypted: fieldcrypt.decrypt(stored) };

  if (process.env.MONGODB_URI) {
    const mongoose = require('mongoose');
    const { Schema } = mongoose;
    const IdentificationSchema = new Schema({ idType: String, idNumber: String, issuingAuthority: String });
    IdentificationSchema.pre('save', fieldcrypt.encryptFieldIfModified('idNumber'));
    IdentificationSchema.methods.getDecryptedIdNumber = fieldcrypt.createDecryptMethod('idNumber');
    const Learner = mongoose.model(
      'Learner',
      new Schema({ person: { firstName: String }, personExtended: { identifications: [IdentificationSchema] } }),
    );
    await mongoose.connect(process.env.MONGODB_URI, { dbName: process.env.DB_NAME });
    try {
      const learner = new Learner({
        person: { firstName: 'Ada' },
        personExtended: { identifications: [{ idType: 'passport', idNumber: 'X1234567', issuingAuthority: 'UK' }] },
      });
      await learner.save();
      const raw = await mongoose.connection.db.collection('learners').findOne({ _id: learner._id });
      const found = await Learner.findById(learner._id);
      result.mongoose = {
        version: mongoose.version,
        stored: raw.personExtended.identifications[0].idNumber,
        decrypted: found.personExtended.identifications[0].getDecryptedIdNumber(),
      };
      await mongoose.connection.dropDatabase();
    } finally {
      await mongoose.disconnect();
    }
  }
  console.log(JSON.stringify(result));
}

main().catch((err) => {
  console.log(JSON.stringify({ error: { code: err.code, name: err.name, message: err.message } }));
  process.exitCode = 1;
});
