'use strict';

/**
 * A local npm registry for registry.test.js: Verdaccio on a free 127.0.0.1
 * port, with a temp storage dir, a user whose token publishes, no uplink for
 * fieldcrypt and its platform packages (only what we publish is there), and
 * the npm registry this machine uses as the uplink for everything else
 * (mongoose and its dependencies). And publishing to it as the release does:
 * `napi pre-publish -t npm` publishes the platform package(s) and writes
 * fieldcrypt's optionalDependencies, then `npm publish`.
 */

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { ROOT, log, run, ensureVerdaccio } = require('./tools');

const READY_TIMEOUT_MS = 60_000;

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

/** The registry npm uses here: Verdaccio's uplink for what we do not publish. */
function upstreamRegistry() {
  const r = spawnSync('npm', ['config', 'get', 'registry'], { cwd: os.tmpdir(), encoding: 'utf8' });
  const url = (r.stdout || '').trim();
  if (!/^https?:\/\//.test(url)) throw new Error(`npm config get registry gave ${JSON.stringify(url)}`);
  return url;
}

function config(dir, port) {
  const own = { access: '$all', publish: '$authenticated', unpublish: '$authenticated' };
  return {
    storage: path.join(dir, 'storage'),
    auth: { htpasswd: { file: path.join(dir, 'htpasswd'), max_users: 10 } },
    uplinks: { upstream: { url: upstreamRegistry(), timeout: '60s' } },
    packages: {
      fieldcrypt: own,
      'fieldcrypt-*': own,
      '**': { access: '$all', publish: '$authenticated', proxy: 'upstream' },
    },
    web: { enable: false },
    listen: `127.0.0.1:${port}`,
    log: { type: 'stdout', format: 'pretty', level: 'warn' },
  };
}

async function waitReady(url, child) {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`verdaccio exited (${child.exitCode}) before it was ready`);
    try {
      const res = await fetch(`${url}-/ping`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`verdaccio was not ready within ${READY_TIMEOUT_MS} ms`);
}

/** Adds a user (`npm adduser`'s request) and returns its token. */
async function addUser(url) {
  const name = 'fieldcrypt-test';
  const res = await fetch(`${url}-/user/org.couchdb.user:${name}`, {
    method: 'PUT',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name, password: `pw-${process.pid}-${Date.now()}` }),
  });
  const body = await res.json();
  if (!res.ok || !body.token) throw new Error(`verdaccio adduser: ${res.status} ${JSON.stringify(body)}`);
  return body.token;
}

/**
 * Starts Verdaccio; resolves with { url, npmrc, publishNpmrc, stop }: user
 * configs (npm_config_userconfig) that point npm at it, the second with the
 * token that publishes.
 */
async function startRegistry(dir) {
  const bin = ensureVerdaccio();
  const port = await freePort();
  const url = `http://127.0.0.1:${port}/`;
  fs.mkdirSync(dir, { recursive: true });
  // JSON is YAML: Verdaccio reads it as its usual config.yaml.
  const configFile = path.join(dir, 'config.yaml');
  fs.writeFileSync(configFile, JSON.stringify(config(dir, port), null, 2));
  const child = spawn(process.execPath, [bin, '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (chunk) => process.stderr.write(`[verdaccio] ${chunk}`));
  child.stderr.on('data', (chunk) => process.stderr.write(`[verdaccio] ${chunk}`));
  const kill = () => child.kill('SIGKILL');
  process.on('exit', kill);
  const stop = async () => {
    process.removeListener('exit', kill);
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      const timer = setTimeout(kill, 5000);
      await exited;
      clearTimeout(timer);
    }
  };
  try {
    await waitReady(url, child);
    const token = await addUser(url);
    // Reads need no token, and go without: Verdaccio checks a token's password
    // (bcrypt) on every request, which would add to the install times measured.
    const npmrc = path.join(dir, 'npmrc');
    fs.writeFileSync(npmrc, `registry=${url}\n`);
    const publishNpmrc = path.join(dir, 'npmrc-publish');
    fs.writeFileSync(publishNpmrc, `registry=${url}\n//127.0.0.1:${port}/:_authToken=${token}\n`);
    log(`verdaccio is up at ${url} (storage ${path.join(dir, 'storage')})`);
    return { url, npmrc, publishNpmrc, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Publishes what the release publishes, from a copy: fieldcrypt as `npm pack`
 * makes it, with npm/<key>/ holding `files` (the platform package's .node
 * files). `napi pre-publish` gets this platform as its only target (the
 * release has them all).
 */
function publish({ stage, env, key, triple, files }) {
  fs.mkdirSync(stage, { recursive: true });
  run('npm', ['pack', '--ignore-scripts', '--pack-destination', stage, ROOT], { cwd: stage, env });
  const tarball = fs.readdirSync(stage).find((name) => name.endsWith('.tgz'));
  run('tar', ['xzf', tarball], { cwd: stage });
  const pkgDir = path.join(stage, 'package');
  const manifestPath = path.join(pkgDir, 'package.json');
  const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  manifest.napi.targets = [triple];
  fs.writeFileSync(manifestPath, JSON.stringify(manifest, null, 2) + '\n');
  const sub = path.join(pkgDir, 'npm', key);
  fs.mkdirSync(sub, { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'npm', key, 'package.json'), path.join(sub, 'package.json'));
  for (const file of files) fs.copyFileSync(file, path.join(sub, path.basename(file)));

  const napi = path.join(path.dirname(require.resolve('@napi-rs/cli/package.json')), 'dist', 'cli.js');
  // package.json's prepublishOnly, which `npm publish` runs in the release.
  run(process.execPath, [napi, 'pre-publish', '-t', 'npm', '--no-gh-release'], { cwd: pkgDir, env });
  const published = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));
  run('npm', ['publish', '--ignore-scripts'], { cwd: pkgDir, env });
  return { manifest: published, tarball: path.join(stage, tarball) };
}

module.exports = { startRegistry, publish };
