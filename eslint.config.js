'use strict';

// ESLint's recommended rules for every JavaScript file of the package, its
// tests, benchmarks and examples; formatting is Prettier's (see
// .prettierrc.json), so stylistic rules are off (eslint-config-prettier).

const js = require('@eslint/js');
const globals = require('globals');
const prettier = require('eslint-config-prettier');

module.exports = [
  // .stryker-tmp, reports, mutants.out: npm run mutate's sandboxes and reports (git-ignored).
  {
    ignores: [
      'target/**',
      'node_modules/**',
      '.cache/**',
      '**/*.d.ts',
      '.stryker-tmp/**',
      'reports/**',
      'examples/*/dist/**',
      'mutants.out*/**',
    ],
  },
  js.configs.recommended,
  prettier,
  {
    files: ['**/*.js'],
    languageOptions: { ecmaVersion: 2023, sourceType: 'commonjs', globals: { ...globals.node } },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: { ...globals.node } },
  },
  {
    rules: {
      // Unused arguments document a callback's shape (hooks, reporters).
      // Rest siblings drop a property on purpose (`const { more, ...doc } = values`).
      'no-unused-vars': ['error', { args: 'none', caughtErrors: 'none', ignoreRestSiblings: true }],
      // `for (;;)` retry loops end by return or throw.
      'no-constant-condition': ['error', { checkLoops: false }],
      'no-new-wrappers': 'error',
      eqeqeq: ['error', 'smart'],
    },
  },
  {
    // Tests build String objects and the like on purpose, to see them refused.
    files: ['__test__/**', 'test/**'],
    rules: { 'no-new-wrappers': 'off' },
  },
];
