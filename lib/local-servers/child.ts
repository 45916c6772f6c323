import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { formatDuration } from '../core/format.js';
import { procStatFields } from './proc-stat.js';

export interface ManagedChild {
  process: ChildProcess;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<number | NodeJS.Signals>;
  /** Sends `signal` and waits for the exit; SIGKILL after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<number | NodeJS.Signals>;
}

/** Children spawned here that have not exited: what `stopManagedChildrenOnExit` takes down. */
const running = new Set<ChildProcess>();
let exitHandlersInstalled = false;

export function spawnManaged(command: string, args: readonly string[], options: SpawnOptions): ManagedChild {
  const child = spawn(command, args, options);
  running.add(child);
  child.once('exit', () => running.delete(child));
  const exited = new Promise<number | NodeJS.Signals>((resolve) => {
    child.once('exit', (code, signal) => resolve(signal ?? code ?? 0));
    child.once('error', () => resolve(1));
  });
  return {
    process: child,
    exited,
    async stop(signal: NodeJS.Signals = 'SIGTERM', graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** Resolves with the first match of `pattern` in the child's stdout or stderr; rejects on exit or timeout. */
export function waitForOutput(child: ManagedChild, pattern: RegExp, timeoutMs: number, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen = (seen + chunk.toString('utf8')).slice(-20_000);
      const match = pattern.exec(seen);
      if (match) finish(() => resolve(match));
    };
    const timer = setTimeout(() => finish(() => reject(new Error(`${what} did not start within ${formatDuration(timeoutMs)}:\n${seen.slice(-2_000)}`))), timeoutMs);
    const onExit = () => finish(() => reject(new Error(`${what} exited during start-up:\n${seen.slice(-2_000)}`)));
    const finish = (settle: () => void) => {
      clearTimeout(timer);
      child.process.stdout?.off('data', onData);
      child.process.stderr?.off('data', onData);
      child.process.off('exit', onExit);
      settle();
    };
    child.process.stdout?.on('data', onData);
    child.process.stderr?.on('data', onData);
    child.process.once('exit', onExit);
  });
}

/**
 * For a tool that starts servers and fleets (the chaos runner, the benchmark): when it exits, on
 * SIGINT or SIGTERM too, every child it spawned here that still runs is killed (its process group
 * when it has its own), so that an interrupted run leaves no Redis, FerretDB or fleet behind.
 * SIGKILL, synchronously: an exiting process cannot wait for graceful stops.
 */
export function stopManagedChildrenOnExit(): void {
  // Once per process: each further call would add another exit, SIGINT and SIGTERM handler.
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.once('exit', () => {
    for (const child of running) {
      if (child.pid === undefined) continue;
      try {
        // A child with a process group of its own (detached) takes its descendants with it.
        process.kill(isGroupLeader(child.pid) ? -child.pid : child.pid, 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
  });
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(signal === 'SIGINT' ? 130 : 143));
}

/** Whether the process leads its own process group (it was spawned detached). */
function isGroupLeader(pid: number): boolean {
  const pgrp = procStatFields(`/proc/${pid}/stat`)?.[2];
  return pgrp !== undefined && Number(pgrp) === pid;
}
