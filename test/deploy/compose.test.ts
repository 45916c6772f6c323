import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.js';
import { DEPLOY, goTool, knownSettings, readYaml, type Json } from './support.js';

/**
 * deploy/compose.yml, without Docker: held to the Compose Specification's JSON schema (vendored
 * from compose-go), loaded by compose-go itself (the library inside `docker compose`: the same
 * interpolation, merging, profiles and checks as `docker compose config`), then held to what
 * workfleet needs of it.
 */

const run = promisify(execFile);
let composeConfig = '';

beforeAll(async () => {
  composeConfig = await goTool('compose-config');
}, 170_000);

/** `docker compose config` as JSON, with the given environment and profiles. */
async function resolved(env: Record<string, string>, profiles: string[] = []): Promise<{ services: Record<string, Service> }> {
  const { stdout } = await run(composeConfig, [...profiles.flatMap((profile) => ['-profile', profile]), join(DEPLOY, 'compose.yml')], {
    env: { PATH: process.env.PATH ?? '', ...env },
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as { services: Record<string, Service> };
}

type Service = Json & {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
  profiles?: string[];
  ports?: string[];
  volumes?: string[];
  container_name?: string;
  stop_grace_period?: string;
};

const file = join(DEPLOY, 'compose.yml');
const [compose] = readYaml(file) as Array<Json & { services: Record<string, Service>; secrets: Record<string, { file: string }> }>;

const durationMs = (text: string) => {
  const match = /^(\d+)(ms|s|m)$/.exec(text);
  if (!match) throw new Error(`not a duration: ${text}`);
  return Number(match[1]) * { ms: 1, s: 1_000, m: 60_000 }[match[2] as 'ms' | 's' | 'm'];
};

describe('deploy/compose.yml', () => {
  it('is valid against the Compose Specification schema', () => {
    const schema = JSON.parse(readFileSync(join(DEPLOY, 'schemas', 'compose-spec.json'), 'utf8')) as Json;
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    // compose-go registers this format; Go durations such as 1m30s.
    ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
    const validate = ajv.compile(schema);
    const valid = validate(compose);
    expect(valid ? [] : validate.errors).toEqual([]);
    // And the check is real: a misspelt key fails it.
    expect(validate({ services: { api: { image: 'x', restrat: 'always' } } })).toBe(false);
  });

  it('runs Redis with AOF every second, noeviction and a password', () => {
    const redis = compose!.services.redis!;
    const args = redis.command!.join(' ');
    expect(args).toMatch(/--appendonly yes/);
    expect(args).toMatch(/--appendfsync everysec/);
    expect(args).toMatch(/--maxmemory-policy noeviction/);
    expect(args).toMatch(/--requirepass \$\{REDIS_PASSWORD:\?/);
  });

  it('runs MongoDB as a replica set that its healthcheck initiates', () => {
    const mongo = compose!.services.mongo!;
    expect(mongo.command).toEqual(expect.arrayContaining(['--replSet', 'rs0']));
    expect(mongo.healthcheck!.test.join(' ')).toMatch(/rs\.initiate\(\{ _id: 'rs0'/);
  });

  it('starts api, scheduler and workers from the image once Redis and MongoDB are healthy', () => {
    for (const name of ['api', 'scheduler', 'worker']) {
      const service = compose!.services[name]!;
      expect(service.command?.[0], name).toBe(name);
      expect(service.build).toEqual({ context: '..', dockerfile: 'deploy/Dockerfile' });
      // And, with the redis-cluster profile only (not required otherwise), the cluster formed.
      expect(service.depends_on).toEqual({
        redis: { condition: 'service_healthy' },
        mongo: { condition: 'service_healthy' },
        'redis-cluster-init': { condition: 'service_completed_successfully', required: false },
      });
    }
    for (const name of ['redis', 'mongo']) expect(compose!.services[name]!.healthcheck, name).toBeDefined();
    expect(existsSync(join(DEPLOY, 'Dockerfile'))).toBe(true);
  });

  it('lets workers scale with --scale: no fixed name or host port, a stop grace above the drain', async () => {
    const worker = (await resolved({ REDIS_PASSWORD: 'secret' })).services.worker!;
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports).toBeUndefined();
    const config = loadConfig(worker.environment as Record<string, string>);
    expect(durationMs(worker.stop_grace_period!)).toBeGreaterThanOrEqual(config.worker.shutdownGraceMs + 5_000);
  });

  it('loads with compose-go as `docker compose config` does, and refuses to without REDIS_PASSWORD', async () => {
    const plain = await resolved({ REDIS_PASSWORD: 'b7e1c0ffee' });
    expect(Object.keys(plain.services).sort()).toEqual(['api', 'mongo', 'redis', 'scheduler', 'worker']);
    const observed = await resolved({ REDIS_PASSWORD: 'b7e1c0ffee' }, ['observability']);
    expect(Object.keys(observed.services).sort()).toEqual(['api', 'grafana', 'mongo', 'prometheus', 'redis', 'scheduler', 'worker']);
    const refused = await resolved({}).then(
      () => '',
      (error: { stderr?: string }) => error.stderr ?? 'failed',
    );
    expect(refused).toMatch(/required variable REDIS_PASSWORD is missing a value/);
  });

  it('gives every workfleet process, as compose-go resolves it, a configuration workfleet accepts in production', async () => {
    const { services } = await resolved({ REDIS_PASSWORD: 'b7e1c0ffee', WORKER_CONCURRENCY: '4' });
    const known = knownSettings();
    for (const name of ['api', 'scheduler', 'worker']) {
      const env = services[name]!.environment as Record<string, string>;
      expect(
        Object.keys(env).filter((key) => !known.has(key)),
        `${name}: unknown settings`,
      ).toEqual([]);
      const config = loadConfig(env);
      expect(config.env).toBe('production');
      expect(config.api.authEnabled).toBe(true);
      expect(config.redis.url).toBe('redis://:b7e1c0ffee@redis:6379');
    }
    expect(loadConfig(services.worker!.environment as Record<string, string>).worker.concurrency).toBe(4);
    expect(services.redis!.command).toContain('b7e1c0ffee');
    expect(services.api!.ports).toEqual([expect.objectContaining({ target: 8080, published: '8080' })]);
    expect(services.mongo!.ports).toBeUndefined();
    expect(services.redis!.ports).toBeUndefined();
  });

  it('has a redis-cluster profile: six nodes joined once, and the processes on it when WORKFLEET_REDIS_URL says so', async () => {
    const env = { REDIS_PASSWORD: 'b7e1c0ffee', WORKFLEET_REDIS_URL: 'redis+cluster://:b7e1c0ffee@redis-node-1:6379,redis-node-2:6379,redis-node-3:6379' };
    const { services } = await resolved(env, ['redis-cluster']);
    const nodes = Object.keys(services).filter((name) => name.startsWith('redis-node-'));
    expect(nodes.sort()).toEqual(['redis-node-1', 'redis-node-2', 'redis-node-3', 'redis-node-4', 'redis-node-5', 'redis-node-6']);
    for (const name of nodes) {
      const args = services[name]!.command!.join(' ');
      expect(args, name).toContain('--cluster-enabled yes');
      expect(args, name).toContain(`--cluster-announce-hostname ${name}`);
      expect(args, name).toContain('--maxmemory-policy noeviction');
      expect(args, name).toContain('--hash-max-listpack-value 128');
      expect(args, name).toContain('--masterauth b7e1c0ffee');
      expect(services[name]!.healthcheck, name).toBeDefined();
    }
    expect(services['redis-cluster-init']!.command!.join(' ')).toContain('--cluster-replicas 1');
    for (const name of ['api', 'scheduler', 'worker']) {
      expect(loadConfig(services[name]!.environment as Record<string, string>).redis.url, name).toBe(env.WORKFLEET_REDIS_URL);
      expect((services[name]!.depends_on as Record<string, { condition: string }>)['redis-cluster-init']?.condition, name).toBe('service_completed_successfully');
    }
  });

  it('has an observability profile: Prometheus scraping every process, Grafana with the dashboard provisioned', () => {
    const { prometheus, grafana } = compose!.services;
    expect(prometheus!.profiles).toEqual(['observability']);
    expect(grafana!.profiles).toEqual(['observability']);
    // Every bind mount names a file or directory of the repository.
    for (const service of [prometheus!, grafana!]) {
      for (const volume of service.volumes ?? []) {
        const [source] = volume.split(':');
        if (source!.startsWith('.')) expect(existsSync(join(DEPLOY, source!)), volume).toBe(true);
      }
    }
    const [config] = readYaml(join(DEPLOY, 'prometheus', 'prometheus.yml')) as Array<{
      rule_files: string[];
      scrape_configs: Array<Json & { job_name: string; dns_sd_configs: Array<{ names: string[]; port: number }>; authorization?: { credentials_file: string } }>;
    }>;
    const scraped = new Map(config!.scrape_configs.map((job) => [job.dns_sd_configs[0]!.names[0], job]));
    expect([...scraped.keys()].sort()).toEqual(['api', 'scheduler', 'worker']);
    expect(scraped.get('api')!.dns_sd_configs[0]!.port).toBe(8080);
    expect(scraped.get('worker')!.dns_sd_configs[0]!.port).toBe(Number(compose!.services.worker!.environment!.METRICS_PORT));
    // The API's /metrics needs a key: the one the compose secret mounts.
    expect(scraped.get('api')!.authorization!.credentials_file).toBe(`/run/secrets/${Object.keys(compose!.secrets)[0]}`);
    expect(prometheus!.volumes).toContain('./prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro');
    expect(config!.rule_files).toEqual(['/etc/prometheus/alerts.yml']);
    const [provider] = readYaml(join(DEPLOY, 'grafana', 'provisioning', 'dashboards', 'workfleet.yml')) as Array<{ providers: Array<{ options: { path: string } }> }>;
    expect(grafana!.volumes).toContain(`./grafana/dashboards:${provider!.providers[0]!.options.path}:ro`);
  });
});
