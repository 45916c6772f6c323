import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig, type Config } from '../config/load.js';
import { WorkfleetClient } from './client.js';

/**
 * What every command shares: the environment (the only place besides config/ that reads it,
 * to hand it to loadConfig), option parsers and the API client.
 */
export const env = process.env;

export function config(overrides: Record<string, unknown> = {}): Config {
  return loadConfig(env, overrides);
}

/** What a running `workfleet dev` leaves in its data directory for the other commands. */
export interface DevFleet {
  apiUrl: string;
  redisUrl: string;
  mongoUrl: string;
  pid: number;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as { code?: string }).code === 'EPERM';
  }
}

/** The dev fleet whose `dev.json` is in DEV_DATA_DIR (default .workfleet), if its process still runs. */
function runningDevFleet(): DevFleet | undefined {
  const file = join(resolve(env.DEV_DATA_DIR || '.workfleet'), 'dev.json');
  if (!existsSync(file)) return undefined;
  try {
    const fleet = JSON.parse(readFileSync(file, 'utf8')) as Partial<DevFleet>;
    if (typeof fleet.apiUrl !== 'string' || typeof fleet.redisUrl !== 'string' || typeof fleet.mongoUrl !== 'string' || typeof fleet.pid !== 'number') return undefined;
    return alive(fleet.pid) ? (fleet as DevFleet) : undefined;
  } catch {
    return undefined; // half-written or edited by hand: as if there were none
  }
}

/**
 * The configuration of a process that joins a fleet (worker, scheduler, api, keys): Redis and
 * MongoDB not set in the environment are those of a running dev fleet, so that `workfleet worker
 * --queues mine` next to `npm start` joins it instead of whatever listens on the default ports.
 */
export function fleetConfig(overrides: Record<string, unknown> = {}): Config {
  const dev = env.REDIS_URL && env.MONGO_URL ? undefined : runningDevFleet();
  return config({
    ...(dev && !env.REDIS_URL ? { 'redis.url': dev.redisUrl } : {}),
    ...(dev && !env.MONGO_URL ? { 'mongo.url': dev.mongoUrl } : {}),
    ...overrides,
  });
}

export function positiveInt(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a positive whole number');
  return Number(value);
}

/** A whole number, negative too (a priority); the API checks its range. */
export function wholeNumber(value: string): number {
  if (!/^-?[0-9]+$/.test(value)) throw new InvalidArgumentError('must be a whole number');
  return Number(value);
}

export interface ClientFlags {
  apiUrl?: string;
  apiKey?: string;
  json?: boolean;
}

export function client(options: ClientFlags): WorkfleetClient {
  let baseUrl = options.apiUrl ?? env.WORKFLEET_API_URL;
  if (!baseUrl) {
    // `workfleet dev` leaves its address, so client commands find a dev fleet on any port.
    baseUrl = runningDevFleet()?.apiUrl ?? 'http://127.0.0.1:8080';
  }
  const apiKey = options.apiKey ?? env.WORKFLEET_API_KEY;
  return new WorkfleetClient({ baseUrl, ...(apiKey ? { apiKey } : {}) });
}

/** Adds the options of commands that talk to a running API. */
export function clientOptions(command: Command): Command {
  return command
    .addOption(new Option('--api-url <url>', 'API base URL (env WORKFLEET_API_URL; default: the dev fleet, else http://127.0.0.1:8080)'))
    .addOption(new Option('--api-key <key>', 'API key (env WORKFLEET_API_KEY)'))
    .option('--json', 'print the API answer as JSON');
}
