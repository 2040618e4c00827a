/** Runs the fieldcrypt CLI (this package's own `bin`) with the service's config; throws on a non-zero exit. */

import { spawnSync } from 'node:child_process';
import path from 'node:path';

const BIN = path.join(path.dirname(require.resolve('fieldcrypt/package.json')), 'bin', 'fieldcrypt.js');

/** examples/patients-api/fieldcrypt.config.js: the service's database, key vault and model. */
export const CONFIG = path.join(__dirname, '..', '..', 'fieldcrypt.config.js');

export function fieldcrypt(args: string[]): void {
  const result = spawnSync(process.execPath, [BIN, ...args], { stdio: 'inherit' });
  if (result.status !== 0)
    throw new Error(`fieldcrypt ${args.slice(0, 2).join(' ')} exited with ${result.status ?? result.signal}`);
}

export function mongoUri(): string {
  const uri = process.env.MONGODB_URI;
  if (!uri) throw new Error('Set MONGODB_URI');
  return uri;
}
