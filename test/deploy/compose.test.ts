import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.js';
import { DEPLOY, knownSettings, readYaml, type Json } from './support.js';

/**
 * deploy/compose.yml, without Docker: held to the Compose Specification's JSON schema (vendored
 * from compose-go, the loader `docker compose` itself uses), then to what workfleet needs of it,
 * with variables interpolated the way Compose does.
 */

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

/** Compose's interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, $$ for a literal $. */
function interpolate(value: string, env: Record<string, string | undefined>): string {
  return value.replace(/\$\$|\$\{([A-Za-z_]\w*)(?:(:?[-?])([^}]*))?\}/g, (match, name: string | undefined, operator: string | undefined, argument: string | undefined) => {
    if (match === '$$') return '$';
    const current = env[name!];
    const unset = current === undefined || (operator?.startsWith(':') && current === '');
    if (operator?.endsWith('?') && unset) throw new Error(`${name}: ${argument}`);
    if (operator?.endsWith('-') && unset) return argument ?? '';
    return current ?? '';
  });
}

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
    expect(() => interpolate(args, {})).toThrow(/REDIS_PASSWORD/);
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
      expect(service.depends_on).toEqual({ redis: { condition: 'service_healthy' }, mongo: { condition: 'service_healthy' } });
    }
    for (const name of ['redis', 'mongo']) expect(compose!.services[name]!.healthcheck, name).toBeDefined();
    expect(existsSync(join(DEPLOY, 'Dockerfile'))).toBe(true);
  });

  it('lets workers scale with --scale: no fixed name or host port, a stop grace above the drain', () => {
    const worker = compose!.services.worker!;
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports).toBeUndefined();
    const env = Object.fromEntries(Object.entries(worker.environment!).map(([key, value]) => [key, interpolate(String(value), { REDIS_PASSWORD: 'secret' })]));
    expect(durationMs(worker.stop_grace_period!)).toBeGreaterThanOrEqual(loadConfig(env).worker.shutdownGraceMs + 5_000);
  });

  it('gives every workfleet process a configuration workfleet accepts in production', () => {
    const known = knownSettings();
    for (const name of ['api', 'scheduler', 'worker']) {
      const raw = compose!.services[name]!.environment!;
      expect(Object.keys(raw).filter((key) => !known.has(key)), `${name}: unknown settings`).toEqual([]);
      const env = Object.fromEntries(Object.entries(raw).map(([key, value]) => [key, interpolate(String(value), { REDIS_PASSWORD: 'b7e1c0ffee' })]));
      const config = loadConfig(env);
      expect(config.env).toBe('production');
      expect(config.redis.url).toBe('redis://:b7e1c0ffee@redis:6379');
      expect(config.mongo.url).toMatch(/^mongodb:\/\/mongo:27017\/workfleet\?replicaSet=rs0/);
    }
    expect(interpolate(compose!.services.api!.ports![0]!, {})).toBe('8080:8080');
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
    const [config] = readYaml(join(DEPLOY, 'prometheus', 'prometheus.yml')) as Array<{ rule_files: string[]; scrape_configs: Array<Json & { job_name: string; dns_sd_configs: Array<{ names: string[]; port: number }>; authorization?: { credentials_file: string } }> }>;
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
