import { describe, expect, it } from 'vitest';
import { ConsumerBackoff } from '../../lib/adapters/bullmq/consumer-backoff.js';
import { EpisodeLog } from '../../lib/obs/episode-log.js';
import type { Logger } from '../../lib/obs/logger.js';

function recordingLogger() {
  const lines: Array<{ level: string; message: string; fields: Record<string, unknown> }> = [];
  const at = (level: string) => (fields: Record<string, unknown>, message: string) => void lines.push({ level, message, fields });
  return { lines, logger: { warn: at('warn'), info: at('info') } as unknown as Logger };
}

describe('EpisodeLog', () => {
  it('logs the first failure of an episode, counts the rest, summarises at most every interval, and says when it is over', () => {
    let now = 0;
    const { lines, logger } = recordingLogger();
    const log = new EpisodeLog(logger, { quietMs: 1_000, summaryEveryMs: 5_000, now: () => now });
    for (let i = 0; i < 1_000; i++) {
      log.failure('redis:OOM', new Error('OOM'), 'queue consumer error');
      now += 9; // a thousand failures in 9 s
    }
    expect(lines.map((line) => line.message)).toEqual([expect.stringMatching(/^queue consumer error \(repeats are counted/), 'queue consumer error: still happening']);
    log.close();
    expect(lines.at(-1)).toMatchObject({ level: 'info', fields: { occurrences: 1_000 } });
    log.failure('redis:OOM', new Error('OOM'), 'queue consumer error');
    expect(lines).toHaveLength(4); // a new episode is logged again
    log.close();
  });
});

describe('ConsumerBackoff', () => {
  it('pauses fetching on an error, longer while errors recur, and resumes after the pause', async () => {
    const calls: string[] = [];
    const worker = { pause: async () => void calls.push('pause'), resume: async () => void calls.push('resume') };
    const backoff = new ConsumerBackoff(worker, { minMs: 20, maxMs: 80 });
    backoff.onError();
    backoff.onError(); // during the pause: nothing more
    expect(calls).toEqual(['pause']);
    expect(backoff.pausedForMs).toBe(20);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(calls).toEqual(['pause', 'resume']);
    backoff.onError();
    expect(backoff.pausedForMs).toBe(40);
    backoff.close();
  });
});
