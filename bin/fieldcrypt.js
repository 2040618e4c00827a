#!/usr/bin/env node
'use strict';

// `npx fieldcrypt <command>`: see `fieldcrypt --help` and README.md.

require('../lib/cli')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
