/** The Express application: JSON bodies (also on GET), the caller middleware, the routes, JSON errors. */

import express, { type Express } from 'express';
import type { Connection } from 'mongoose';
import { identifyCaller } from './caller.js';
import { errorHandler, HttpError } from './errors.js';
import { AuditLog } from './audit.js';
import { patientModel } from './model.js';
import { patientRoutes } from './routes.js';

export interface AppOptions {
  connection: Connection;
  /** Trusted callers: token -> name (see caller.ts). */
  tokens: Map<string, string>;
  /** Where log lines go; they never contain values. */
  log?: (line: string) => void;
}

export function createApp({ connection, tokens, log = (line) => console.log(line) }: AppOptions): Express {
  const audit = new AuditLog(connection);
  const Patient = patientModel(connection, audit.onDecrypt);
  const app = express();
  app.disable('x-powered-by');
  // GET /patients/billing takes a JSON body, as the original service does.
  app.use(express.json({ limit: '64kb' }));
  app.use(identifyCaller(tokens));
  app.use(patientRoutes(Patient, audit));
  app.use((_req, _res, next) => next(new HttpError(404, 'No such route')));
  app.use(errorHandler(log));
  return app;
}
