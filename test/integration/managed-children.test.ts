import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, expect, it } from 'vitest';
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
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        return Number(pgrp) === group && state !== 'Z' ? [Number(pid)] : [];
      } catch {
        return [];
      }
    });
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const leftovers: number[] = [];
afterEach(() => {
  for (const pid of leftovers.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

it.each(['SIGTERM', 'SIGINT'] as const)('on %s to the tool alone, kills the children it spawned and the process groups of detached ones', async (signal) => {
  const dir = mkdtempSync(join(tmpdir(), 'workfleet-children-'));
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
