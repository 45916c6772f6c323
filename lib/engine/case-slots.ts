import type { Command, StepReport } from '../core/state.js';
import type { Clock } from '../ports/clock.js';
import type { ConcurrencyGate } from '../ports/limits.js';

type AwaitSlot = Command & { type: 'awaitSlot' };
type ReleaseSlot = Command & { type: 'releaseSlot' };

/**
 * Case-level concurrency keys in the shell (lib/core/machine/slots.ts has the rules): a case of a
 * keyed workflow asks the gate for a slot of its key and is told it is admitted through the
 * results queue, like any message between cases; when the key is full, its strategy decides:
 * `queue` waits in the key's line, `cancel-in-progress` cancels the oldest open cases of the key
 * to make room, `cancel-newest` cancels the newcomer. An ended case's slot goes to the next in
 * line. Everything is answered as reports, which the caller sends.
 */
export class CaseSlots {
  constructor(private readonly deps: { gate: Pick<ConcurrencyGate, 'offer' | 'release' | 'holders'>; clock: Clock }) {}

  async request(commands: readonly AwaitSlot[]): Promise<StepReport[]> {
    if (commands.length === 0) return [];
    const now = this.deps.clock.now();
    const units = commands.map((command) => ({ group: command.group, key: command.key, limit: command.limit, jobId: command.caseId, queue: '', priority: command.priority, payload: 'case' }));
    const { answers, admitted } = await this.deps.gate.offer(units, now);
    const reports: StepReport[] = admitted.map((admission) => caseAdmittedReport(admission.jobId, now));
    const refused: AwaitSlot[] = [];
    const makingRoom: Array<Promise<StepReport[]>> = [];
    for (const [index, answer] of answers.entries()) {
      const command = commands[index];
      if (!command) continue;
      if (answer.admitted) reports.push(caseAdmittedReport(command.caseId, now));
      else if (command.strategy === 'cancel-newest') refused.push(command);
      else if (command.strategy === 'cancel-in-progress') makingRoom.push(this.makeRoom(command, answer.ahead, now));
    }
    const [refusals, ...rooms] = await Promise.all([this.refuse(refused, now), ...makingRoom]);
    return [...reports, ...refusals, ...rooms.flat()];
  }

  async release(commands: readonly ReleaseSlot[]): Promise<StepReport[]> {
    if (commands.length === 0) return [];
    const now = this.deps.clock.now();
    const admitted = await this.deps.gate.release(
      commands.map((command) => ({ group: command.group, jobId: command.caseId })),
      now,
    );
    return admitted.map((admission) => caseAdmittedReport(admission.jobId, now));
  }

  /** cancel-newest: the newcomers leave their lines (in one release) and are cancelled, the reason in their traces. */
  private async refuse(commands: readonly AwaitSlot[], now: number): Promise<StepReport[]> {
    if (commands.length === 0) return [];
    const admitted = await this.deps.gate.release(
      commands.map((command) => ({ group: command.group, jobId: command.caseId })),
      now,
    );
    const cancels = commands.map((command): StepReport => {
      const reason = `cancel-newest: ${command.limit} open case(s) of key "${command.key}" (${command.group}) already`;
      return { caseId: command.caseId, event: { type: 'cancel', reason, at: now } };
    });
    return [...admitted.map((admission) => caseAdmittedReport(admission.jobId, now)), ...cancels];
  }

  /**
   * cancel-in-progress: as many of the key's oldest open cases are cancelled as this case and
   * those ahead of it in line need slots; their slots come free as they end, and this case (the
   * latest start) is admitted in turn.
   */
  private async makeRoom(command: AwaitSlot, ahead: number, now: number): Promise<StepReport[]> {
    const holders = await this.deps.gate.holders(command.group, command.key);
    const needed = Math.min(holders.length, Math.max(1, ahead + 1 - Math.max(0, command.limit - holders.length)));
    const reason = `cancel-in-progress: case ${command.caseId} started with key "${command.key}" (${command.group})`;
    return holders.slice(0, needed).map((caseId) => ({ caseId, event: { type: 'cancel', reason, at: now } }));
  }
}

/** The message that tells a case it holds its slot of its workflow's key. */
export const caseAdmittedReport = (caseId: string, at: number): StepReport => ({ caseId, event: { type: 'caseAdmitted', at } });
