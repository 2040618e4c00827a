'use strict';

/**
 * The walkthrough of README.md, read from its ```bash blocks, in order, with
 * the address rewritten: what `npm run example:patients` prints and what the
 * end-to-end suite runs, so the README cannot drift from a tested service.
 * Each step: { kind: 'curl' | 'script', command }.
 */

const fs = require('node:fs');
const path = require('node:path');

const README = path.join(__dirname, 'README.md');
const ORIGIN = 'http://127.0.0.1:5000';

function walkthrough(base = ORIGIN, readme = fs.readFileSync(README, 'utf8')) {
  const section = readme.slice(readme.indexOf('## Walkthrough'), readme.indexOf('## Configuration'));
  const steps = [];
  for (const [, block] of section.matchAll(/```bash\n([\s\S]*?)```/g)) {
    // A command may continue over lines ending in "\" or inside a quoted -d body: split at lines that start a command.
    for (const command of block.split(/\n(?=curl |node )/)) {
      const text = command.trim().split(ORIGIN).join(base);
      if (text) steps.push({ kind: text.startsWith('curl ') ? 'curl' : 'script', command: text });
    }
  }
  return steps;
}

module.exports = { walkthrough, ORIGIN };
