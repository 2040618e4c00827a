/**
 * rotate_key.py, ported: rewraps the data keys under a new master key with
 * `fieldcrypt keys rewrap`. No document is read or written; every stored
 * value and index keeps working. Local: a new master key file is made and the
 * previous ones stay until every instance of the service has restarted or
 * refreshed (then delete them). AWS: the new CMK is PATIENTS_NEW_KMS_KEY_ID.
 */

import { newLocalMasterKey, providerType } from '../keys.js';
import { fieldcrypt, CONFIG } from './cli.js';

function target(): string[] {
  if (providerType() === 'aws') {
    const cmk = process.env.PATIENTS_NEW_KMS_KEY_ID;
    if (!cmk) throw new Error('Set PATIENTS_NEW_KMS_KEY_ID to the CMK to rewrap under');
    return ['--to', 'aws', '--master-key', cmk];
  }
  const name = `k${new Date()
    .toISOString()
    .replace(/[^0-9]/g, '')
    .slice(0, 17)}`;
  const { provider, file } = newLocalMasterKey(name);
  console.log(`created a local master key: ${file}`);
  return ['--to', provider, '--master-key', `file:${file}`];
}

try {
  fieldcrypt(['keys', 'rewrap', '--config', CONFIG, ...target()]);
} catch (err) {
  console.error(`rotate-key: ${(err as Error).message}`);
  process.exit(1);
}
