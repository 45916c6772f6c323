import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../lib/local-servers/free-port.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';

/**
 * The attack of issue "Reliability II", through the real API on a socket: a case whose `when`
 * nests three comprehensions over about a kilobyte of input. Unbounded, one start blocked the
 * API's event loop for seconds (about 9 s for these 300 numbers here) and `/health` timed out.
 * Now the start answers at once with the case failed (CONDITION_BUDGET_EXCEEDED), and `/health`
 * keeps answering while such starts run.
 */

let servers: TestServers;
let api: TestApi;
let baseUrl: string;

const ATTACK = 'size(input.a.map(x, input.a.map(y, input.a.map(z, x + y + z)))) > 0';
const input = { a: Array.from({ length: 300 }, (_, index) => index) };

async function request(method: string, path: string, body?: unknown) {
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tests read answers freely
  return { status: response.status, body: (await response.json()) as any };
}

beforeAll(async () => {
  servers = await startServers();
  api = await startApi(servers, { API_RATE_LIMIT_PER_MINUTE: '0' });
  const port = await freePort();
  await api.app.listen({ port, host: '127.0.0.1' });
  baseUrl = `http://127.0.0.1:${port}`;
  const applied = await request('POST', '/v1/workflows', {
    name: 'costly',
    steps: [
      { id: 'gate', task: 't.gate', when: ATTACK },
      { id: 'other', task: 't.other' },
    ],
  });
  expect(applied.status, JSON.stringify(applied.body)).toBe(201);
}, 120_000);

afterAll(async () => {
  await api?.close();
  await servers?.stop();
});

describe('a condition over its budget, through the API', () => {
  it('answers the start at once with the step failed, and /health stays responsive meanwhile', async () => {
    expect(JSON.stringify(input).length).toBeLessThan(1_300);
    // /health, asked again and again while five attacking starts are under way.
    const healthLatencies: number[] = [];
    let starting = true;
    const probing = (async () => {
      while (starting) {
        const asked = performance.now();
        const health = await fetch(`${baseUrl}/health`);
        expect(health.status).toBe(200);
        await health.arrayBuffer();
        healthLatencies.push(performance.now() - asked);
      }
    })();
    const startLatencies: number[] = [];
    const starts = await Promise.all(
      Array.from({ length: 5 }, async (_, index) => {
        const asked = performance.now();
        const started = await request('POST', '/v1/cases', { workflow: 'costly', input, idempotencyKey: `attack-${index}` });
        startLatencies.push(performance.now() - asked);
        return started;
      }),
    );
    starting = false;
    await probing;

    for (const started of starts) expect(started.status, JSON.stringify(started.body)).toBe(201);
    // Unbounded, each start blocked the event loop for 9 s or more (five: 100 s on a loaded machine,
    // /health unanswered for 78 s); bounded, the store's writes take most of the time.
    expect(Math.max(...startLatencies)).toBeLessThan(5_000);
    expect(healthLatencies.length).toBeGreaterThan(0);
    expect(Math.max(...healthLatencies)).toBeLessThan(2_000);

    const id = starts[0]?.body.id as string;
    const read = await request('GET', `/v1/cases/${id}`);
    expect(read.body.status).toBe('failed');
    expect(read.body.steps.gate.status).toBe('failed');
    expect(read.body.steps.gate.error).toMatchObject({ code: 'CONDITION_BUDGET_EXCEEDED' });
    expect(read.body.steps.gate.error.message).toContain('when of step "gate"');
    expect(read.body.steps.gate.error.message).toContain('exceeds its evaluation budget (200000 steps');
    expect(read.body.error).toMatchObject({ code: 'STEP_FAILED', stepId: 'gate' });
  });

  it('refuses comprehensions nested deeper than 3 when the definition is applied', async () => {
    const four = 'input.a.exists(w, input.a.exists(x, input.a.exists(y, input.a.exists(z, w + x + y + z == 0))))';
    const refused = await request('POST', '/v1/workflows', { name: 'deeper', steps: [{ id: 'gate', task: 't.gate', when: four }] });
    expect(refused.status).toBe(400);
    expect(refused.body.error.code).toBe('DEFINITION_INVALID');
    expect(refused.body.error.details.issues).toEqual([{ path: 'steps[0].when', message: 'nests comprehensions (exists, all, exists_one, filter, map) 4 deep; at most 3 may be nested' }]);
  });
});
