/**
 * make_data_key.py, ported: creates the service's data keys in the key vault
 * (one for encryption, one for the blind indexes) with `fieldcrypt keys
 * create`, wrapped by the master key (a new local one is made when the
 * directory has none). Like the original, it creates no duplicate: a key
 * whose alternate name exists is left alone.
 */

import mongoose from 'mongoose';
import { KEY_VAULT_NAMESPACE, localMasterKeys, newLocalMasterKey, providerType } from '../keys.js';
import { fieldcrypt, mongoUri, CONFIG } from './cli.js';

const KEYS = [
  { purpose: 'encryption', altName: 'patients-data-key' },
  { purpose: 'index', altName: 'patients-index-key' },
] as const;

/** `--kms` and `--master-key` for new data keys: the CMK, or the newest local master key. */
function wrapping(): string[] {
  if (providerType() === 'aws') return ['--kms', 'aws', '--master-key', process.env.PATIENTS_KMS_KEY_ID as string];
  const local = localMasterKeys();
  const newest = local.length ? local[local.length - 1] : newLocalMasterKey('initial');
  if (!local.length) console.log(`created a local master key: ${newest.file}`);
  return ['--kms', newest.provider, '--master-key', `file:${newest.file}`];
}

async function main(): Promise<void> {
  const args = wrapping();
  const client = await mongoose.mongo.MongoClient.connect(mongoUri());
  try {
    const [db, coll] = KEY_VAULT_NAMESPACE.split('.');
    for (const { purpose, altName } of KEYS) {
      if (
        await client
          .db(db)
          .collection(coll)
          .findOne({ keyAltNames: altName }, { projection: { _id: 1 } })
      ) {
        console.log(`${altName}: exists, left alone`);
        continue;
      }
      fieldcrypt(['keys', 'create', '--config', CONFIG, ...args, '--purpose', purpose, '--alt-name', altName]);
    }
  } finally {
    await client.close();
  }
}

main().catch((err: unknown) => {
  console.error(`make-data-key: ${(err as Error).message}`);
  process.exit(1);
});
