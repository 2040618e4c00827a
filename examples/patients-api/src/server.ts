/**
 * `node dist/server.js`: connects, loads the keys from the key vault, serves.
 *
 * Environment: MONGODB_URI (required), MONGODB_DB (else the URI's), PORT (default 5000; 0 picks a free
 * port), HOST (default 127.0.0.1), PATIENTS_API_TOKENS (trusted callers, see
 * caller.ts), and the key vault settings of keys.ts. Prints `LISTENING <url>`
 * once it accepts requests.
 */

import mongoose from 'mongoose';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.js';
import { parseTokens } from './caller.js';
import { loadKeys } from './keys.js';

async function main(): Promise<void> {
  const uri = process.env.MONGODB_URI;
  if (!uri) throw new Error('Set MONGODB_URI');
  const connection = await mongoose.createConnection(uri, { dbName: process.env.MONGODB_DB }).asPromise();
  const vault = await loadKeys(connection);
  const app = createApp({ connection, tokens: parseTokens(process.env.PATIENTS_API_TOKENS) });
  const server = app.listen(Number(process.env.PORT ?? 5000), process.env.HOST ?? '127.0.0.1', () => {
    const { address, port } = server.address() as AddressInfo;
    console.log(`LISTENING http://${address}:${port}`);
  });
  const stop = (): void => {
    server.close();
    vault.close();
    void connection.close();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  const e = err as { code?: string; message?: string };
  // fieldcrypt's messages never contain key material or values.
  console.error(`patients-api failed to start: ${e.code ?? ''} ${e.message ?? String(err)}`);
  process.exit(1);
});
