import type { Logger } from './logger.js';

export interface EpisodeLogOptions {
  /** An episode ends when its trouble has not recurred for this long. Default 30 s. */
  quietMs?: number;
  /** While an episode lasts, one line says how often it recurred, at most this often. Default 60 s. */
  summaryEveryMs?: number;
  now?: () => number;
}

interface Episode {
  since: number;
  last: number;
  count: number;
  /** Occurrences since the last line about it. */
  unlogged: number;
  summarisedAt: number;
  message: string;
  fields: Record<string, unknown>;
  timer?: NodeJS.Timeout;
}

/**
 * Logging of recurring trouble by episode: the first occurrence is logged with its error, the
 * repeats are counted, a summary line appears at most every `summaryEveryMs` while it lasts, and
 * one line says when it ended. Redis out of memory or a store away makes every request and every
 * fetch fail; logging each (thousands of lines a second were seen) drowns the logs and costs the
 * CPU the fleet needs to recover.
 */
export class EpisodeLog {
  private readonly episodes = new Map<string, Episode>();
  private readonly quietMs: number;
  private readonly summaryEveryMs: number;
  private readonly now: () => number;

  constructor(
    private readonly logger: Logger,
    options: EpisodeLogOptions = {},
  ) {
    this.quietMs = options.quietMs ?? 30_000;
    this.summaryEveryMs = options.summaryEveryMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  /** One occurrence of the trouble named `key`; logged (warn) if it opens an episode. Returns whether it was logged. */
  failure(key: string, error: unknown, message: string, fields: Record<string, unknown> = {}): boolean {
    const now = this.now();
    const episode = this.episodes.get(key);
    if (!episode) {
      const opened: Episode = { since: now, last: now, count: 1, unlogged: 0, summarisedAt: now, message, fields };
      this.episodes.set(key, opened);
      this.armEnd(key, opened);
      this.logger.warn({ ...fields, err: error, episode: key }, `${message} (repeats are counted, not logged, until it has not happened for ${Math.round(this.quietMs / 1000)} s)`);
      return true;
    }
    episode.last = now;
    episode.count += 1;
    episode.unlogged += 1;
    if (now - episode.summarisedAt >= this.summaryEveryMs) {
      this.logger.warn({ ...fields, err: error, episode: key, occurrences: episode.unlogged, sinceMs: now - episode.since }, `${message}: still happening`);
      episode.summarisedAt = now;
      episode.unlogged = 0;
    }
    return false;
  }

  /** Whether the trouble named `key` is going on (happened within the quiet time). */
  active(key: string): boolean {
    return this.episodes.has(key);
  }

  /** Ends every episode at once (shutdown), saying so for those still open. */
  close(): void {
    for (const key of [...this.episodes.keys()]) this.end(key);
  }

  private armEnd(key: string, episode: Episode): void {
    episode.timer = setTimeout(
      () => {
        const wait = episode.last + this.quietMs - this.now();
        if (wait > 0) {
          this.armEnd(key, episode);
          return;
        }
        this.end(key);
      },
      Math.max(1, episode.last + this.quietMs - this.now()),
    );
    episode.timer.unref();
  }

  private end(key: string): void {
    const episode = this.episodes.get(key);
    if (!episode) return;
    clearTimeout(episode.timer);
    this.episodes.delete(key);
    this.logger.info({ ...episode.fields, episode: key, occurrences: episode.count, lastedMs: episode.last - episode.since }, `${episode.message}: over (${episode.count} in all)`);
  }
}
