import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { validate, ValidationSeverity } from 'dockerfile-utils';
import { describe, expect, it } from 'vitest';
import { DOCKERFILE, ignoredPaths, parseDockerfile } from './dockerfile.js';
import { ROOT } from './support.js';

/**
 * deploy/Dockerfile, without Docker: linted by dockerfile-utils (the validator behind the VS
 * Code Docker extension: syntax, flags, instruction arguments) with every check an error, then
 * held to the image contract of issue 7 (the checks hadolint would make, and ours).
 */

const content = readFileSync(DOCKERFILE, 'utf8');
const { stages, args } = parseDockerfile(content);
const runtime = stages.at(-1)!;
const steps = (keyword: string) => runtime.steps.filter((step) => step.keyword === keyword);

describe('deploy/Dockerfile', () => {
  it('passes the linter with every check set to error', () => {
    const all = ValidationSeverity.ERROR;
    const problems = validate(content, {
      deprecatedMaintainer: all,
      directiveCasing: all,
      emptyContinuationLine: all,
      instructionCasing: all,
      instructionCmdMultiple: all,
      instructionEntrypointMultiple: all,
      instructionHealthcheckMultiple: all,
      instructionJSONInSingleQuotes: all,
      instructionWorkdirRelative: all,
    });
    expect(problems.map((problem) => `line ${problem.range.start.line + 1}: ${typeof problem.message === 'string' ? problem.message : problem.message.value}`)).toEqual([]);
    // The linter is live: a broken file fails it.
    expect(validate('FROM node:24-slim\nEXPOSE http\nHEALTHCHECK --interval=5 CMD true\n').length).toBeGreaterThanOrEqual(2);
  });

  it('builds in stages on Node 24 slim, the major the project runs on', () => {
    expect(stages.length).toBeGreaterThanOrEqual(3);
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
    const nodeMajor = /\d+/.exec(manifest.devDependencies.node ?? '')?.[0];
    for (const stage of stages) {
      expect(stage.from, 'a tagged base image, never latest').toMatch(/^node:(\d+)[\w.-]*-slim(@sha256:[0-9a-f]{64})?$/);
      expect(/^node:(\d+)/.exec(stage.from)?.[1]).toBe(nodeMajor);
    }
    expect(args.NODE_IMAGE).toBeDefined();
  });

  it('installs only production dependencies into the image, exactly from the lockfile', () => {
    const deps = stages.find((stage) => stage.name === 'deps')!;
    const install = deps.steps.filter((step) => step.keyword === 'RUN').map((step) => step.text);
    expect(install.some((text) => /npm ci\b.*--omit=dev/.test(text))).toBe(true);
    expect(install.some((text) => /npm install\b/.test(text))).toBe(false);
    const copies = steps('COPY').map((step) => step.flags.from);
    expect(copies).toContain('deps');
    // node_modules comes only from the production-only stage.
    const modules = steps('COPY').filter((step) => /node_modules/.test(step.text));
    expect(modules.map((step) => step.flags.from)).toEqual(['deps']);
    expect(steps('ADD')).toEqual([]);
  });

  it('runs as a non-root user with an exec-form entry point that selects the process', () => {
    const users = steps('USER');
    expect(users.at(-1)?.text).toMatch(/^(node|[1-9]\d*)$/);
    const [entrypoint] = steps('ENTRYPOINT');
    expect(entrypoint?.exec).toEqual(['node', 'dist/cli/workfleet.js']);
    expect(steps('CMD')[0]?.exec).toEqual(['api']);
    expect(
      steps('ENV')
        .map((step) => step.text)
        .join(' '),
    ).toMatch(/NODE_ENV=production/);
    expect(
      steps('EXPOSE')
        .map((step) => step.text)
        .join(' ')
        .split(/\s+/)
        .sort(),
    ).toEqual(['8080', '9464']);
  });

  it('has an exec-form healthcheck with an interval, a timeout and a start period', () => {
    const [healthcheck] = steps('HEALTHCHECK');
    expect(healthcheck?.exec?.[0]).toBe('node');
    expect(Object.keys(healthcheck!.flags).sort()).toEqual(['interval', 'retries', 'start-period', 'timeout']);
  });

  it('keeps the build context to sources: no node_modules, dist, .git or secrets', () => {
    const ignored = ignoredPaths();
    for (const path of ['node_modules', 'dist', '.git', 'test-artifacts', '.workfleet']) expect(ignored).toContain(path);
    // Plain paths only, so the build-and-start test can copy the context the same way.
    for (const path of ignored) expect(path).toMatch(/^[\w.-]+(\/[\w.-]+)*$/);
  });
});
