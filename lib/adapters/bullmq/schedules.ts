import type { Schedule } from '../../core/schedules.js';
import { INTAKE_QUEUE } from '../../ports/queues.js';
import type { ScheduleInfo, Schedules } from '../../ports/schedules.js';
import type { BullQueues } from './queues.js';

interface Template {
  workflow: string;
  version?: number;
  input: Record<string, unknown>;
  businessKeys?: Record<string, string>;
}

/** The Schedules port as BullMQ job schedulers on the intake queue (visible in Bull Board). */
export class BullSchedules implements Schedules {
  constructor(private readonly queues: BullQueues) {}

  async upsert(schedule: Schedule): Promise<void> {
    const data: Template = {
      workflow: schedule.workflow,
      input: schedule.input,
      ...(schedule.version === undefined ? {} : { version: schedule.version }),
      ...(schedule.businessKeys === undefined ? {} : { businessKeys: schedule.businessKeys }),
    };
    // The cron expression and time zone were checked when the request was parsed (lib/core/schedules).
    await this.queues
      .queue(INTAKE_QUEUE)
      .upsertJobScheduler(schedule.id, schedule.cron === undefined ? { every: schedule.everyMs ?? 60_000 } : { pattern: schedule.cron, ...(schedule.timezone ? { tz: schedule.timezone } : {}) }, {
        name: 'start',
        data,
      });
  }

  async list(): Promise<ScheduleInfo[]> {
    const schedulers = await this.queues.queue(INTAKE_QUEUE).getJobSchedulers(0, -1, true);
    return schedulers.map((scheduler) => {
      const data = (scheduler.template?.data ?? {}) as Partial<Template>;
      return {
        id: scheduler.id ?? scheduler.key,
        workflow: data.workflow ?? '',
        input: data.input ?? {},
        ...(data.version === undefined ? {} : { version: data.version }),
        ...(data.businessKeys === undefined ? {} : { businessKeys: data.businessKeys }),
        ...(scheduler.pattern ? { cron: scheduler.pattern } : {}),
        ...(scheduler.every ? { everyMs: scheduler.every } : {}),
        ...(scheduler.tz ? { timezone: scheduler.tz } : {}),
        ...(scheduler.next === undefined ? {} : { next: scheduler.next }),
        ...(scheduler.iterationCount === undefined ? {} : { runs: scheduler.iterationCount }),
      };
    });
  }

  async remove(id: string): Promise<boolean> {
    return this.queues.queue(INTAKE_QUEUE).removeJobScheduler(id);
  }
}
