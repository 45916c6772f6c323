import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../../lib/runtime/package-root.js';

/**
 * What the built CLI prints, run as a user runs it. Its API is a stand-in on 127.0.0.1 that
 * answers each route with a fixed body of the documented shape and keeps the requests it got,
 * so that the output can be compared exactly (no fleet makes times go backwards on demand).
 */

const run = promisify(execFile);
const cli = join(packageRoot(), 'dist', 'cli', 'workfleet.js');
const answers = new Map<string, unknown>();
const requests: Array<{ method: string; url: string; body: string }> = [];
let api: Server;
let apiUrl: string;

async function workfleet(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, WORKFLEET_API_URL: apiUrl, NO_COLOR: '1' };
  try {
    const { stdout, stderr } = await run(process.execPath, [cli, ...args], { env, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, stdout: failed.stdout ?? '', stderr: failed.stderr ?? '' };
  }
}

beforeAll(async () => {
  api = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    request.on('end', () => {
      requests.push({ method: request.method ?? '', url: request.url ?? '', body });
      const answer = answers.get(`${request.method} ${request.url}`);
      response.writeHead(answer === undefined ? 404 : request.method === 'POST' ? 201 : 200, { 'content-type': 'application/json' });
      response.end(JSON.stringify(answer ?? { error: { code: 'NOT_FOUND', message: `no ${request.url}` } }));
    });
  });
  await new Promise<void>((listening) => api.listen(0, '127.0.0.1', listening));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((closed) => api?.close(closed));
});

describe('workfleet --version', () => {
  const { version } = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };

  it.each(['--version', '-V'])('%s prints the package version', async (flag) => {
    expect(await workfleet(flag)).toEqual({ code: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('leaves --version of a command to the command: the definition version of a start', async () => {
    answers.set('POST /v1/cases', { id: 'c-1', status: 'running', workflow: 'order', version: 2 });
    const { code, stdout } = await workfleet('case', 'start', 'order', '--version', '2');
    expect({ code, stdout }).toEqual({ code: 0, stdout: 'c-1 started\n' });
    expect(JSON.parse(requests.at(-1)!.body)).toEqual({ workflow: 'order', version: 2 });
  });
});

describe('counts and durations', () => {
  it('say one version, two runs and fifteen minutes as people do', async () => {
    answers.set('GET /v1/workflows', {
      workflows: [
        { name: 'order', latestVersion: 1, versions: 1, description: 'one' },
        { name: 'refund', latestVersion: 3, versions: 3 },
      ],
    });
    answers.set('GET /v1/schedules', {
      schedules: [
        { id: 'nightly', workflow: 'order', cron: '0 3 * * *', next: '2030-01-01T03:00:00.000Z', runs: 1 },
        { id: 'often', workflow: 'refund', everyMs: 900_000, next: '2030-01-01T00:15:00.000Z', runs: 2 },
        { id: 'hourly', workflow: 'refund', everyMs: 3_900_000, next: null, runs: 0 },
      ],
    });
    const workflows = (await workfleet('workflow', 'list')).stdout;
    expect(workflows).toContain('v1 (1 version)');
    expect(workflows).toContain('v3 (3 versions)');
    const schedules = (await workfleet('schedule', 'list')).stdout.split('\n');
    expect(schedules[0]).toMatch(/cron 0 3 \* \* \* .* 1 run$/);
    expect(schedules[1]).toMatch(/every 15 min .* 2 runs$/);
    expect(schedules[2]).toMatch(/every 1 h 5 min .* 0 runs$/);
  });
});

describe('workfleet case trace', () => {
  const T = Date.parse('2030-01-01T00:00:00.000Z');
  const at = (ms: number) => new Date(T + ms).toISOString();
  // A split whose second branch's end was applied after the step that followed the first.
  const events = [
    { seq: 1, type: 'case.created', at: at(0), data: { workflow: 'order', version: 1 } },
    { seq: 2, type: 'step.scheduled', stepId: 'charge', at: at(0), data: { task: 'payments.charge', queue: 'default' } },
    { seq: 3, type: 'step.completed', stepId: 'reserve', at: at(41), data: { attempt: 1, durationMs: 12 } },
    { seq: 4, type: 'step.scheduled', stepId: 'ship', at: at(85), data: { task: 'shipping.ship', queue: 'default' } },
    { seq: 5, type: 'step.completed', stepId: 'charge', at: at(42), data: { attempt: 1, durationMs: 18 } },
    { seq: 6, type: 'case.completed', at: at(119), data: { durationMs: 119 } },
  ];
  const expected = [
    '   +0.000s  case.created                     order v1',
    '   +0.000s  step.scheduled  charge           task payments.charge on queue default',
    '   +0.041s  step.completed  reserve          attempt 1 in 12 ms',
    '   +0.085s  step.scheduled  ship             task shipping.ship on queue default',
    '   +0.085s  step.completed  charge           attempt 1 in 18 ms (stamped 43 ms earlier)',
    '   +0.119s  case.completed                   in 119 ms',
  ];

  it('prints offsets from the case start that never go backwards, with the skew of a late event', async () => {
    answers.set('GET /v1/cases/c-2/trace', { events });
    expect(await workfleet('case', 'trace', 'c-2')).toEqual({ code: 0, stdout: `${expected.join('\n')}\n`, stderr: '' });
  });

  it('follows a case with --wait on the same timeline', async () => {
    answers.set('POST /v1/cases', { id: 'c-2', status: 'running', workflow: 'order', version: 1 });
    answers.set('GET /v1/cases/c-2', { id: 'c-2', workflow: 'order', version: 1, status: 'completed', output: { ok: true }, error: null, steps: {} });
    const { code, stdout } = await workfleet('case', 'start', 'order', '--wait');
    expect(code).toBe(0);
    expect(stdout).toBe(['case c-2', ...expected, '', 'completed', '{', '  "ok": true', '}', ''].join('\n'));
  });
});
