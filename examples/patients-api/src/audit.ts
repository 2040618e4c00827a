/**
 * The SSN access log. The plugin calls `onDecrypt` synchronously for every
 * value it decrypts, with the model, path, document id and key version (never
 * the value). Decryptions of `patientRecord.ssn` are queued with the caller
 * and written to the `audit` collection before the response leaves, so a
 * response that showed an SSN always has its audit entries stored first.
 */

import type { Collection, Connection } from 'mongoose';
import type { FieldEncryptionAuditEvent } from 'fieldcrypt';
import { currentCaller } from './caller.js';

export const AUDITED_PATHS = new Set(['patientRecord.ssn']);

export interface AuditEntry {
  who: string;
  patient: unknown;
  field: string;
  at: Date;
}

export class AuditLog {
  private pending: AuditEntry[] = [];
  private readonly collection: Collection;

  constructor(connection: Connection) {
    this.collection = connection.collection('audit');
  }

  /** The plugin's onDecrypt hook; must not throw for ordinary events (a throw fails the read). */
  readonly onDecrypt = (event: FieldEncryptionAuditEvent): void => {
    if (!AUDITED_PATHS.has(event.path)) return;
    this.pending.push({ who: currentCaller().name, patient: event.documentId, field: event.path, at: new Date() });
  };

  /** Writes what is queued. Called before every response. */
  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const entries = this.pending;
    this.pending = [];
    await this.collection.insertMany(entries);
  }
}
