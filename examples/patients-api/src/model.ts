/**
 * The patient model: the original service's document shape, with the three
 * fields its CSFLE schema encrypted (`patientRecord.ssn`, `patientRecord.billing`,
 * `medications`) encrypted by the fieldEncryption plugin and searchable through
 * blind indexes, so the same equality lookups keep working.
 */

import { Schema, type Connection, type Model } from 'mongoose';
import { fieldEncryption } from 'fieldcrypt';
import type { FieldEncryptionAuditEvent } from 'fieldcrypt';

export interface Billing {
  type: string;
  number: string;
}

export interface PatientRecord {
  ssn?: string;
  billing?: Billing;
}

export interface Patient {
  firstName?: string;
  lastName?: string;
  patientId: number;
  address?: string;
  patientRecord?: PatientRecord;
  medications?: string[];
}

/** The collection both the service and the legacy loader write. */
export const PATIENTS_COLLECTION = 'patients';

/** Paths whose plaintext only trusted callers see. */
export const RESTRICTED_PATHS = ['patientRecord.ssn', 'patientRecord.billing.number'] as const;

/**
 * The fields a PUT may set, with their dotted sub-paths (`patientRecord.ssn`).
 * What the plugin cannot write consistently (part of an encrypted object, say)
 * it refuses itself, and the client gets that refusal as a 400.
 */
export const UPDATABLE_FIELDS = new Set(['firstName', 'lastName', 'address', 'patientRecord', 'medications']);

export function patientSchema(onDecrypt: (event: FieldEncryptionAuditEvent) => void): Schema<Patient> {
  const schema = new Schema<Patient>(
    {
      firstName: String,
      lastName: String,
      patientId: { type: Number, required: true, unique: true },
      address: String,
      patientRecord: {
        // SSNs are typed with and without surrounding blanks; the index ignores them.
        ssn: { type: String, encrypted: true, searchable: { trim: true } },
        // The whole object is one encrypted value, compared as a whole (keys sorted).
        billing: { type: Schema.Types.Mixed, encrypted: true, searchable: true },
      },
      medications: { type: [String], encrypted: true, searchable: { trim: true } },
    },
    { collection: PATIENTS_COLLECTION, versionKey: false },
  );
  schema.plugin(fieldEncryption, { onDecrypt });
  return schema;
}

export type PatientModel = Model<Patient>;

export function patientModel(
  connection: Connection,
  onDecrypt: (event: FieldEncryptionAuditEvent) => void,
): PatientModel {
  return connection.model<Patient>('Patient', patientSchema(onDecrypt));
}
