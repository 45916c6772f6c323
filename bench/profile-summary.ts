import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Summarizes V8 CPU profiles (`--cpu-prof`, e.g. from `npm run bench -- --profile DIR`): per
 * profile, where the self time went by package and the top functions by self time.
 *
 * Usage: node dist/bench/profile-summary.js DIR [TOP=15]
 */

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** Which package (or part of workfleet) a frame belongs to. */
function packageOf(url: string, name: string): string {
  if (name === '(garbage collector)') return 'gc';
  if (name === '(idle)' || name === '(program)') return name;
  if (!url) return 'native/v8';
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules?.[1]) return modules[1];
  if (url.startsWith('node:')) return 'node core';
  const dist = /\/dist\/([^/]+(?:\/[^/]+)?)\//.exec(url);
  if (dist?.[1]) return `workfleet ${dist[1]}`;
  return url;
}

const [dir = '.', topText = '15'] = process.argv.slice(2);
const top = Number(topText);
for (const file of readdirSync(dir)
  .filter((name) => name.endsWith('.cpuprofile'))
  .sort()) {
  const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // Each sample's time is the delta to the next one.
  for (let i = 0; i < samples.length; i++) {
    const nodeId = samples[i] ?? 0;
    selfMs.set(nodeId, (selfMs.get(nodeId) ?? 0) + (deltas[i + 1] ?? 0) / 1000);
  }
  const total = (profile.endTime - profile.startTime) / 1000;
  const packages = new Map<string, number>();
  const functions = new Map<string, number>();
  let idle = 0;
  for (const [nodeId, ms] of selfMs) {
    const node = byId.get(nodeId);
    if (!node) continue;
    const { functionName, url, lineNumber } = node.callFrame;
    const pkg = packageOf(url, functionName);
    if (pkg === '(idle)') {
      idle += ms;
      continue;
    }
    packages.set(pkg, (packages.get(pkg) ?? 0) + ms);
    const key = `${functionName || '(anonymous)'} ${url ? `${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}` : ''}`.trim();
    functions.set(key, (functions.get(key) ?? 0) + ms);
  }
  const busy = total - idle;
  process.stdout.write(`\n${file}: ${(total / 1000).toFixed(1)} s profiled, ${(busy / 1000).toFixed(1)} s on CPU (${((busy / total) * 100).toFixed(0)}%)\n`);
  process.stdout.write('  self time by package:\n');
  for (const [pkg, ms] of [...packages].sort((a, b) => b[1] - a[1]).slice(0, 12)) {
    process.stdout.write(`    ${((ms / busy) * 100).toFixed(1).padStart(5)}%  ${pkg}\n`);
  }
  process.stdout.write(`  top ${top} functions by self time:\n`);
  for (const [name, ms] of [...functions].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    process.stdout.write(`    ${((ms / busy) * 100).toFixed(1).padStart(5)}%  ${name}\n`);
  }
}
