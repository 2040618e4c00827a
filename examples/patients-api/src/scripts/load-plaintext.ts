/**
 * insertmany_non_encrypted_documents.py, ported: inserts patients in plaintext,
 * through the driver, as the legacy unencrypted service stored them. `migrate`
 * then encrypts them in place.
 */

import mongoose from 'mongoose';
import { PATIENTS_COLLECTION } from '../model.js';
import { mongoUri } from './cli.js';

export const LEGACY_PATIENTS = [
  {
    firstName: 'Grace',
    lastName: 'Hopper',
    patientId: 34567890,
    address: '1 Navy Yard',
    patientRecord: { ssn: '555-66-7777', billing: { type: 'Visa', number: '4333333333333333' } },
    medications: ['Lisinopril', 'Omeprazole'],
  },
  {
    firstName: 'Alan',
    lastName: 'Turing',
    patientId: 45678901,
    address: '2 Bletchley Park',
    patientRecord: { ssn: '222-33-4444', billing: { type: 'MasterCard', number: '5500000000000004' } },
    medications: ['Metformin'],
  },
];

async function main(): Promise<void> {
  const client = await mongoose.mongo.MongoClient.connect(mongoUri());
  try {
    const result = await client.db(process.env.MONGODB_DB).collection(PATIENTS_COLLECTION).insertMany(LEGACY_PATIENTS);
    console.log(`inserted ${result.insertedCount} plaintext patients`);
  } finally {
    await client.close();
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`load-plaintext: ${(err as Error).message}`);
    process.exit(1);
  });
}
