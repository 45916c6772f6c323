import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { afterEach, expect, it } from 'vitest';
import { pauseProcess, resumeProcess } from '../../lib/local-servers/pause.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The pause the fault tests and chaos scenarios put a server in: done only when every thread
 * has stopped, since `kill` returns while threads of a busy process still run (a paused store
 * answered a start 201 in CI).
 */

const children: Array<ReturnType<typeof spawn>> = [];
afterEach(() => {
  for (const child of children.splice(0)) {
    if (child.pid !== undefined) process.kill(child.pid, 'SIGCONT');
    child.kill('SIGKILL');
  }
});

/** Each thread's state as /proc/<pid>/task/<tid>/status names it (another file than the helper reads). */
function threadStates(pid: number): string[] {
  return readdirSync(`/proc/${pid}/task`).map((tid) => /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8'))?.[1] ?? '?');
}

it('resolves once every thread of a busy process has stopped, and the process runs again after resume', async () => {
  // Three threads spinning on the CPU and the main one printing: a process that is busy everywhere.
  const script = `
    const { Worker } = require('node:worker_threads');
    for (let i = 0; i < 3; i++) new Worker('for (;;) {}', { eval: true });
    setInterval(() => process.stdout.write('tick\\n'), 5);
  `;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  await once(child.stdout, 'data');
  const pid = child.pid as number;
  expect(threadStates(pid).filter((state) => state === 'R').length).toBeGreaterThan(0);

  await pauseProcess(pid);
  const states = threadStates(pid);
  expect(states.length).toBeGreaterThan(3);
  expect(states.every((state) => state === 'T')).toBe(true);

  resumeProcess(pid);
  await waitFor('a thread running again', async () => (threadStates(pid).some((state) => state !== 'T') ? true : undefined));
  await once(child.stdout, 'data');
});
