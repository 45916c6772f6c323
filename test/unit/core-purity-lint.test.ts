import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { packageRoot } from '../../lib/runtime/package-root.js';

/**
 * lib/core's purity is kept by eslint.config.js, which lists what lib/core may use (imports and
 * globals) instead of what it may not. These snippets are linted as if they were a file of
 * lib/core, with the project's own configuration: the escapes a deny-list let through are
 * refused, and ordinary core code is not.
 */

const PURITY_RULES = new Set(['no-restricted-imports', 'no-restricted-syntax', 'workfleet/core-globals']);

// Only the purity rules run, so the snippets need no type information (and no TypeScript program).
const eslint = new ESLint({
  cwd: packageRoot(),
  overrideConfig: { languageOptions: { parserOptions: { projectService: false, project: false } } },
  ruleFilter: ({ ruleId }) => PURITY_RULES.has(ruleId),
});

async function problemsIn(code: string, filePath = 'lib/core/purity-probe.ts'): Promise<Array<{ rule: string | null; message: string }>> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((message) => ({ rule: message.ruleId, message: message.message }));
}

describe("lib/core's purity rules", () => {
  it('lint the snippets as lib/core code (the file is not ignored)', async () => {
    expect(await eslint.isPathIgnored('lib/core/purity-probe.ts')).toBe(false);
  });

  it.each([
    ['the environment through globalThis', 'export const region = globalThis.process.env.REGION;', 'globalThis'],
    ['the clock through performance', 'export const started = performance.now();', 'performance'],
    ['randomness through crypto', 'export const id = crypto.randomUUID();', 'crypto'],
    ['process', 'export const pid = process.pid;', 'process'],
    ['a timer', 'setTimeout(() => undefined, 10);', 'setTimeout'],
    ['fetch', "export const answer = fetch('http://example.com');", 'fetch'],
    ['require', "export const fs: unknown = require('node:fs');", 'require'],
    ['Buffer', "export const bytes = Buffer.from('x');", 'Buffer'],
    ['a promise', 'export const later = Promise.resolve(1);', 'Promise'],
    ['structuredClone', 'export const copy = structuredClone({});', 'structuredClone'],
  ])('refuses %s', async (_what, code, name) => {
    expect(await problemsIn(code)).toEqual([{ rule: 'workfleet/core-globals', message: expect.stringContaining(`'${name}'`) as string }]);
  });

  it.each([
    ['Date.now()', 'export const now = Date.now();'],
    ['new Date()', 'export const now = new Date();'],
    ['Date()', 'export const now = Date();'],
    ['Math.random()', 'export const roll = Math.random();'],
    ['a dynamic import', "export const fs = import('node:fs');"],
    ['import.meta', 'export const here = import.meta.url;'],
  ])('refuses %s', async (_what, code) => {
    expect((await problemsIn(code)).map((problem) => problem.rule)).toEqual(['no-restricted-syntax']);
  });

  it.each([
    ["import { randomUUID } from 'node:crypto';"],
    ["import { readFileSync } from 'fs';"],
    ["import type { Db } from 'mongodb';"],
    ["import { Engine } from '../engine/engine.js';"],
    ["import { x } from './../engine/x.js';"],
    ["import { TypeCompiler } from '@sinclair/typebox/compiler';"],
    ["export { parse } from 'yaml';"],
  ])('refuses the import in %s', async (code) => {
    expect((await problemsIn(code)).map((problem) => problem.rule)).toEqual(['no-restricted-imports']);
  });

  it('lets a file in a folder of lib/core import the rest of the core, and nothing outside it', async () => {
    const inFolder = 'lib/core/steps/purity-probe.ts';
    expect(await problemsIn("import { LIMITS } from '../definition.js';\nimport { x } from './kind.js';\nexport const y = [LIMITS, x];", inFolder)).toEqual([]);
    for (const code of ["import { x } from '../../engine/x.js';", "import { x } from '../../core/state.js';", "import { x } from '../../../config/load.js';"]) {
      expect((await problemsIn(code, inFolder)).map((problem) => problem.rule)).toEqual(['no-restricted-imports']);
    }
    expect((await problemsIn('export const id = crypto.randomUUID();', inFolder)).map((problem) => problem.rule)).toEqual(['workfleet/core-globals']);
  });

  it('refuses promises and microtasks: the core is synchronous (batching lives in lib/concurrency)', async () => {
    const code = 'export const later = new Promise<void>((resolve) => queueMicrotask(resolve));';
    expect((await problemsIn(code)).map((problem) => problem.message)).toEqual([expect.stringContaining("'Promise'"), expect.stringContaining("'queueMicrotask'")]);
  });

  it('lets ordinary core code through', async () => {
    const code = `
      import { Environment } from '@marcbachmann/cel-js';
      import { Type } from '@sinclair/typebox';
      import { Value } from '@sinclair/typebox/value';
      import { CronExpressionParser } from 'cron-parser';
      import { LIMITS } from './definition.js';
      import type { Nested } from './nested/types.js';
      export function summary(now: number, items: ReadonlyArray<number>, _nested?: Nested): Record<string, unknown> {
        const local = new Map<string, number>([[String(now), Math.max(0, ...items)]]);
        const zone = new Intl.DateTimeFormat('en', { timeZone: 'UTC' });
        return { at: new Date(now).toISOString(), local: Object.fromEntries(local), limits: JSON.stringify(LIMITS), zone, missing: undefined, parts: [Environment, Type, Value, CronExpressionParser].length };
      }`;
    expect(await problemsIn(code)).toEqual([]);
  });
});
