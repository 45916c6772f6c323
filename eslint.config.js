// @ts-check
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const nodeBuiltins = builtinModules.filter((name) => !name.startsWith('_'));
const noInfrastructure = {
  group: ['node:*', ...nodeBuiltins, 'bullmq', 'mongodb', 'ioredis', 'pino', 'pino-*', 'opossum', 'fastify', 'prom-client', 'convict'],
  message: 'lib/core is pure: no I/O or infrastructure imports (pure core, thin shell).',
};

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', '.workfleet/', 'test-artifacts/', 'tools/'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['eslint.config.js', 'vitest.config.ts'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false } }],
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      '@typescript-eslint/no-explicit-any': ['error', { ignoreRestArgs: true }],
      '@typescript-eslint/only-throw-error': 'off',
      '@typescript-eslint/prefer-promise-reject-errors': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true, allowNullish: true }],
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.name='eval']", message: 'Never evaluate code; definitions are data.' },
        { selector: "NewExpression[callee.name='Function']", message: 'Never build functions from text; definitions are data.' },
      ],
    },
  },
  {
    // The pure core: no I/O, no clock, no randomness. Time and ids come in as arguments.
    files: ['lib/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            noInfrastructure,
            { group: ['../*', '!../core/*'], message: 'lib/core depends on nothing outside it.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', 'process', 'setTimeout', 'setInterval', 'fetch', 'require'],
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'The core takes `now` as an argument.' },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'The core takes `now` as an argument.' },
        { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'The core takes randomness as an argument.' },
        { selector: "CallExpression[callee.name='eval']", message: 'Never evaluate code; definitions are data.' },
        { selector: "NewExpression[callee.name='Function']", message: 'Never build functions from text; definitions are data.' },
      ],
    },
  },
  {
    // Files in lib/core's folders (machine/, steps/) reach the rest of the core one level up.
    files: ['lib/core/*/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            noInfrastructure,
            { group: ['../../*', '!../../core/*'], message: 'lib/core depends on nothing outside it.' },
          ],
        },
      ],
    },
  },
  {
    // Configuration is read once, in config/, and passed down; only the CLI entry hands the environment over.
    files: ['api/**/*.ts', 'scheduler/**/*.ts', 'workers/**/*.ts', 'lib/**/*.ts'],
    rules: {
      'no-restricted-properties': ['error', { object: 'process', property: 'env', message: 'Read settings from the Config passed down (config/).' }],
    },
  },
  {
    // The servers the dev fleet, the tests, the benchmark and chaos start on this machine (redis-server,
    // FerretDB, PostgreSQL databases) are not part of a production process: only `workfleet dev` starts them.
    files: ['api/**/*.ts', 'scheduler/**/*.ts', 'workers/**/*.ts', 'config/**/*.ts', 'cli/**/*.ts', 'lib/**/*.ts'],
    ignores: ['lib/core/**', 'lib/local-servers/**', 'cli/dev.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: ['**/local-servers/*'], message: 'lib/local-servers starts local servers for development and tests; production code does not use it.' }] },
      ],
    },
  },
  {
    // Child processes inherit the environment they are given; that is passing it on, not reading settings.
    files: ['lib/local-servers/ferretdb.ts'],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'chaos/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
);
