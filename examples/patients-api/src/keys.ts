/**
 * Where the service's keys come from: the key vault collection, whose data
 * keys (one for encryption, one for the blind indexes) are wrapped by a
 * master key:
 * - local (default): master key files in PATIENTS_MASTER_KEY_DIR, one provider
 *   `local:<name>` per `<name>.key` file (96 random bytes), so a rotated
 *   master key and the one before it can both be present while the data keys
 *   are rewrapped;
 * - AWS KMS when PATIENTS_KMS_KEY_ID names the CMK (region, endpoint and
 *   credentials from the AWS SDK's own settings: AWS_REGION,
 *   AWS_ENDPOINT_URL_KMS, AWS_ACCESS_KEY_ID...).
 */

import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import type { Connection } from 'mongoose';
import { loadKeyVault } from 'fieldcrypt';

/** CSFLE's default namespace; PATIENTS_KEY_VAULT_NAMESPACE names another. */
export const KEY_VAULT_NAMESPACE = process.env.PATIENTS_KEY_VAULT_NAMESPACE || 'encryption.__keyVault';
const KEY_FILE = /^([a-z0-9-]+)\.key$/;

export type Provider = 'local' | 'aws';

export function providerType(env: NodeJS.ProcessEnv = process.env): Provider {
  return env.PATIENTS_KMS_KEY_ID ? 'aws' : 'local';
}

function masterKeyDir(env: NodeJS.ProcessEnv): string {
  const dir = env.PATIENTS_MASTER_KEY_DIR;
  if (!dir) throw new Error('Set PATIENTS_MASTER_KEY_DIR (or PATIENTS_KMS_KEY_ID for AWS KMS)');
  return dir;
}

/** The local master keys present, oldest first: [{ name, provider, file }]. */
export function localMasterKeys(env: NodeJS.ProcessEnv = process.env): { provider: string; file: string }[] {
  const dir = masterKeyDir(env);
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => KEY_FILE.test(f)) : [];
  return files
    .map((f) => ({
      file: path.join(dir, f),
      mtime: fs.statSync(path.join(dir, f)).mtimeMs,
      name: KEY_FILE.exec(f)![1],
    }))
    .sort((a, b) => a.mtime - b.mtime || a.name.localeCompare(b.name))
    .map(({ name, file }) => ({ provider: `local:${name}`, file }));
}

/** Writes a new local master key file (96 random bytes, readable by its owner only); returns its provider. */
export function newLocalMasterKey(
  name: string,
  env: NodeJS.ProcessEnv = process.env,
): { provider: string; file: string } {
  const dir = masterKeyDir(env);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${name}.key`);
  fs.writeFileSync(file, crypto.randomBytes(96), { mode: 0o600, flag: 'wx' });
  return { provider: `local:${name}`, file };
}

/** The kmsProviders of loadKeyVault() and of the CLI's config. */
export function kmsProviders(env: NodeJS.ProcessEnv = process.env): Record<string, object> {
  if (providerType(env) === 'aws') {
    // Unset settings fall back to the AWS SDK's own (its default credential chain included).
    const aws: Record<string, string> = {};
    if (env.AWS_REGION) aws.region = env.AWS_REGION;
    if (env.AWS_ENDPOINT_URL_KMS) aws.endpoint = env.AWS_ENDPOINT_URL_KMS;
    return { aws };
  }
  return Object.fromEntries(localMasterKeys(env).map(({ provider, file }) => [provider, { key: `file:${file}` }]));
}

/** Loads the vault's data keys into fieldcrypt (once; they never become JavaScript values). */
export async function loadKeys(connection: Connection): Promise<{ close(): Promise<void> | void }> {
  return loadKeyVault({ keyVaultNamespace: KEY_VAULT_NAMESPACE, kmsProviders: kmsProviders(), connection });
}
