/**
 * Runs `task` again `intervalMs` after the previous run finished: requests never overlap, the
 * rate is bounded whatever the API's latency, and a hidden tab stops asking until it is shown.
 */
export interface Poller {
  stop(): void;
  /** Runs the task now (after the run in flight, if any) and restarts the interval. */
  refresh(): void;
}

export function poll(task: () => Promise<void>, intervalMs: number, options: { immediate?: boolean } = {}): Poller {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running = false;
  let again = false;

  const schedule = () => {
    if (stopped) return;
    clearTimeout(timer);
    timer = setTimeout(() => void run(), intervalMs);
  };
  const run = async () => {
    if (stopped) return;
    if (document.hidden) return; // resumed by the visibility listener
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      await task();
    } catch {
      // The task shows its own errors; polling goes on.
    } finally {
      running = false;
    }
    if (again) {
      again = false;
      void run();
      return;
    }
    schedule();
  };
  const onVisibility = () => {
    if (!document.hidden && !stopped && !running) void run();
  };
  document.addEventListener('visibilitychange', onVisibility);
  if (options.immediate ?? true) void run();
  else schedule();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
    },
    refresh() {
      clearTimeout(timer);
      void run();
    },
  };
}
