/**
 * Who is calling. A request carrying `Authorization: Bearer <token>` with a
 * token listed in PATIENTS_API_TOKENS (`name:token,name:token`) is a trusted
 * caller named `name`; anyone else is anonymous and never sees SSNs or card
 * numbers. The caller rides along in AsyncLocalStorage so the plugin's audit
 * hook, which runs deep inside Mongoose, knows who caused a decryption.
 */

import { AsyncLocalStorage } from 'node:async_hooks';
import { timingSafeEqual, createHash } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';

export interface Caller {
  /** The token's name, or 'anonymous'. */
  name: string;
  trusted: boolean;
}

const ANONYMOUS: Caller = { name: 'anonymous', trusted: false };
const storage = new AsyncLocalStorage<Caller>();

/** Parses `name:token,name:token`; refuses empty names or tokens so a typo cannot trust everyone. */
export function parseTokens(setting: string | undefined): Map<string, string> {
  const tokens = new Map<string, string>();
  for (const entry of (setting ?? '').split(',')) {
    if (entry.trim() === '') continue;
    const at = entry.indexOf(':');
    const name = entry.slice(0, at).trim();
    const token = entry.slice(at + 1).trim();
    if (at < 1 || name === '' || token.length < 16) {
      throw new Error('PATIENTS_API_TOKENS: each entry must be name:token, with a token of at least 16 characters');
    }
    tokens.set(token, name);
  }
  return tokens;
}

// Compares digests, so the comparison takes the same time whatever the token's length.
const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

function callerFor(header: string | undefined, tokens: Map<string, string>): Caller {
  const match = /^Bearer (\S+)$/.exec(header ?? '');
  if (!match) return ANONYMOUS;
  const offered = digest(match[1]);
  for (const [token, name] of tokens) {
    if (timingSafeEqual(offered, digest(token))) return { name, trusted: true };
  }
  return ANONYMOUS;
}

/** Express middleware: runs the rest of the request inside its caller's context. */
export function identifyCaller(tokens: Map<string, string>) {
  return function identify(req: Request, _res: Response, next: NextFunction): void {
    storage.run(callerFor(req.get('authorization'), tokens), next);
  };
}

/** The caller of the request being served; anonymous outside a request (scripts). */
export function currentCaller(): Caller {
  return storage.getStore() ?? ANONYMOUS;
}
