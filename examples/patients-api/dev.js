#!/usr/bin/env node
'use strict';

/**
 * `npm run example:patients`: the service on an embedded FerretDB (the test
 * harness's, started on a free loopback port), with a throwaway local master
 * key and a trusted-caller token made for this run, then the walkthrough's
 * curl commands printed with the service's address. Ctrl-C stops everything
 * and removes the throwaway key and data.
 */

const { spawn, spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer } = require('../../test/harness');
const { walkthrough } = require('./walkthrough');

const DIST = path.join(__dirname, 'dist');

async function main() {
  const server = await startServer();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'patients-api-'));
  const token = crypto.randomBytes(18).toString('base64url');
  const env = {
    ...process.env,
    MONGODB_URI: server.uri,
    MONGODB_DB: 'patients_example',
    PATIENTS_MASTER_KEY_DIR: path.join(dir, 'master-keys'),
    PATIENTS_API_TOKENS: `you:${token}`,
    PORT: process.env.PORT || '0',
  };
  const made = spawnSync(process.execPath, [path.join(DIST, 'scripts', 'make-data-key.js')], { env, stdio: 'inherit' });
  if (made.status !== 0) throw new Error('make-data-key failed');

  const service = spawn(process.execPath, [path.join(DIST, 'server.js')], {
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const cleanup = async () => {
    service.kill('SIGTERM');
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => cleanup().then(() => process.exit(0)));

  service.stdout.setEncoding('utf8');
  service.stdout.on('data', (chunk) => {
    process.stdout.write(chunk);
    const match = /LISTENING (\S+)/.exec(chunk);
    if (!match) return;
    console.log(`\npatients-api is running at ${match[1]} (Ctrl-C stops it).`);
    console.log(`Trusted caller: add -H "Authorization: Bearer ${token}" to see SSNs and card numbers.\n`);
    console.log('Try the original service walkthrough:\n');
    for (const { command } of walkthrough(match[1]).filter((step) => step.kind === 'curl')) console.log(`${command}\n`);
  });
  service.on('exit', (code) => {
    if (code) console.error(`patients-api exited with ${code}`);
  });
}

main().catch((err) => {
  console.error(`example:patients: ${err.message}`);
  process.exit(1);
});
