/**
 * What a response may contain. Documents are read lean (plain objects with
 * decrypted values; the plugin never returns ciphertext or index values), then
 * the restricted fields are removed for callers who are not trusted.
 */

import type { Patient } from './model.js';
import type { Caller } from './caller.js';

export type PatientOut = Omit<Patient, 'patientRecord'> & {
  _id: string;
  patientRecord?: { ssn?: string; billing?: { type?: string; number?: string } };
};

type Stored = Patient & { _id: { toString(): string } };

export function present(doc: Stored, caller: Caller): PatientOut {
  const { _id, patientRecord, ...rest } = doc;
  const out: PatientOut = { _id: _id.toString(), ...rest };
  if (patientRecord) {
    const record: NonNullable<PatientOut['patientRecord']> = {};
    if (caller.trusted && patientRecord.ssn !== undefined) record.ssn = patientRecord.ssn;
    if (patientRecord.billing) {
      record.billing = { type: patientRecord.billing.type };
      if (caller.trusted) record.billing.number = patientRecord.billing.number;
    }
    out.patientRecord = record;
  }
  return out;
}

/**
 * The projection for a caller: an untrusted caller's query does not even read
 * the SSN, so it is never decrypted (and never audited) on their behalf.
 */
export function projectionFor(caller: Caller): Record<string, 0> | undefined {
  return caller.trusted ? undefined : { 'patientRecord.ssn': 0 };
}
