import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, expect, it } from 'vitest';
import { procStatFields } from '../../lib/local-servers/proc-stat.js';
import { packageRoot } from '../../lib/runtime/package-root.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The chaos runner and the benchmark start servers and fleets; interrupted by a signal sent to
 * them alone (not their process group, as a terminal's Ctrl-C is), they left them running.
 * `stopManagedChildrenOnExit` takes them down: children, and the process groups of detached ones.
 */

/** Pids of live (not zombie) processes in process group `group`. */
function liveInGroup(group: number): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .flatMap((pid) => {
      const [state, , pgrp] = procStatFields(`/proc/${pid}/stat`) ?? [];
      return Number(pgrp) === group && state !== 'Z' ? [Number(pid)] : [];
    });
}

function alive(pid: number): boolean {
  const state = procStatFields(`/proc/${pid}/stat`)?.[0];
  return state !== undefined && state !== 'Z';
}

const leftovers: number[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const pid of leftovers.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

it.each(['SIGTERM', 'SIGINT'] as const)('on %s to the tool alone, kills the children it spawned and the process groups of detached ones', async (signal) => {
  const dir = mkdtempSync(join(tmpdir(), 'workfleet-children-'));
  dirs.push(dir);
  const script = join(dir, 'tool.mjs');
  writeFileSync(
    script,
    `import { spawnManaged, stopManagedChildrenOnExit } from ${JSON.stringify(join(packageRoot(), 'dist', 'lib', 'local-servers', 'child.js'))};
stopManagedChildrenOnExit();
const plain = spawnManaged('sleep', ['600'], { stdio: 'ignore' });
// A detached child with a child of its own, as a server that forks would be.
const grouped = spawnManaged('sh', ['-c', 'sleep 600 & wait'], { stdio: 'ignore', detached: true });
console.log(JSON.stringify({ plain: plain.process.pid, grouped: grouped.process.pid }));
setInterval(() => {}, 1_000);
`,
  );
  const tool = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = (await once(createInterface({ input: tool.stdout }), 'line')) as [string];
  const { plain, grouped } = JSON.parse(line) as { plain: number; grouped: number };
  leftovers.push(plain, -grouped);
  // The detached shell and its sleep: two processes in the shell's group.
  const group = await waitFor('the detached child and its own child', () => (liveInGroup(grouped).length >= 2 ? liveInGroup(grouped) : undefined));
  expect(alive(plain)).toBe(true);

  tool.kill(signal);
  const [code] = (await once(tool, 'exit')) as [number | null];
  expect(code).toBe(signal === 'SIGINT' ? 130 : 143);
  await waitFor('every child to be gone', () => (!alive(plain) && group.every((pid) => !alive(pid)) ? true : undefined), { timeoutMs: 5_000 });
});
