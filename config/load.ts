import convict from 'convict';
import { ErrorCode } from '../lib/core/error-codes.js';
import { configSchema } from './schema.js';

/** The validated settings of a workfleet process; deep-frozen, passed down from the entry point. */
export interface Config {
  env: 'development' | 'test' | 'production';
  log: { level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent' };
  redis: { url: string; prefix: string; waitReplicas: number; waitTimeoutMs: number };
  mongo: { url: string; operationTimeoutMs: number };
  api: {
    host: string;
    port: number;
    requestTimeoutMs: number;
    bodyLimitBytes: number;
    rateLimitPerMinute: number;
    authFailuresPerMinute: number;
    trustProxy: string;
    maxHeaderBytes: number;
    corsOrigins: readonly string[];
    authEnabled: boolean;
  };
  metrics: { host: string; port: number };
  cases: { maxBytes: number };
  retention: { finishedCaseDays: number };
  worker: {
    queues: readonly string[];
    concurrency: number;
    handlers: string;
    shutdownGraceMs: number;
    startReportDelayMs: number;
    advancesCases: boolean;
    lockDurationMs: number;
    maxStalls: number;
    stalledCheckIntervalMs: number;
  };
  breaker: { errorThresholdPercent: number; volumeThreshold: number; resetTimeoutMs: number; rollingWindowMs: number };
  scheduler: { concurrency: number; reconcileIntervalMs: number; deadlineCheckIntervalMs: number; staleAfterMs: number; stuckAfterMs: number; lockDurationMs: number };
  jobs: { keepCompletedSeconds: number; keepCompletedCount: number; eventsMaxLength: number; keepFailedSeconds: number };
  dev: { dataDir: string; ferretdbBin: string; exampleCases: boolean };
}

export class ConfigError extends Error {
  readonly code = ErrorCode.configInvalid;
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`invalid configuration:\n${problems.map((problem) => `  - ${problem}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Leaf = { env: string; arg?: string; doc: string; default: unknown };

/** Every setting as `path → leaf`, e.g. `api.port → { env: 'API_PORT', ... }`. */
export function settings(): Map<string, Leaf> {
  const out = new Map<string, Leaf>();
  const walk = (node: Record<string, unknown>, prefix: string) => {
    for (const [key, value] of Object.entries(node)) {
      const path = prefix ? `${prefix}.${key}` : key;
      if (value && typeof value === 'object' && 'env' in value) out.set(path, value as Leaf);
      else if (value && typeof value === 'object') walk(value as Record<string, unknown>, path);
    }
  };
  walk(configSchema, '');
  return out;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const item of Object.values(value)) deepFreeze(item);
    Object.freeze(value);
  }
  return value;
}

/** Rules that only hold together or only in production; each returns a message naming the variables. */
function crossChecks(config: Config, env: Readonly<Record<string, string | undefined>>): string[] {
  const problems: string[] = [];
  if (config.env === 'production') {
    if (!config.api.authEnabled) problems.push('AUTH_ENABLED: must be true when NODE_ENV=production');
    if (!env.REDIS_URL) problems.push('REDIS_URL: must be set explicitly when NODE_ENV=production');
    if (!env.MONGO_URL) problems.push('MONGO_URL: must be set explicitly when NODE_ENV=production (the embedded development store is refused)');
  }
  return problems;
}

/**
 * Reads, validates and freezes the configuration. Every bad value is reported at once, each by
 * its environment variable, in one ConfigError. `overrides` (from CLI flags) win over the environment.
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>>, overrides: Readonly<Record<string, unknown>> = {}): Config {
  const leaves = settings();
  const known = new Set([...leaves.values()].map((leaf) => leaf.env));
  const defined: Record<string, string> = {};
  for (const name of known) {
    const value = env[name];
    // An empty variable counts as unset, as shells and compose files often leave them.
    if (value !== undefined && value !== '') defined[name] = value;
  }

  const problems: string[] = [];
  const config = convict(configSchema, { env: defined, args: [] });
  for (const [path, value] of Object.entries(overrides)) {
    if (value === undefined) continue;
    try {
      config.set(path as never, value as never);
    } catch (error) {
      problems.push(`${path}: ${(error as Error).message}`);
    }
  }
  try {
    config.validate({ allowed: 'strict' });
  } catch (error) {
    // convict reports one "path: reason" per line; name each by its variable instead.
    for (const line of (error as Error).message.split('\n').filter(Boolean)) {
      const separator = line.indexOf(':');
      const path = line.slice(0, separator);
      const leaf = leaves.get(path);
      problems.push(leaf ? `${leaf.env}:${line.slice(separator + 1)}` : line);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const loaded = config.getProperties() as unknown as Config;
  const cross = crossChecks(loaded, env);
  if (cross.length > 0) throw new ConfigError(cross);
  return deepFreeze(structuredClone(loaded));
}
