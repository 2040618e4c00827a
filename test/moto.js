'use strict';

/**
 * A real AWS KMS API on loopback for the key vault tests: moto's server
 * (PyPI `moto[server]`, pinned below), installed once into a virtual
 * environment under .cache/ and started on a free 127.0.0.1 port.
 *
 *   const kms = await startMoto();   // { endpoint, stop, clientOptions }
 *   ... new KMSClient({ ...kms.clientOptions }) ...
 *   await kms.stop();
 *
 * An install is complete once its marker file is written; an interrupted
 * one is removed and made again. Needs python3 with the venv module (Debian:
 * python3-venv). stop() kills the server; so does the process's exit.
 */

const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const path = require('node:path');

const MOTO_VERSION = '5.2.5';
const ROOT = path.join(__dirname, '..');
const VENV = path.join(ROOT, '.cache', `moto-${MOTO_VERSION}`);
const SERVER_BIN = path.join(VENV, 'bin', 'moto_server');
const READY_TIMEOUT_MS = 60_000;

function log(message) {
  console.error(`[fieldcrypt moto] ${message}`);
}

const running = new Set();
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

/** Runs a command, its output to our stderr; rejects on failure. */
function run(command, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'inherit', 'inherit'] });
    running.add(child);
    child.once('error', (err) => {
      running.delete(child);
      if (err.code === 'ENOENT')
        err.message = `${command} was not found: install Python 3 (with venv) to run the KMS tests`;
      reject(err);
    });
    child.once('exit', (code, signal) => {
      running.delete(child);
      if (code === 0) resolve();
      else reject(new Error(`${command} ${args.join(' ')} failed (${signal || `exit ${code}`})`));
    });
  });
}

let installing;

/** Written last: a venv without it is an interrupted install, removed and made again. */
const COMPLETE = path.join(VENV, '.fieldcrypt-complete');

/**
 * The interpreter a venv script names in its first line, when it exists: a
 * venv made through another path to this .cache (a git worktree's symlink,
 * say) names one that may be gone, and must be made again.
 */
function interpreterOf(script) {
  try {
    const interpreter = fs.readFileSync(script, 'utf8').split('\n', 1)[0].replace(/^#!/, '').trim();
    return fs.existsSync(interpreter) ? interpreter : undefined;
  } catch {
    return undefined;
  }
}

/** Installs moto into .cache/moto-<version> unless it is there; resolves with moto_server's path. */
function ensureMoto() {
  if (fs.existsSync(COMPLETE) && interpreterOf(SERVER_BIN) !== undefined) return Promise.resolve(SERVER_BIN);
  installing ??= (async () => {
    // A venv's scripts name its interpreter by absolute path, so it is made in place (not renamed).
    fs.rmSync(VENV, { recursive: true, force: true });
    fs.mkdirSync(path.dirname(VENV), { recursive: true });
    log(`installing moto[server]==${MOTO_VERSION} into ${path.relative(ROOT, VENV)}`);
    try {
      await run('python3', ['-m', 'venv', VENV]);
      await run(path.join(VENV, 'bin', 'pip'), [
        'install',
        '--quiet',
        '--disable-pip-version-check',
        `moto[server]==${MOTO_VERSION}`,
      ]);
      fs.writeFileSync(COMPLETE, `moto[server]==${MOTO_VERSION}\n`);
    } catch (err) {
      fs.rmSync(VENV, { recursive: true, force: true });
      throw err;
    } finally {
      installing = undefined;
    }
    return SERVER_BIN;
  })();
  return installing;
}

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function get(url) {
  return new Promise((resolve) => {
    const req = http.get(url, (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', () => resolve(0));
  });
}

/**
 * Starts moto_server; resolves with { endpoint, clientOptions, stop } once it
 * answers. clientOptions: what a KMSClient or the aws provider needs (region
 * us-east-1, dummy credentials, the endpoint).
 */
async function startMoto() {
  const bin = await ensureMoto();
  const port = await freePort();
  const child = spawn(bin, ['-H', '127.0.0.1', '-p', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  running.add(child);
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderr = (stderr + chunk).slice(-8192);
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const endpoint = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    running.delete(child);
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`moto_server exited before it was ready; its stderr:\n${stderr}`);
    if ((await get(`${endpoint}/moto-api/`)) !== 0) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`moto_server did not answer within ${READY_TIMEOUT_MS / 1000} s; its stderr:\n${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const clientOptions = {
    region: 'us-east-1',
    endpoint,
    accessKeyId: 'testing',
    secretAccessKey: 'testing',
    maxAttempts: 1,
  };
  return { endpoint, clientOptions, stop };
}

module.exports = { ensureMoto, startMoto, MOTO_VERSION, VENV };

if (require.main === module) {
  ensureMoto().then(
    (bin) => console.log(bin),
    (err) => {
      console.error(err.message);
      process.exit(1);
    },
  );
}
