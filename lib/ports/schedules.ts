import type { Schedule } from '../core/schedules.js';

export interface ScheduleInfo extends Schedule {
  /** When the next case starts (epoch ms), if known. */
  next?: number;
  /** Cases started so far. */
  runs?: number;
}

export interface Schedules {
  /** Creates or replaces a schedule. */
  upsert(schedule: Schedule): Promise<void>;
  list(): Promise<ScheduleInfo[]>;
  /** False when there was no such schedule. */
  remove(id: string): Promise<boolean>;
}
