/**
 * Errors become JSON 4xx/5xx responses in the original service's shape
 * (`{ status: 'failure', message }`), never a stack trace. Log lines name the
 * route pattern and error code only: URLs carry SSNs and medications, and some
 * driver and validation messages quote values.
 */

import type { NextFunction, Request, Response } from 'express';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

interface Described {
  status: number;
  message: string;
  code?: string;
}

function describe(err: unknown): Described {
  if (err instanceof HttpError) return { status: err.status, message: err.message, code: err.code };
  const e = err as { type?: string; code?: unknown; name?: string; message?: string; path?: string };
  // express.json(): a body that is not JSON.
  if (e.type === 'entity.parse.failed') return { status: 400, message: 'Malformed JSON body', code: 'BAD_JSON' };
  if (e.type === 'entity.too.large') return { status: 413, message: 'Body too large', code: 'TOO_LARGE' };
  // fieldcrypt refusals carry stable codes and messages that never contain values.
  if (typeof e.code === 'string' && e.code.startsWith('ERR_FIELDCRYPT_')) {
    return { status: 400, message: e.message ?? 'Refused by fieldcrypt', code: e.code };
  }
  // Mongoose cast and validation messages may quote the value: name the path only.
  if (e.name === 'CastError' || e.name === 'ValidationError' || e.name === 'StrictModeError') {
    return { status: 400, message: `Invalid value${e.path ? ` for ${e.path}` : ''}`, code: e.name };
  }
  if (e.code === 11000)
    return { status: 409, message: 'A patient with these values already exists', code: 'DUPLICATE' };
  return { status: 500, message: 'Internal error', code: 'INTERNAL' };
}

export function errorHandler(log: (line: string) => void) {
  return function handleError(err: unknown, req: Request, res: Response, _next: NextFunction): void {
    const { status, message, code } = describe(err);
    const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
    log(`${req.method} ${route} -> ${status}${code ? ` ${code}` : ''}`);
    res.status(status).json({ status: 'failure', message, ...(code ? { code } : {}) });
  };
}
