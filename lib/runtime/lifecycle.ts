import type { Logger } from '../obs/logger.js';

export interface ShutdownStep {
  name: string;
  run: () => Promise<unknown>;
}

/** A role running in a process it does not own (several in one process): stopped by its host, not by a signal. */
export interface RunningRole {
  /** Runs the role's shutdown steps in order; the process goes on. */
  stop(): Promise<void>;
}

/** Runs `steps` in order, logging a step that throws and going on; false if any threw. */
export async function runShutdownSteps(logger: Logger, steps: readonly ShutdownStep[]): Promise<boolean> {
  let ok = true;
  for (const step of steps) {
    try {
      await step.run();
    } catch (error) {
      ok = false;
      logger.error({ err: error, step: step.name }, 'shutdown step failed');
    }
  }
  return ok;
}

/**
 * Runs `steps` in order on the first SIGTERM or SIGINT (resources released in reverse order of
 * acquisition is the caller's list order), then exits 0; exits 1 if a step throws or the whole
 * sequence outlives `hardLimitMs`. A second signal during shutdown is ignored: the sequence
 * already has its deadline.
 */
export function shutdownOnSignals(logger: Logger, steps: readonly ShutdownStep[], hardLimitMs: number): void {
  let stopping = false;
  const stop = async (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const limit = setTimeout(() => {
      logger.error({ hardLimitMs }, 'shutdown took too long; exiting');
      process.exit(1);
    }, hardLimitMs);
    limit.unref();
    const ok = await runShutdownSteps(logger, steps);
    logger.info('stopped');
    process.exit(ok ? 0 : 1);
  };
  process.on('SIGTERM', (signal) => void stop(signal));
  process.on('SIGINT', (signal) => void stop(signal));
}

/** Logs and exits on a crash that escaped every handler; a poison job must never get here. */
export function exitOnFatalErrors(logger: Logger): void {
  process.on('uncaughtException', (error) => {
    logger.fatal({ err: error }, 'uncaught exception');
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    logger.fatal({ err: reason }, 'unhandled promise rejection');
    process.exit(1);
  });
}
