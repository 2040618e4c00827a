'use strict';

/**
 * Command-line parsing for `fieldcrypt`: node:util parseArgs plus validation.
 * Throws UsageError (exit code 2) for anything the user has to fix.
 */

const { parseArgs } = require('node:util');

class UsageError extends Error {
  get name() {
    return 'UsageError';
  }
}

const COMMANDS = ['keygen', 'status', 'encrypt', 'migrate', 'rotate', 'bind', 'decrypt', 'reindex', 'keys', 'help'];
const BIND_MODES = ['collection', 'document'];

const OPTIONS = {
  uri: { type: 'string' },
  db: { type: 'string' },
  collection: { type: 'string' },
  field: { type: 'string', multiple: true },
  config: { type: 'string' },
  to: { type: 'string' },
  bind: { type: 'string' },
  env: { type: 'string' },
  yes: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  typed: { type: 'boolean' },
  searchable: { type: 'boolean' },
  resume: { type: 'boolean' },
  'batch-size': { type: 'string' },
  concurrency: { type: 'string' },
  limit: { type: 'string' },
  partition: { type: 'string' },
  'max-retries': { type: 'string' },
  'progress-interval': { type: 'string' },
  json: { type: 'boolean' },
  quiet: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const USAGE = `Usage: fieldcrypt <command> [options]

Commands:
  keygen                 print a new random key (64 hex characters)
  status                 count plaintext, encrypted (per key version) and malformed values,
                         and the blind-index coverage of searchable fields
  encrypt (alias migrate) encrypt plaintext values in place
  rotate --to VV         re-encrypt every value under key version VV
  bind                   bind every encrypted value of the bound fields to its place
                         (collection, field, and with --bind document its document)
  decrypt --yes          decrypt every value in place (phasing encryption out)
  reindex                write the blind index of every encrypted value of the searchable
                         fields where it is missing, stale or under an older index-key
                         version (backfill and index-key rotation; docs/search.md)
  keys create|list|rewrap|retire   the key vault's data keys (see below)

Targets (status, encrypt, rotate, bind, decrypt, reindex):
  --uri URI              MongoDB connection string (default: $MONGODB_URI)
  --db NAME              database (default: the one named in the URI)
  --collection NAME      collection
  --field PATH           dotted path to a field, repeatable; a segment that meets an
                         array applies to every element, $* to every value of a map
  --config FILE          fieldcrypt.config.js: uri, db and targets (collections with
                         fields, or Mongoose models that use the fieldEncryption plugin)
  --bind MODE            the --field paths are bound to their context: collection (the
                         collection and field) or document (also the document's _id);
                         a config target says it with "bind", a model with its schema
  --searchable           the --field paths have a blind index (status, reindex): Unicode
                         NFC is their only normaliser; a config target lists them in
                         "searchable" (with normalisers), a model in its schema

Migration options (encrypt, rotate, bind, decrypt, reindex):
  --dry-run              write nothing; report what would change
  --typed                encrypt: also encrypt values of other types (numbers, dates,
                         ...) with the fieldEncryption plugin's typed codec; only for
                         apps that read the field through the plugin
  --batch-size N         documents per batch (default 500)
  --concurrency N        batches in flight (default 4)
  --limit N              stop after N documents (per collection); --resume continues
  --partition i/N        process only partition i of N (0 <= i < N): run N processes
                         with 0/N … N-1/N to share a collection
  --resume               continue from the checkpoint a stopped run saved
  --max-retries N        retries of a document after concurrent writes (default 10)

Output:
  --json                 print the summary as JSON on stdout
  --quiet                no progress output
  --progress-interval S  seconds between progress lines when stderr is not a TTY (default 10)

keygen:
  --env VV               print ENCRYPTION_KEY_VVV=<key> (e.g. --env 02)

keys (key vault, docs/key-vault.md; never prints key material):
  keys create --kms local|aws|NAME [--master-key env:VAR|file:PATH|CMK] [--alt-name N]...
              [--version VV] [--purpose encryption|index] [--status active|decrypt-only]
              [--from-env ENCRYPTION_KEY_VVV]   (move an environment key into the vault)
  keys list   [targets]      versions, providers, status, usage, stored values per version
  keys rewrap --to local|aws|NAME [--master-key …] [--version VV]...   safe to rerun
  keys retire VV [targets] [--force]   refused while stored values use VV
  --key-vault-namespace DB.COLL (default encryption.__keyVault); providers from the
  config's keyVault.kmsProviders, else FIELDCRYPT_LOCAL_MASTER_KEY and the AWS SDK's settings

Keys come from the environment as in the library: ENCRYPTION_KEY / ENCRYPTION_KEY_VNN,
ENCRYPTION_KEY_VERSION (the version encrypt writes). Index keys likewise:
ENCRYPTION_INDEX_KEY / ENCRYPTION_INDEX_KEY_VNN, ENCRYPTION_INDEX_KEY_VERSION (the
version reindex writes; default the highest configured).

Exit codes: 0 done; 1 finished with errors, or (status) values not under the current
version or blind indexes not current; 2 usage or configuration error; 130 interrupted (SIGINT; rerun with --resume).`;

function positiveInt(value, name, { min = 1, max = Number.MAX_SAFE_INTEGER } = {}) {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(
      `--${name} expects an integer from ${min}${max === Number.MAX_SAFE_INTEGER ? '' : ` to ${max}`}, got "${value}"`,
    );
  }
  return Number(value);
}

function parsePartition(value) {
  if (value === undefined) return undefined;
  const m = /^(\d+)\/(\d+)$/.exec(value);
  if (!m || Number(m[2]) < 1 || Number(m[1]) >= Number(m[2])) {
    throw new UsageError(`--partition expects i/N with 0 <= i < N (e.g. 0/3), got "${value}"`);
  }
  return { index: Number(m[1]), count: Number(m[2]) };
}

function checkBindMode(value) {
  if (value !== undefined && !BIND_MODES.includes(value)) {
    throw new UsageError(`--bind expects ${BIND_MODES.join(' or ')}, got "${value}"`);
  }
  return value;
}

function checkVersion(value, flag) {
  if (value !== undefined && !/^\d\d$/.test(value)) {
    throw new UsageError(`${flag} expects a two-digit key version such as 02, got "${value}"`);
  }
  return value;
}

/** Parses argv (without node and the script) into { command, ...options }. */
function parse(argv) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(err.message);
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) return { command: 'help' };
  const [command, ...rest] = positionals;
  if (!COMMANDS.includes(command))
    throw new UsageError(`unknown command "${command}" (commands: ${COMMANDS.join(', ')})`);
  if (rest.length) throw new UsageError(`unexpected argument "${rest[0]}"`);
  return {
    command: command === 'migrate' ? 'encrypt' : command,
    uri: values.uri,
    db: values.db,
    collection: values.collection,
    fields: values.field || [],
    config: values.config,
    to: checkVersion(values.to, '--to'),
    bind: checkBindMode(values.bind),
    env: checkVersion(values.env, '--env'),
    yes: Boolean(values.yes),
    dryRun: Boolean(values['dry-run']),
    typed: Boolean(values.typed),
    searchable: Boolean(values.searchable),
    resume: Boolean(values.resume),
    batchSize: positiveInt(values['batch-size'], 'batch-size', { max: 100_000 }) ?? 500,
    concurrency: positiveInt(values.concurrency, 'concurrency', { max: 256 }) ?? 4,
    limit: positiveInt(values.limit, 'limit'),
    partition: parsePartition(values.partition),
    maxRetries: positiveInt(values['max-retries'], 'max-retries', { min: 0, max: 1000 }) ?? 10,
    progressInterval: positiveInt(values['progress-interval'], 'progress-interval', { max: 3600 }) ?? 10,
    json: Boolean(values.json),
    quiet: Boolean(values.quiet),
  };
}

module.exports = { parse, UsageError, USAGE, BIND_MODES };
