// PROVISIONAL: replaced once the key vault lands.
import type { Connection } from 'mongoose';
export async function loadKeys(_connection: Connection): Promise<{ close(): void }> {
  return { close() {} };
}
