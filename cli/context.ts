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

export function positiveInt(value: string): number {
  if (!/^[0-9]+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a positive whole number');
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
    // `workfleet dev` leaves its address here, so client commands find a dev fleet on any port.
    const devFile = join(resolve(env.DEV_DATA_DIR || '.workfleet'), 'dev.json');
    baseUrl = existsSync(devFile) ? (JSON.parse(readFileSync(devFile, 'utf8')) as { apiUrl: string }).apiUrl : 'http://127.0.0.1:8080';
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
