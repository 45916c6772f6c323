import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Fleet } from '../helpers/fleet.js';
import { parseMetrics, sampleValue } from '../helpers/prometheus.js';
import { startServers, type TestServers } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/** Every process's /metrics, as Prometheus scrapes them: the API on its port, the others on METRICS_PORT. */

let servers: TestServers;
let fleet: Fleet;

const scrape = async (url: string) => (await fetch(url)).text();

beforeAll(async () => {
  servers = await startServers();
  const namespace = servers.namespace();
  fleet = await Fleet.start({ redisUrl: servers.redis.url, mongoUrl: namespace.mongoUrl, prefix: namespace.prefix, workers: 1, label: 'e2e-metrics', metrics: true });
  await fetch(`${fleet.apiUrl}/v1/workflows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'm', steps: [{ id: 'f', task: 'flaky.fetch', retry: { maxAttempts: 3, backoff: { type: 'fixed', delay: 10 } }, input: { failTimes: 1 } }] }),
  });
  const { id } = (await (await fetch(`${fleet.apiUrl}/v1/cases`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ workflow: 'm' }) })).json()) as { id: string };
  await waitFor('the case to complete', async () => {
    const record = (await (await fetch(`${fleet.apiUrl}/v1/cases/${id}`)).json()) as { status: string };
    return record.status === 'completed' ? true : undefined;
  });
}, 120_000);

afterAll(async () => {
  await fleet?.stopAll();
  await servers?.stop();
});

describe('metrics', () => {
  it('the API counts started cases and times requests, by route, never by id', async () => {
    const text = await scrape(`${fleet.apiUrl}/metrics`);
    expect(sampleValue(text, 'workfleet_cases_started_total', { workflow: 'm', process: 'api' })).toBe(1);
    expect(sampleValue(text, 'workfleet_http_request_duration_seconds_count', { method: 'GET', route: '/v1/cases/:id', status: '200' })).toBeGreaterThan(0);
    const labelValues = parseMetrics(text).flatMap((sample) => Object.values(sample.labels));
    expect(labelValues.filter((value) => /[0-9a-f]{8}-[0-9a-f]{4}-7/.test(value))).toEqual([]);
  });

  it('a worker reports step durations by task and outcome, retries, breaker state and the transitions it applied', async () => {
    const text = await scrape(`http://127.0.0.1:${fleet.metricsPorts.get('worker-1')}/metrics`);
    expect(sampleValue(text, 'workfleet_step_duration_seconds_count', { task: 'flaky.fetch', outcome: 'completed', process: 'worker' })).toBe(1);
    expect(sampleValue(text, 'workfleet_step_duration_seconds_count', { task: 'flaky.fetch', outcome: 'retried' })).toBe(1);
    expect(sampleValue(text, 'workfleet_step_retries_total', { task: 'flaky.fetch' })).toBe(1);
    expect(sampleValue(text, 'workfleet_breaker_state', { breaker: 'flaky.fetch' })).toBeUndefined();
    // The Node.js defaults keep their standard names (stock dashboards use them), with the process label.
    expect(sampleValue(text, 'process_cpu_seconds_total', { process: 'worker' })).toBeGreaterThan(0);
    expect(sampleValue(text, 'nodejs_eventloop_lag_p99_seconds', { process: 'worker' })).toBeGreaterThanOrEqual(0);
    expect(parseMetrics(text).filter((sample) => /^workfleet_(process|nodejs)_/.test(sample.name))).toEqual([]);
    // Workers advance cases: the retry and the completion were applied here, and the case finished here.
    expect(sampleValue(text, 'workfleet_transitions_total', { outcome: 'applied' })).toBeGreaterThanOrEqual(2);
    expect(sampleValue(text, 'workfleet_cases_finished_total', { workflow: 'm', status: 'completed', process: 'worker' })).toBe(1);
    expect(await (await fetch(`http://127.0.0.1:${fleet.metricsPorts.get('worker-1')}/ready`)).json()).toEqual({ status: 'ready', checks: { redis: 'ok', mongodb: 'ok' } });
  });

  it('the scheduler reports, as the lease holder, queue depth by queue and state', async () => {
    const url = `http://127.0.0.1:${fleet.metricsPorts.get('scheduler')}/metrics`;
    const text = await waitFor('the queue gauge', async () => {
      const scraped = await scrape(url);
      return sampleValue(scraped, 'workfleet_queue_jobs', { queue: 'default', state: 'completed' }) === 1 ? scraped : undefined;
    });
    expect(sampleValue(text, 'workfleet_queue_jobs', { queue: 'cases', state: 'waiting' })).toBe(0);
    // No report went through a scheduler: the worker applied them all.
    expect(sampleValue(text, 'workfleet_transitions_total', { outcome: 'applied' }) ?? 0).toBe(0);
    expect(await (await fetch(`http://127.0.0.1:${fleet.metricsPorts.get('scheduler')}/health`)).json()).toEqual({ status: 'ok' });
  });

  it('the scheduler reports concurrency slots in use and units waiting by key group, never by key', async () => {
    // No worker takes queue nobody: the first unit of the key holds its one slot, two wait in line.
    const post = (path: string, body: unknown) => fetch(`${fleet.apiUrl}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    expect((await post('/v1/workflows', { name: 'keyed', steps: [{ id: 'k', task: 'demo.echo', queue: 'nobody', concurrency: { key: '${input.customer}', limit: 1, group: 'metered' } }] })).status).toBe(201);
    for (let i = 0; i < 3; i++) expect((await post('/v1/cases', { workflow: 'keyed', input: { customer: 'acme-secret-customer' } })).status).toBe(201);
    const url = `http://127.0.0.1:${fleet.metricsPorts.get('scheduler')}/metrics`;
    const text = await waitFor('the concurrency gauges', async () => {
      const scraped = await scrape(url);
      return sampleValue(scraped, 'workfleet_concurrency_waiting', { key_group: 'metered' }) === 2 ? scraped : undefined;
    });
    expect(sampleValue(text, 'workfleet_concurrency_in_use', { key_group: 'metered', process: 'scheduler' })).toBe(1);
    const samples = parseMetrics(text).filter((sample) => sample.name.startsWith('workfleet_concurrency_'));
    expect(new Set(samples.map((sample) => Object.keys(sample.labels).sort().join(',')))).toEqual(new Set(['key_group,process']));
    expect(text).not.toContain('acme-secret-customer');
  });
});
