import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../config/load.js';
import { configTable } from '../../config/table.js';

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
}

describe('loadConfig', () => {
  it('gives working defaults for development', () => {
    const config = loadConfig({});
    expect(config.env).toBe('development');
    expect(config.redis).toEqual({ url: 'redis://127.0.0.1:6379', prefix: 'workfleet', waitReplicas: 0, waitTimeoutMs: 1_000 });
    expect(config.worker.queues).toEqual(['default']);
  });

  it('reads every setting from its variable, with strict types', () => {
    const config = loadConfig({ API_PORT: '9000', WORKER_QUEUES: 'a, b', AUTH_ENABLED: 'yes', BULLMQ_PREFIX: 'acme' });
    expect(config.api.port).toBe(9000);
    expect(config.worker.queues).toEqual(['a', 'b']);
    expect(config.api.authEnabled).toBe(true);
    expect(config.redis.prefix).toBe('acme');
  });

  it('names every offending variable in one error', () => {
    const found = problems({
      API_PORT: 'eighty',
      REDIS_URL: 'http://redis',
      MONGO_URL: 'mongodb://db:27017',
      WORKER_CONCURRENCY: '12abc',
      AUTH_ENABLED: 'flase',
      WORKER_QUEUES: 'fast,cases',
    });
    expect(found.map((line) => line.split(':')[0])).toEqual(expect.arrayContaining(['API_PORT', 'REDIS_URL', 'MONGO_URL', 'WORKER_CONCURRENCY', 'AUTH_ENABLED', 'WORKER_QUEUES']));
    expect(found).toHaveLength(6);
  });

  it('never prints a secret it refuses', () => {
    const found = problems({ REDIS_URL: 'http://user:hunter2@redis' });
    expect(found.join('\n')).not.toContain('hunter2');
  });

  it('refuses unsafe settings in production', () => {
    expect(problems({ NODE_ENV: 'production' })).toEqual([
      'AUTH_ENABLED: must be true when NODE_ENV=production',
      'REDIS_URL: must be set explicitly when NODE_ENV=production',
      'MONGO_URL: must be set explicitly when NODE_ENV=production (the embedded development store is refused)',
    ]);
    expect(problems({ NODE_ENV: 'production', AUTH_ENABLED: 'true', REDIS_URL: 'redis://r:6379', MONGO_URL: 'mongodb://m:27017/wf' })).toEqual([]);
  });

  it('takes API_TRUST_PROXY as addresses, CIDR ranges or a number of hops, and nothing else', () => {
    expect(loadConfig({}).api.trustProxy).toBe('');
    expect(loadConfig({ API_TRUST_PROXY: '10.0.0.0/8, 192.168.1.4, fd00::/8' }).api.trustProxy).toBe('10.0.0.0/8, 192.168.1.4, fd00::/8');
    expect(loadConfig({ API_TRUST_PROXY: '2' }).api.trustProxy).toBe('2');
    for (const bad of ['true', '10.0.0.0/33', 'proxy.internal', '10.0.0.1/8/2']) {
      expect([bad, problems({ API_TRUST_PROXY: bad }).map((line) => line.split(':')[0])]).toEqual([bad, ['API_TRUST_PROXY']]);
    }
  });

  it('treats an empty variable as unset', () => {
    expect(loadConfig({ API_PORT: '' }).api.port).toBe(8080);
  });

  it('freezes the result deeply', () => {
    const config = loadConfig({});
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.worker.queues)).toBe(true);
    expect(() => {
      (config.api as { port: number }).port = 1;
    }).toThrow(TypeError);
  });
});

describe('README configuration table', () => {
  it('lists every setting as the schema defines it (regenerate with npm run generate)', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    expect(readme).toContain(configTable());
  });
});
