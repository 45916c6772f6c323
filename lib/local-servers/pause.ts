import { readdirSync } from 'node:fs';
import { procStatFields } from './proc-stat.js';

/**
 * Pauses a server (SIGSTOP) for a fault: resolves once every thread of it has stopped. `kill`
 * returns before that: Linux wakes one thread to take the signal, and it stops the others; on a
 * busy machine that thread may wait for a core while another keeps serving requests (a store
 * "paused" this way answered a start 201; test/integration/infrastructure-faults.test.ts).
 */
export async function pauseProcess(pid: number, timeoutMs = 5_000): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const running = runningThreads(pid);
    if (running.length === 0) return;
    if (Date.now() > deadline) throw new Error(`process ${pid} still has running threads ${running.join(', ')} ${timeoutMs} ms after SIGSTOP`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Lets a paused server go on (SIGCONT). */
export function resumeProcess(pid: number): void {
  process.kill(pid, 'SIGCONT');
}

/** The ids of the process's threads not in a stopped state ('T', or 't' under a tracer); none once it has exited. */
function runningThreads(pid: number): number[] {
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  return tids.filter((tid) => !['T', 't', 'Z', 'X'].includes(threadState(pid, tid))).map(Number);
}

function threadState(pid: number, tid: string): string {
  // Unreadable: the thread has exited meanwhile.
  return procStatFields(`/proc/${pid}/task/${tid}/stat`)?.[0] ?? 'X';
}
