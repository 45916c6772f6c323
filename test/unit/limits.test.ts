import { describe, expect, it } from 'vitest';
import { lineScore, nextReservation, nextStart, PRIORITY_AGING_MS } from '../../lib/core/limits.js';
import { buildUnitJob, limitKeyText } from '../../lib/core/machine/jobs.js';
import type { Command } from '../../lib/core/state.js';
import { isStepPayload, stepJobFromPayload, toStepPayload } from '../../lib/core/step-payload.js';
import { createCase, transition } from '../../lib/core/transition.js';
import { compileWorkflow } from '../../lib/core/validate.js';
import { problems, T0 } from './fixtures.js';

/** Concurrency keys, rate limits and priorities in the core: the definition, the units' keys, the line and window rules. */

const CASE = '01a2023c-80f9-7f9d-88eb-510cc1842ef8';

const workflow = compileWorkflow(
  {
    name: 'crawl',
    steps: [
      { id: 'fetch', task: 'web.fetch', input: { url: '${input.url}' }, concurrency: { key: '${input.domain}', limit: 3 }, rateLimit: { key: '${input.partner}', max: 100, per: '1m' }, priority: 2 },
      { id: 'each', task: 'web.ping', forEach: { items: '${input.hosts}' }, input: { host: '${item}' }, concurrency: { key: '${item}', limit: 1, group: 'hosts' }, compensate: { task: 'web.unping' } },
      { id: 'free', task: 'web.log' },
    ],
  },
  1,
);

describe('limits in the definition', () => {
  it('compiles concurrency and rate limits with their groups (the breaker by default) and the window in ms', () => {
    expect(workflow.steps.get('fetch')).toMatchObject({
      concurrency: { group: 'web.fetch', key: '${input.domain}', limit: 3 },
      rateLimit: { group: 'web.fetch', key: '${input.partner}', max: 100, perMs: 60_000 },
      priority: 2,
    });
    expect(workflow.steps.get('each')?.concurrency).toEqual({ group: 'hosts', key: '${item}', limit: 1 });
    expect(workflow.steps.get('free')).toMatchObject({ priority: 0 });
    expect(workflow.steps.get('free')?.concurrency).toBeUndefined();
  });

  it('refuses limits that cannot work, each with its path', () => {
    const issues = problems({
      name: 'bad',
      steps: [
        { id: 'nap', sleep: { for: '1s' }, concurrency: { key: 'x', limit: 1 } },
        { id: 'fast', task: 't', rateLimit: { key: 'x', max: 1, per: '100ms' } },
        { id: 'zero', task: 't', concurrency: { key: 'x', limit: 0 } },
        { id: 'alone', task: 't', priority: 5 },
        { id: 'ahead', task: 't', concurrency: { key: '${steps.later.output.k}', limit: 1 } },
        { id: 'later', task: 't', after: ['ahead'] },
        { id: 'item', task: 't', concurrency: { key: '${item}', limit: 1 } },
      ],
    });
    expect(issues).toEqual(
      expect.arrayContaining([
        'steps[0].concurrency: concurrency limits the units of a task: give the step a task',
        'steps[1].rateLimit.per: must be at least 1000 ms',
        expect.stringMatching(/^steps\[2\]\.concurrency\.limit: /),
        'steps[3].priority: priority orders the units waiting for a slot of a concurrency key: give the step a concurrency',
        expect.stringMatching(/^steps\[4\]\.concurrency\.key: "\$\{steps\.later\.output\.k\}" reads step "later", which is not guaranteed to have run/),
        expect.stringMatching(/^steps\[6\]\.concurrency\.key: "\$\{item\}" exists only in the input and limit keys of a forEach step/),
      ]),
    );
  });
});

describe('the keys of units', () => {
  const started = createCase(workflow, { id: CASE, input: { url: 'https://a.example/x', domain: 'a.example', partner: 7, hosts: ['h1', 'h2'] }, now: T0, priority: 10 });
  const jobOf = (commands: readonly Command[], stepId: string) => commands.flatMap((command) => (command.type === 'enqueueStep' && command.job.stepId === stepId ? [command] : []));

  it('renders each unit key from the case data, with the case priority plus the step priority', () => {
    const [fetch] = jobOf(started.commands, 'fetch');
    expect(fetch?.job).toMatchObject({ concurrency: { group: 'web.fetch', key: 'a.example', limit: 3 }, rateLimit: { group: 'web.fetch', key: '7', max: 100, perMs: 60_000 }, priority: 12 });
    expect(jobOf(started.commands, 'each').map((command) => command.job.concurrency?.key)).toEqual(['h1', 'h2']);
    expect(jobOf(started.commands, 'free')[0]?.job.concurrency).toBeUndefined();
  });

  it('carries the rendered keys through the queue payload and back', () => {
    const [fetch] = jobOf(started.commands, 'fetch');
    if (!fetch) throw new Error('no fetch job');
    const queued = JSON.parse(JSON.stringify(toStepPayload(fetch.job))) as unknown;
    if (!isStepPayload(queued)) throw new Error('not a payload');
    // Run 0 is not spelled in a job id; everything else comes back as built.
    const { run, ...built } = fetch.job;
    expect(run).toBe(0);
    expect(stepJobFromPayload(fetch.jobId, queued, workflow)).toEqual(built);
  });

  it('does not limit compensations: undoing must not wait behind new work', () => {
    const step = workflow.steps.get('each');
    if (!step) throw new Error('no step');
    const undo = buildUnitJob(started.state, step, { instance: 0, compensation: true });
    expect(undo.job.concurrency).toBeUndefined();
  });

  it('names keyed units in cancellations by their group, so their slot or place is given up', () => {
    const cancelled = transition(workflow, started.state, [{ type: 'cancel', reason: 'test', at: T0 + 1 }], T0 + 1);
    const refs = cancelled.commands.flatMap((command) => (command.type === 'cancelJobs' ? command.jobs : []));
    expect(refs.filter((ref) => ref.jobId.includes('.fetch'))).toEqual([{ queue: 'default', jobId: `${CASE}.fetch`, group: 'web.fetch' }]);
    expect(refs.filter((ref) => ref.jobId.includes('.free'))).toEqual([{ queue: 'default', jobId: `${CASE}.free` }]);
  });

  it('writes keys that are not text as canonical JSON, a missing one as null', () => {
    expect(limitKeyText('acme')).toBe('acme');
    expect(limitKeyText(42)).toBe('42');
    expect(limitKeyText({ b: 1, a: 2 })).toBe('{"a":2,"b":1}');
    expect(limitKeyText(undefined)).toBe('null');
  });
});

describe('the line and the window', () => {
  it('ages priority: a level is worth PRIORITY_AGING_MS of waiting, so low priority is late but never last for ever', () => {
    expect(PRIORITY_AGING_MS).toBe(1_000);
    expect(lineScore(10_000, 3)).toBeLessThan(lineScore(8_000, 0));
    expect(lineScore(10_000, 3)).toBeGreaterThan(lineScore(6_000, 0));
    // However high the priority of later arrivals (at most 100), a unit that has waited 101 s goes first.
    expect(lineScore(0, -100)).toBeLessThan(lineScore(301_000, 100));
  });

  it('reserves now while the window has room, else when the max-th latest leaves it, in order', () => {
    expect(nextReservation([], 5_000, 2, 1_000)).toBe(5_000);
    expect(nextReservation([5_000], 5_000, 2, 1_000)).toBe(5_000);
    expect(nextReservation([5_000, 5_000], 5_000, 2, 1_000)).toBe(6_000);
    expect(nextReservation([5_000, 5_000, 6_000], 5_100, 2, 1_000)).toBe(6_000);
    expect(nextReservation([5_000, 5_000, 6_000, 6_000], 5_100, 2, 1_000)).toBe(7_000);
  });

  it('never lets a window hold more than max, whatever the arrivals', () => {
    let seed = 7;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const max = 5;
    const per = 1_000;
    const reserved: number[] = [];
    let now = 0;
    for (let n = 0; n < 400; n++) {
      now += Math.floor(random() * 150);
      const live = reserved.filter((at) => at > now - per).sort((a, b) => a - b);
      const at = nextReservation(live, now, max, per);
      expect(at).toBeGreaterThanOrEqual(now);
      reserved.push(at);
    }
    reserved.sort((a, b) => a - b);
    for (let i = 0; i + max < reserved.length; i++) expect((reserved[i + max] ?? 0) - (reserved[i] ?? 0)).toBeGreaterThanOrEqual(per);
  });

  it('starts at most max in any window, however late units come back to their reservations, and starts them all', () => {
    let seed = 11;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const max = 5;
    const per = 1_000;
    const reserved: number[] = [];
    const started: number[] = [];
    // 300 units arrive in bursts; each comes back 0 to 300 ms after the time it was given, as a delayed job does.
    const arrivals: Array<{ unit: number; at: number }> = [];
    let clock = 0;
    for (let unit = 0; unit < 300; unit++) {
      if (unit % 50 === 0) clock += 2_000;
      const at = nextReservation(
        reserved.filter((time) => time > clock - per).sort((a, b) => a - b),
        clock,
        max,
        per,
      );
      reserved.push(at);
      arrivals.push({ unit, at: at + Math.floor(random() * 300) });
    }
    let waits = 0;
    while (arrivals.length > 0) {
      arrivals.sort((a, b) => a.at - b.at);
      const next = arrivals.shift() as { unit: number; at: number };
      const window = started.filter((time) => time > next.at - per).sort((a, b) => a - b);
      const at = nextStart(window, next.at, max, per);
      if (at === next.at) started.push(at);
      else {
        expect(at).toBeGreaterThan(next.at);
        waits += 1;
        arrivals.push({ unit: next.unit, at: at + Math.floor(random() * 300) });
      }
    }
    expect(started).toHaveLength(300);
    started.sort((a, b) => a - b);
    for (let i = 0; i + max < started.length; i++) expect((started[i + max] ?? 0) - (started[i] ?? 0)).toBeGreaterThanOrEqual(per);
    // Reserved times alone would have let late and punctual units share windows: some had to wait again.
    expect(waits).toBeGreaterThan(0);
  });
});
