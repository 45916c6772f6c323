import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InvalidRequestError, WorkfleetClient } from '../../lib/client/index.js';
import { freePort } from '../../lib/local-servers/free-port.js';
import { packageRoot } from '../../lib/runtime/package-root.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';

/**
 * The built CLI against a real API: `workflow apply` prints each problem of a file once, with
 * the file and the place in it, and `case start` is refused for an input the schema refuses,
 * as the typed client is.
 */

const run = promisify(execFile);
const cli = join(packageRoot(), 'dist', 'cli', 'workfleet.js');
let servers: TestServers;
let api: TestApi;
let dir: string;
let env: Record<string, string>;

async function workfleet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env, cwd: dir, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

beforeAll(async () => {
  servers = await startServers();
  api = await startApi(servers);
  const port = await freePort();
  await api.app.listen({ port, host: '127.0.0.1' });
  dir = mkdtempSync(join(tmpdir(), 'workfleet-cli-'));
  mkdirSync(join(dir, 'flows'));
  const { REDIS_URL: _redis, MONGO_URL: _mongo, ...inherited } = process.env as Record<string, string>;
  env = { ...inherited, WORKFLEET_API_URL: `http://127.0.0.1:${port}`, NO_COLOR: '1' };
});

afterAll(async () => {
  await api?.close();
  await servers?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('workfleet workflow apply', () => {
  it('prints every problem of a file once, with the file name and the place, in one run', async () => {
    const faulty = [
      'name: order',
      'steps:',
      '  - id: reserve',
      '    task: inventory.reserve',
      '    timeout: soon',
      '  - id: charge',
      '    task: payments.charge',
      '    when: input.amount >',
      '  - id: ship',
      '    task: shipping.ship',
      '    after: [chrage]',
      '  - id: notify',
      '    task: mail.send',
      '    when: steps.ship.output.sent',
      '',
    ].join('\n');
    writeFileSync(join(dir, 'flows', 'order.yaml'), faulty);
    writeFileSync(join(dir, 'flows', 'broken.yaml'), 'name: broken\nsteps:\n  - id: a\n     task: t\n  - id: b\n    input: [x\n');
    writeFileSync(join(dir, 'flows', 'good.yaml'), 'name: good\nsteps:\n  - id: a\n    task: t\n');

    const result = await workfleet('workflow', 'apply', 'flows/order.yaml', 'flows/broken.yaml', 'flows/good.yaml');
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines.filter((line) => line.startsWith('flows/order.yaml'))).toEqual([
      'flows/order.yaml:5:14: steps[0].timeout: "soon" is not a duration: use milliseconds or text like "250ms", "30s", "5m", "1h30m"',
      expect.stringMatching(/^flows\/order\.yaml:8:11: steps\[1\]\.when: is not a valid CEL expression: /),
      'flows/order.yaml:11:13: steps[2].after[0]: unknown step "chrage" (did you mean "charge"?)',
      'flows/order.yaml:14:11: steps[3].when: "steps.ship" reads step "ship", which is not guaranteed to have run: add it to after',
    ]);
    expect(lines).toContain('workfleet: flows/order.yaml: DEFINITION_INVALID (4 problems)');
    // YAML syntax errors, every one, at their line and column.
    const yamlErrors = lines.filter((line) => line.startsWith('flows/broken.yaml:'));
    expect(yamlErrors.length).toBeGreaterThanOrEqual(2);
    for (const line of yamlErrors) expect(line).toMatch(/^flows\/broken\.yaml:\d+:\d+: \S/);
    expect(lines).toContain(`workfleet: flows/broken.yaml: DEFINITION_INVALID (${yamlErrors.length} problems)`);
    expect(new Set(lines).size).toBe(lines.length);
    // The good file after them is still applied.
    expect(result.stdout).toMatch(/flows\/good\.yaml: good v1 created/);
  });
});

describe('workfleet case start', () => {
  it('is refused with INPUT_INVALID and the path of each problem when the input does not match the schema', async () => {
    writeFileSync(
      join(dir, 'flows', 'ship.yaml'),
      'name: ship\ninput:\n  type: object\n  required: [sku, quantity]\n  properties:\n    sku: { type: string }\n    quantity: { type: integer, minimum: 1 }\nsteps:\n  - id: a\n    task: t\n',
    );
    expect((await workfleet('workflow', 'apply', 'flows/ship.yaml')).code).toBe(0);
    const refused = await workfleet('case', 'start', 'ship', '--input', '{"quantity":0}');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe('workfleet: INPUT_INVALID (2 problems):\n  input.sku: is required\n  input.quantity: must be >= 1\n');
    expect((await api.engine.store.listCases({ workflow: 'ship', limit: 10 })).cases).toHaveLength(0);
    const refusedByClient = await new WorkfleetClient({ baseUrl: env.WORKFLEET_API_URL ?? '' }).start({ workflow: 'ship', input: { quantity: 0 } }).catch((error: unknown) => error);
    expect(refusedByClient).toBeInstanceOf(InvalidRequestError);
    expect(refusedByClient).toMatchObject({
      status: 400,
      code: 'INPUT_INVALID',
      details: {
        issues: [
          { path: 'input.sku', pointer: '/input/sku', message: 'is required' },
          { path: 'input.quantity', pointer: '/input/quantity', message: 'must be >= 1' },
        ],
      },
    });
    const started = await workfleet('case', 'start', 'ship', '--input', '{"sku":"pen","quantity":2}');
    expect(started.code).toBe(0);
    expect(started.stdout).toMatch(/ started$/m);
  });
});
