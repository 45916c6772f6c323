// @ts-check
import tseslint from 'typescript-eslint';

/**
 * The globals lib/core may read: the ECMAScript built-ins it uses, none of which does I/O. Not
 * globalThis, process, performance, crypto, fetch, timers, Promise (the core is synchronous) or
 * anything else the runtime adds. Date stays for `new Date(ms)` and Math for arithmetic; their
 * clock and randomness are refused by no-restricted-syntax below.
 */
const CORE_GLOBALS = [
  'undefined',
  'Infinity',
  'Object',
  'Array',
  'Map',
  'Set',
  'WeakMap',
  'String',
  'Number',
  'Boolean',
  'BigInt',
  'Uint8Array',
  'JSON',
  'Math',
  'RegExp',
  'Error',
  'Date',
  'Intl',
  'decodeURIComponent',
];

/**
 * A rule refusing every value reference to a global not in `allowedNames`. A global here is any
 * name the file does not declare or import: an ECMAScript built-in, a global of the runtime's
 * type declarations (@types/node), or nothing at all. Types are not values and are not checked.
 * @param {readonly string[]} allowedNames
 * @returns {import('eslint').Rule.RuleModule}
 */
const onlyTheseGlobals = (allowedNames) => ({
  meta: {
    type: 'problem',
    schema: [],
    messages: { notAllowed: "'{{name}}' is not among the globals this code may use (eslint.config.js): pass what it gives as an argument." },
  },
  create(context) {
    const allowed = new Set(allowedNames);
    return {
      'Program:exit'(program) {
        const globalScope = context.sourceCode.getScope(program);
        // Unresolved references stay in `through`; references to a global ESLint or TypeScript's
        // libraries declare resolve to a variable without a definition in the source.
        const implicit = globalScope.variables.filter((variable) => variable.defs.length === 0);
        for (const reference of [...globalScope.through, ...implicit.flatMap((variable) => variable.references)]) {
          if (/** @type {{ isValueReference?: boolean }} */ (reference).isValueReference === false) continue;
          const { name } = reference.identifier;
          if (!allowed.has(name)) context.report({ node: reference.identifier, messageId: 'notAllowed', data: { name } });
        }
      },
    };
  },
});

/**
 * What a file of lib/core may import, `depth` folders below lib/core: files of lib/core (relative
 * paths going up at most `depth` folders, so never out of lib/core), and packages that compute
 * without I/O: cel-js (the condition interpreter), TypeBox's types and values (not its compiler,
 * which builds functions from text), cron-parser (given a start date and a seed for `H` fields,
 * as lib/core/schedules.ts gives them, it reads neither the clock nor Math.random).
 * @param {number} depth
 */
const coreImports = (depth) => ({
  regex: `^(?!(\\./${depth > 0 ? `|(\\.\\./){1,${depth}}` : ''})(?!.*\\.\\.)|@marcbachmann/cel-js$|@sinclair/typebox(/value)?$|cron-parser$)`,
  message: 'lib/core is pure: it imports only lib/core files and the pure packages listed in eslint.config.js (pure core, thin shell).',
});

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
    // The pure core: no I/O, no clock, no randomness. Time and ids come in as arguments. Both lists
    // below say what lib/core may use, not what it may not: anything new has to be added here, on
    // purpose. test/unit/core-purity-lint.test.ts shows the escapes they close.
    files: ['lib/core/**/*.ts'],
    plugins: {
      workfleet: {
        rules: {
          'core-globals': onlyTheseGlobals(CORE_GLOBALS),
        },
      },
    },
    rules: {
      'no-restricted-imports': ['error', { patterns: [coreImports(0)] }],
      'workfleet/core-globals': 'error',
      'no-restricted-syntax': [
        'error',
        { selector: "CallExpression[callee.object.name='Date'][callee.property.name='now']", message: 'The core takes `now` as an argument.' },
        { selector: "NewExpression[callee.name='Date'][arguments.length=0]", message: 'The core takes `now` as an argument.' },
        { selector: "CallExpression[callee.name='Date']", message: 'The core takes `now` as an argument.' },
        { selector: "CallExpression[callee.object.name='Math'][callee.property.name='random']", message: 'The core takes randomness as an argument.' },
        { selector: 'ImportExpression', message: 'lib/core is pure: no imports at run time.' },
        { selector: 'MetaProperty', message: 'lib/core is pure: it does not know where its files are.' },
        { selector: "CallExpression[callee.name='eval']", message: 'Never evaluate code; definitions are data.' },
        { selector: "NewExpression[callee.name='Function']", message: 'Never build functions from text; definitions are data.' },
      ],
    },
  },

  {
    // Files in lib/core's folders (machine/, steps/) reach the rest of the core one level up.
    files: ['lib/core/*/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { patterns: [coreImports(1)] }] },
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
      'no-restricted-imports': ['error', { patterns: [{ group: ['**/local-servers/*'], message: 'lib/local-servers starts local servers for development and tests; production code does not use it.' }] }],
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
