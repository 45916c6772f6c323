import { hostname } from 'node:os';
import type { Logger } from '../obs/logger.js';
import type { Clock } from '../ports/clock.js';
import type { FleetMember, FleetMonitor } from '../ports/fleet.js';

const HEARTBEAT_MS = 5_000;

/** This process's id in the fleet: host and pid. */
export function processId(): string {
  return `${hostname()}:${process.pid}`;
}

/**
 * Announces this process to the fleet (GET /v1/status lists it) every few seconds until
 * stopped; stopping removes it at once, so a drained worker leaves the list immediately.
 */
export function announce(monitor: FleetMonitor, member: Pick<FleetMember, 'role' | 'queues' | 'concurrency'>, clock: Clock, logger: Logger): { stop(): Promise<void> } {
  const self: FleetMember = { ...member, id: processId(), host: hostname(), pid: process.pid, startedAt: clock.now(), seenAt: clock.now() };
  const beat = () => monitor.heartbeat({ ...self, seenAt: clock.now() }).catch((error: unknown) => logger.warn({ err: error }, 'heartbeat not recorded'));
  void beat();
  const timer = setInterval(() => void beat(), HEARTBEAT_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await monitor.leave(self.id).catch(() => undefined);
    },
  };
}
