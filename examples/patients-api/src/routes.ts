/**
 * The routes of the original patients service, same paths, request and
 * response shapes. Every lookup is a plain Mongoose query on the decrypted
 * field names; the plugin turns the encrypted ones into blind-index lookups.
 */

import { Router, type Request, type Response } from 'express';
import type { PatientModel, Patient } from './model.js';
import { UPDATABLE_FIELDS } from './model.js';
import { currentCaller } from './caller.js';
import { present, projectionFor, type PatientOut } from './present.js';
import { HttpError } from './errors.js';
import type { AuditLog } from './audit.js';

const asString = (value: unknown, what: string): string => {
  if (typeof value !== 'string' || value === '') throw new HttpError(400, `${what} must be a non-empty string`);
  return value;
};

function patientIdOf(req: Request): number {
  const id = Number(req.params.patientId);
  if (!Number.isSafeInteger(id)) throw new HttpError(400, 'patientId must be an integer');
  return id;
}

/** A PUT body: `{ "patientRecord.ssn": ..., "medications": [...] }`; no operators, only known paths. */
function updateOf(body: unknown): Record<string, unknown> {
  if (typeof body !== 'object' || body === null || Array.isArray(body) || Object.keys(body).length === 0) {
    throw new HttpError(400, 'The body must be a JSON object of fields to set');
  }
  for (const key of Object.keys(body)) {
    const parts = key.split('.');
    if (!UPDATABLE_FIELDS.has(parts[0]) || parts.some((part) => part === '' || part.startsWith('$'))) {
      throw new HttpError(400, `Field ${JSON.stringify(key)} cannot be updated`);
    }
  }
  return body as Record<string, unknown>;
}

/** The billing object of GET /patients/billing: the JSON body, or `?type=&number=` for clients that cannot send one. */
function billingOf(req: Request): { type: string; number: string } {
  const source: Record<string, unknown> =
    req.body && typeof req.body === 'object' && Object.keys(req.body as object).length > 0
      ? (req.body as Record<string, unknown>)
      : (req.query as Record<string, unknown>);
  const extra = Object.keys(source).filter((k) => k !== 'type' && k !== 'number');
  if (extra.length > 0) throw new HttpError(400, 'A billing lookup takes exactly "type" and "number"');
  return { type: asString(source.type, 'type'), number: asString(source.number, 'number') };
}

function ssnsOf(req: Request): string[] {
  const raw = req.query.ssns;
  const list = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
  if (list.length === 0) throw new HttpError(400, 'Give one or more ssns: ?ssns=...&ssns=...');
  return list.map((s) => asString(s, 'ssns'));
}

export function patientRoutes(Patient: PatientModel, audit: AuditLog): Router {
  const router = Router();

  /** Sends after the audit entries of the decryptions it caused are stored. */
  async function send(res: Response, status: number, body: unknown): Promise<void> {
    await audit.flush();
    res.status(status).json(body);
  }

  async function findOne(filter: Record<string, unknown>): Promise<PatientOut | null> {
    const caller = currentCaller();
    const doc = await Patient.findOne(filter, projectionFor(caller)).lean<Patient & { _id: string }>();
    return doc ? present(doc, caller) : null;
  }

  async function findMany(filter: Record<string, unknown>): Promise<PatientOut[]> {
    const caller = currentCaller();
    const docs = await Patient.find(filter, projectionFor(caller))
      .sort({ patientId: 1 })
      .lean<(Patient & { _id: string })[]>();
    return docs.map((doc) => present(doc, caller));
  }

  router.get('/patients', async (req, res) => {
    const { firstName } = req.query;
    if (firstName === undefined) return send(res, 200, await findMany({}));
    await send(res, 200, await findOne({ firstName: asString(firstName, 'firstName') }));
  });

  router.get('/patients/ssn/:ssn', async (req, res) => {
    await send(res, 200, await findOne({ 'patientRecord.ssn': req.params.ssn }));
  });

  router.get('/patients/ssns', async (req, res) => {
    await send(res, 200, await findMany({ 'patientRecord.ssn': { $in: ssnsOf(req) } }));
  });

  router.get('/patients/medications/:medication', async (req, res) => {
    await send(res, 200, await findOne({ medications: req.params.medication }));
  });

  router.get('/patients/billing', async (req, res) => {
    await send(res, 200, await findOne({ 'patientRecord.billing': billingOf(req) }));
  });

  router.get('/patients/:patientId', async (req, res) => {
    const patient = await findOne({ patientId: patientIdOf(req) });
    if (!patient) throw new HttpError(404, 'Patient not found');
    await send(res, 200, patient);
  });

  router.post('/patients', async (req, res) => {
    const body = req.body as unknown;
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw new HttpError(400, 'The body must be a JSON object');
    }
    const created = await Patient.create(body as Patient);
    await send(res, 201, { status: 'success', inserted_id: created._id.toString() });
  });

  router.put('/patients/:patientId', async (req, res) => {
    const result = await Patient.updateOne({ patientId: patientIdOf(req) }, { $set: updateOf(req.body) });
    if (result.matchedCount === 0) throw new HttpError(404, 'Patient not found');
    await send(res, 200, { status: 'success', modified_count: result.modifiedCount });
  });

  router.delete('/patients/:patientId', async (req, res) => {
    const result = await Patient.deleteOne({ patientId: patientIdOf(req) });
    if (result.deletedCount === 0) throw new HttpError(404, 'Patient not found');
    await send(res, 200, { status: 'success', message: 'Patient deleted' });
  });

  return router;
}
