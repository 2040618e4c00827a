'use strict';

/**
 * `fieldcrypt` command-line tool: see docs/cli.md and
 * `fieldcrypt --help`. main(argv) resolves to the process exit code.
 */

const { parse, UsageError, USAGE } = require('./args');

async function main(argv, { stdout = process.stdout, stderr = process.stderr } = {}) {
  const io = {
    argv,
    out: (line) => stdout.write(`${line}\n`),
    err: (line) => stderr.write(`${line}\n`),
    errStream: stderr,
  };
  try {
    if (argv[0] === 'keys' && !argv.includes('--help') && !argv.includes('-h')) {
      return await require('./keys').keys(argv.slice(1), io);
    }
    const opts = parse(argv);
    const commands = require('./commands');
    const { withVaultKeys } = require('./vault-keys');
    switch (opts.command) {
      case 'help':
        io.out(USAGE);
        return 0;
      case 'keygen':
        return commands.keygen(opts, io);
      case 'status':
        return await withVaultKeys(opts, () => commands.status(opts, io));
      default:
        return await withVaultKeys(opts, () => commands.migrate(opts.command, opts, io));
    }
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`fieldcrypt: ${err.message}\nRun fieldcrypt --help for usage.`);
      return 2;
    }
    if (err && typeof err.code === 'string' && err.code.startsWith('ERR_FIELDCRYPT_')) {
      // Key and configuration errors; their messages never contain values or keys.
      io.err(`fieldcrypt: ${err.message} [${err.code}]`);
      return 2;
    }
    if (err && err.name === 'MongoServerError') {
      // Server messages can quote stored values (a duplicate key error does): code and name only.
      io.err(
        `fieldcrypt: the database refused an operation${err.operation ? ` (${err.operation})` : ''}: server error ${err.code}${err.codeName ? ` (${err.codeName})` : ''}`,
      );
      return 1;
    }
    io.err(`fieldcrypt: ${err && err.name ? `${err.name}: ` : ''}${err && err.message ? err.message : String(err)}`);
    return 1;
  }
}

module.exports = { main };
