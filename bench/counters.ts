import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { LOCAL_POSTGRES } from '../lib/local-servers/postgres.js';

/**
 * What a measurement window costs, read outside the processes measured: CPU per process from
 * /proc (FerretDB's PostgreSQL backends included), Redis commands from `INFO commandstats`
 * (which counts the commands a Lua script runs as well as those clients send) and BullMQ jobs
 * added from each queue's id counter (BullMQ increments it for every job it adds, custom id or not).
 */

/** CPU milliseconds a process has used so far (Linux /proc; 0 where unavailable). */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    // Fields after the command name: utime and stime are the 12th and 13th, in clock ticks (100/s).
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return 0;
  }
}

/**
 * CPU ms so far of each PostgreSQL backend serving `database` (FerretDB's pool), not of other
 * users' backends. Compare two readings per pid: a backend opened in between counts in full.
 */
export function postgresCpuMs(database: string | undefined): Map<number, number> {
  const readings = new Map<number, number>();
  if (database === undefined) return readings;
  const pids = execFileSync('psql', [`${LOCAL_POSTGRES}/postgres`, '-Atc', `select pid from pg_stat_activity where datname = '${database}'`], { encoding: 'utf8' });
  for (const line of pids.split('\n')) if (/^\d+$/.test(line)) readings.set(Number(line), cpuMs(Number(line)));
  return readings;
}

export function postgresCpuSince(before: Map<number, number>, database: string | undefined): number {
  let total = 0;
  for (const [pid, ms] of postgresCpuMs(database)) total += ms - (before.get(pid) ?? 0);
  return total;
}

export async function usedMemory(redis: Redis): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
}

/** Calls so far of each Redis command (`INFO commandstats`), the bench's own INFO left out. */
async function commandCalls(redis: Redis): Promise<Record<string, number>> {
  const calls: Record<string, number> = {};
  for (const match of (await redis.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    const [, name = '', count = '0'] = match;
    if (name !== 'info') calls[name] = Number(count);
  }
  return calls;
}

/** Queues whose jobs are counted: workfleet's and the raw baselines'. */
const QUEUES = ['cases', 'default', 'results', 'timers', 'parked', 'raw', 'flow'];

/** Jobs BullMQ has added so far to the queues of `prefix`. */
async function jobsAdded(redis: Redis, prefix: string): Promise<number> {
  const values = await redis.mget(QUEUES.map((queue) => `${prefix}:${queue}:id`));
  return values.reduce((sum, value) => sum + Number(value ?? 0), 0);
}

export interface RedisCommands {
  total: number;
  /** Lua script calls (EVALSHA and the like): one client round trip each, their inner commands in `total`. */
  scripts: number;
  /** The commands called most, by name. */
  top: Record<string, number>;
}

/** What to read around a window: the processes by name, FerretDB's PostgreSQL database, the BullMQ prefix. */
export interface Probe {
  redis: Redis;
  pids: Record<string, number | undefined>;
  postgresDb?: string | undefined;
  prefix?: string;
}

export interface WindowCost {
  ms: number;
  /** CPU ms by process name (`postgres`: FerretDB's backends, summed). */
  cpuMs: Record<string, number>;
  redisCommands: RedisCommands;
  bullmqJobs: number;
}

/** Starts a window; the returned function ends it and tells what it cost. */
export async function openWindow(probe: Probe): Promise<() => Promise<WindowCost>> {
  // Jobs first, then commands: the bench's own MGET stays outside the window.
  const jobsBefore = probe.prefix === undefined ? 0 : await jobsAdded(probe.redis, probe.prefix);
  const callsBefore = await commandCalls(probe.redis);
  const postgresBefore = postgresCpuMs(probe.postgresDb);
  const cpuBefore = Object.fromEntries(Object.entries(probe.pids).map(([name, pid]) => [name, cpuMs(pid)]));
  const started = performance.now();
  return async () => {
    const ms = performance.now() - started;
    const cpu: Record<string, number> = {};
    for (const [name, pid] of Object.entries(probe.pids)) cpu[name] = cpuMs(pid) - (cpuBefore[name] ?? 0);
    if (probe.postgresDb !== undefined) cpu.postgres = postgresCpuSince(postgresBefore, probe.postgresDb);
    const callsAfter = await commandCalls(probe.redis);
    const jobsAfter = probe.prefix === undefined ? 0 : await jobsAdded(probe.redis, probe.prefix);
    const delta = Object.entries(callsAfter)
      .map(([name, count]) => [name, count - (callsBefore[name] ?? 0)] as const)
      .filter(([, count]) => count > 0)
      .sort((a, b) => b[1] - a[1]);
    const scripts = delta.filter(([name]) => /^(evalsha|eval|evalsha_ro|eval_ro|fcall|fcall_ro)$/.test(name)).reduce((sum, [, count]) => sum + count, 0);
    return {
      ms,
      cpuMs: cpu,
      redisCommands: { total: delta.reduce((sum, [, count]) => sum + count, 0), scripts, top: Object.fromEntries(delta.slice(0, 8)) },
      bullmqJobs: jobsAfter - jobsBefore,
    };
  };
}

/** A window's cost per unit of work (case, job, flow). */
export function perUnit(cost: WindowCost, units: number): { bullmqJobs: number; redisCommands: number; redisScripts: number; cpuMs: Record<string, number> } {
  const per = (value: number) => value / Math.max(1, units);
  return {
    bullmqJobs: per(cost.bullmqJobs),
    redisCommands: per(cost.redisCommands.total),
    redisScripts: per(cost.redisCommands.scripts),
    cpuMs: Object.fromEntries(Object.entries(cost.cpuMs).map(([name, ms]) => [name, per(ms)])),
  };
}
