import { describe, expect, it } from 'vitest';
import { queueOfMetaKey, queuePrefix } from '../../lib/adapters/bullmq/queues.js';
import { isClusterUrl, parseClusterUrl } from '../../lib/adapters/redis/cluster-url.js';
import { loadConfig } from '../../config/load.js';
import { maskUrl } from '../../lib/runtime/reach.js';

/** The Redis Cluster URL and the queues' key layout: one Redis keeps the layout it always had. */
describe('Redis Cluster URLs', () => {
  it('names the seed nodes, the credentials and TLS', () => {
    expect(parseClusterUrl('redis+cluster://10.0.0.1:7000,10.0.0.2:7001,redis-2')).toEqual({
      nodes: [
        { host: '10.0.0.1', port: 7000 },
        { host: '10.0.0.2', port: 7001 },
        { host: 'redis-2', port: 6379 },
      ],
      tls: false,
    });
    expect(parseClusterUrl('rediss+cluster://user:p%40ss@cache.example:6380')).toEqual({ nodes: [{ host: 'cache.example', port: 6380 }], tls: true, username: 'user', password: 'p@ss' });
    expect(parseClusterUrl('redis://127.0.0.1:6379')).toBeUndefined();
    expect(parseClusterUrl('redis+cluster://a:1,:2')).toBeUndefined();
    expect(parseClusterUrl('redis+cluster://a:99999')).toBeUndefined();
    expect(isClusterUrl('redis+cluster://a:1')).toBe(true);
    expect(isClusterUrl('redis://a:1')).toBe(false);
  });

  it('is taken by REDIS_URL, and its password is masked in logs', () => {
    expect(loadConfig({ REDIS_URL: 'redis+cluster://a:7000,b:7000' }).redis.url).toBe('redis+cluster://a:7000,b:7000');
    expect(() => loadConfig({ REDIS_URL: 'redis+cluster://a:7000,/x' })).toThrow(/redis\+cluster:\/\//);
    expect(maskUrl('redis+cluster://:secret@a:7000,b:7000')).toBe('redis+cluster://:***@a:7000,b:7000');
  });
});

describe("the queues' key layout", () => {
  it('is the prefix alone on one Redis, and the queue as a hash tag on a cluster', () => {
    expect(queuePrefix('workfleet', 'steps', false)).toBe('workfleet');
    expect(queuePrefix('workfleet', 'steps', true)).toBe('workfleet:{steps}');
    expect(queueOfMetaKey('workfleet', 'workfleet:steps:meta', false)).toBe('steps');
    expect(queueOfMetaKey('workfleet', 'workfleet:{steps}:steps:meta', true)).toBe('steps');
    expect(queueOfMetaKey('workfleet', 'workfleet:{steps}:other:meta', true)).toBeUndefined();
    expect(queueOfMetaKey('workfleet', 'other:{steps}:steps:meta', true)).toBeUndefined();
  });
});
