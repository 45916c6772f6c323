import { describe, expect, it } from 'vitest';
import { Metrics } from '../../lib/obs/metrics.js';
import { parseMetrics, sampleValue } from '../helpers/prometheus.js';

/** The concurrency gauges: both from one reading of the gate per scrape, by key group only. */

describe('workfleet_concurrency_in_use and _waiting', () => {
  it('report the same reading on the first scrape, one read of the gate for both', async () => {
    const metrics = new Metrics('scheduler');
    let reads = 0;
    metrics.watchConcurrency(async () => {
      reads += 1;
      // The gate answers after prom-client has asked every metric (it collects them all at once).
      await new Promise((resolve) => setTimeout(resolve, 20));
      return [{ group: 'customers', inUse: 3, waiting: 7 }];
    });
    const text = await metrics.registry.metrics();
    expect(sampleValue(text, 'workfleet_concurrency_in_use', { key_group: 'customers', process: 'scheduler' })).toBe(3);
    expect(sampleValue(text, 'workfleet_concurrency_waiting', { key_group: 'customers', process: 'scheduler' })).toBe(7);
    expect(reads).toBe(1);
    const labels = parseMetrics(text)
      .filter((sample) => sample.name.startsWith('workfleet_concurrency_'))
      .map((sample) => Object.keys(sample.labels).sort().join(','));
    expect(new Set(labels)).toEqual(new Set(['key_group,process']));
  });

  it('report nothing when this process does not hold the lease or the gate fails', async () => {
    const metrics = new Metrics('scheduler');
    metrics.watchConcurrency(async () => undefined);
    expect(sampleValue(await metrics.registry.metrics(), 'workfleet_concurrency_in_use')).toBeUndefined();
    const failing = new Metrics('scheduler');
    failing.watchConcurrency(() => Promise.reject(new Error('redis away')));
    expect(sampleValue(await failing.registry.metrics(), 'workfleet_concurrency_waiting')).toBeUndefined();
  });
});
