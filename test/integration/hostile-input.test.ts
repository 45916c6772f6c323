import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/obs/logger.js';
import { Metrics } from '../../lib/obs/metrics.js';
import type { Delivery } from '../../lib/ports/queues.js';
import { intakeProcessor } from '../../scheduler/intake.js';
import { startApi, type TestApi } from '../helpers/api.js';
import { startServers, type TestServers } from '../helpers/servers.js';

/**
 * Hostile input at every door: each gets a clear 4xx (or an unrecoverable intake failure) with a
 * code, no process falls over, no stack trace leaves, and nothing half-written remains.
 */

let servers: TestServers;
let api: TestApi;

const workflow = { name: 'order', steps: [{ id: 'reserve', task: 'inventory.reserve', input: { sku: '${input.sku}' } }] };
const CASE = '01a00000-0000-7000-8000-000000000000';
const json = { 'content-type': 'application/json' };

const deep = (levels: number) => `${'['.repeat(levels)}${']'.repeat(levels)}`;
const deepObject = (levels: number) => `${'{"a":'.repeat(levels)}1${'}'.repeat(levels)}`;

beforeAll(async () => {
  servers = await startServers();
  api = await startApi(servers);
  expect((await api.call('POST', '/v1/workflows', { payload: workflow })).status).toBe(201);
}, 60_000);

afterAll(async () => {
  await api?.close();
  await servers?.stop();
});

async function counts() {
  const [cases, workflows] = await Promise.all([api.engine.store.listCases({ limit: 100 }), api.engine.store.listWorkflows()]);
  return { cases: cases.cases.length, workflows: JSON.stringify(workflows) };
}

/** Every route that takes a body or parameters, with what may be sent there. */
const bodies: Array<[method: 'POST', url: string]> = [
  ['POST', '/v1/cases'],
  ['POST', '/v1/workflows'],
  ['POST', `/v1/cases/${CASE}/cancel`],
  ['POST', `/v1/cases/${CASE}/signals/go`],
  ['POST', '/v1/cases/bulk/retry'],
  ['POST', '/v1/cases/bulk/cancel'],
  ['POST', '/v1/cases/bulk/signal'],
  ['POST', '/v1/schedules'],
  ['POST', '/v1/keys'],
];

const hostileBodies: Array<[what: string, body: string | Buffer]> = [
  ['truncated JSON', '{"workflow":"order","input":{"sku":'],
  ['not JSON at all', '\u0000\u0001binary'],
  ['prototype key', '{"workflow":"order","__proto__":{"isAdmin":true}}'],
  ['constructor.prototype', '{"workflow":"order","constructor":{"prototype":{"isAdmin":true}}}'],
  ['10,000 levels of arrays', deep(10_000)],
  ['10,000 levels of objects', deepObject(10_000)],
  ['wrong types everywhere', '{"workflow":["order"],"version":{"$gt":0},"input":"text","idempotencyKey":12}'],
  ['operator object as a value', '{"workflow":{"$ne":null},"name":{"$regex":".*"}}'],
  ['a 900 KB string', JSON.stringify({ workflow: 'order', input: { sku: 'x'.repeat(900_000) } })],
  ['a 300,000-element array', JSON.stringify({ workflow: 'order', input: { items: Array.from({ length: 300_000 }, () => 1) } })],
  ['10 MB body', Buffer.alloc(10 * 1024 * 1024, 'a')],
];

describe('every route with a body', () => {
  it('answers hostile bodies with a 4xx and a code, never a 500, and keeps nothing of them', async () => {
    const before = await counts();
    for (const [method, url] of bodies) {
      for (const [what, body] of hostileBodies) {
        const response = await api.call(method, url, { payload: body, headers: json });
        const label = `${method} ${url}: ${what}`;
        expect([label, response.status >= 400 && response.status < 500]).toEqual([label, true]);
        expect([label, typeof response.body?.error?.code]).toEqual([label, 'string']);
        expect(JSON.stringify(response.body)).not.toMatch(/at .*\.(js|ts):\d+|node_modules/);
      }
    }
    expect(await counts()).toEqual(before);
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    // And the API still serves.
    expect((await api.call('POST', '/v1/cases', { payload: { workflow: 'order', input: { sku: 'ok' } } })).status).toBe(201);
  });

  it('refuses a body over the limit with 413 before reading it all', async () => {
    const response = await api.call('POST', '/v1/cases', { payload: Buffer.alloc(10 * 1024 * 1024, ' '), headers: json });
    expect(response.status).toBe(413);
    expect(response.body.error.code).toBe('BODY_TOO_LARGE');
  });
});

describe('query strings and path parameters', () => {
  it('refuse operators, wrong types and oversized values', async () => {
    const urls = [
      '/v1/cases?status[$ne]=completed',
      '/v1/cases?workflow[$regex]=.*',
      '/v1/cases?businessKey[$gt]=',
      '/v1/cases?limit=-1',
      '/v1/cases?limit=1e9',
      '/v1/cases?cursor=%00%00',
      `/v1/cases?workflow=${'w'.repeat(10_000)}`,
      '/v1/cases?from=yesterday',
      '/v1/cases/%24where',
      `/v1/cases/${'x'.repeat(5_000)}`,
      '/v1/workflows/..%2F..%2Fetc%2Fpasswd',
      '/v1/workflows/order/versions/one',
      '/v1/workflows/order/versions/-1',
    ];
    for (const url of urls) {
      const response = await api.call('GET', url);
      expect([url, response.status >= 400 && response.status < 500]).toEqual([url, true]);
      expect([url, typeof response.body?.error?.code]).toEqual([url, 'string']);
    }
  });
});

describe('hostile workflow definitions', () => {
  const refused = async (definition: unknown) => {
    const response = await api.call('POST', '/v1/workflows', { payload: definition as object });
    return { status: response.status, code: response.body?.error?.code as string, message: response.body?.error?.message as string };
  };

  it('refuses cycles, 10,000 steps and expressions reaching for code, storing none of them', async () => {
    const before = await counts();
    const hostile: Array<[string, unknown]> = [
      [
        'a cycle',
        {
          name: 'cycle',
          steps: [
            { id: 'a', task: 't', after: ['b'] },
            { id: 'b', task: 't', after: ['a'] },
          ],
        },
      ],
      ['a self-loop', { name: 'self', steps: [{ id: 'a', task: 't', after: ['a'] }] }],
      ['10,000 steps', { name: 'huge', steps: Array.from({ length: 10_000 }, (_, i) => ({ id: `s${i}`, task: 't', ...(i > 0 ? { after: [`s${i - 1}`] } : {}) })) }],
      [
        'a condition calling a constructor',
        {
          name: 'ctor',
          steps: [
            { id: 'a', task: 't' },
            { id: 'b', task: 't', after: ['a'], when: "input.constructor.constructor('return process')()" },
          ],
        },
      ],
      ['a condition naming process', { name: 'proc', steps: [{ id: 'a', task: 't', when: "process.mainModule.require('child_process')" }] }],
      ['a condition with an unknown function', { name: 'fn', steps: [{ id: 'a', task: 't', when: 'eval("1")' }] }],
      ['a template reaching a prototype', { name: 'proto', steps: [{ id: 'a', task: 't', input: { x: '${input.__proto__.constructor}' } }] }],
      ['a 100 KB condition', { name: 'long', steps: [{ id: 'a', task: 't', when: `input.x == ${'1 + '.repeat(25_000)}1` }] }],
      ['a step id with an operator', { name: 'op', steps: [{ id: '$where', task: 't' }] }],
      ['a name with a path', { name: '../../etc', steps: [{ id: 'a', task: 't' }] }],
    ];
    for (const [what, definition] of hostile) {
      const answer = await refused(definition);
      expect([what, answer.status, answer.code]).toEqual([what, 400, 'DEFINITION_INVALID']);
      expect(answer.message.length).toBeLessThan(20_000);
    }
    expect(await counts()).toEqual(before);
  });
});

describe('the intake queue', () => {
  const logger = createLogger({ level: 'silent', name: 'intake-test' });
  const delivery = (data: unknown, name = 'start'): Delivery<unknown> => ({
    id: `hostile-${Math.random().toString(36).slice(2)}`,
    queue: 'cases',
    name,
    data,
    enqueuedAt: Date.now(),
    attempt: 1,
    maxAttempts: 1,
    signal: new AbortController().signal,
    reportProgress: async () => undefined,
  });

  it('fails malformed start jobs once, unrecoverably, with a coded reason, and makes no case', async () => {
    const before = await counts();
    const processor = intakeProcessor({ cases: api.engine.cases, clock: api.engine.clock, logger, metrics: new Metrics('scheduler') });
    const hostile: Array<[string, unknown, string?]> = [
      ['null', null],
      ['a number', 42],
      ['an array', [{ workflow: 'order' }]],
      ['prototype key', JSON.parse('{"workflow":"order","__proto__":{"polluted":1}}')],
      ['operator in a field', { workflow: { $ne: null } }],
      ['deep input', { workflow: 'order', input: JSON.parse(deepObject(5_000)) }],
      ['huge input', { workflow: 'order', input: { blob: 'x'.repeat(2 * 1024 * 1024) } }],
      ['a workflow that does not exist', { workflow: 'nope' }],
      ['an unknown job name', { workflow: 'order' }, 'create'],
    ];
    for (const [what, data, name] of hostile) {
      const outcome = await processor(delivery(data, name));
      expect([what, outcome.kind]).toEqual([what, 'fail']);
      expect([what, outcome.kind === 'fail' && /^[A-Z_]+: \S/.test(outcome.reason)]).toEqual([what, true]);
    }
    expect(await counts()).toEqual(before);
  });
});
