import { EpisodeLog } from '../obs/episode-log.js';
import type { Logger } from '../obs/logger.js';

export interface Periodic {
  /** Stops the loop and waits for a run in progress. */
  stop(): Promise<void>;
}

/**
 * Runs `task` every `intervalMs`, never two runs at once (the next run is timed from the end of
 * the previous one). A failing run is logged (once per episode of failures: a server away
 * fails every run) and the loop goes on.
 */
export function every(intervalMs: number, name: string, logger: Logger, task: () => Promise<void>): Periodic {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  const episodes = new EpisodeLog(logger);
  const tick = () => {
    running = task()
      .catch((error: unknown) => void episodes.failure(name, error, `periodic task ${name} failed`, { task: name }))
      .finally(() => {
        running = undefined;
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  timer = setTimeout(tick, intervalMs);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      episodes.close();
    },
  };
}
