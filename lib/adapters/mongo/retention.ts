import type { Collection } from 'mongodb';
import { deleteByIds } from './bulk.js';
import { finishedDay, type CaseDocument, type HistoryDocument } from './documents.js';

/** How far retention has got: every case that finished before `day` is gone. */
export interface RetentionProgressDocument {
  _id: 'next-day';
  day: number;
}

/**
 * Deletes finished cases and their history day by day. A finished case carries the day it
 * finished on (`finishedDay`), and retention asks for one day at a time by equality, which
 * every server answers from an index (FerretDB passes no range to its backend: asking
 * `finishedAt < x` read every finished case, 27 s of FerretDB CPU at 100,000). Days wholly
 * behind the cutoff are remembered in one small document, so a run with nothing due is one
 * lookup by `_id`; only the day the cutoff falls on is filtered by `finishedAt` as well.
 */
export class Retention {
  constructor(
    private readonly cases: Collection<CaseDocument>,
    private readonly history: Collection<HistoryDocument>,
    private readonly progress: Collection<RetentionProgressDocument>,
  ) {}

  async deleteFinishedBefore(before: number, limit: number): Promise<number> {
    const lastDay = finishedDay(before - 1);
    let day = await this.firstDay();
    if (day === undefined) return 0;
    let deleted = 0;
    for (; day <= lastDay && deleted < limit; day++) {
      const wanted = limit - deleted;
      const filter = day === lastDay ? { finishedDay: day, finishedAt: { $lt: new Date(before) } } : { finishedDay: day };
      const doomed = await this.cases
        .find(filter, { projection: { _id: 1, revision: 1 } })
        .limit(wanted)
        .toArray();
      // History first: a case document left without history is still readable, the reverse is not.
      // By `_id` (`<case>:<revision>`), the one lookup every server answers from an index.
      await deleteByIds(
        this.history,
        doomed.flatMap((doc) => Array.from({ length: doc.revision }, (_, index) => `${doc._id}:${index + 1}`)),
      );
      await deleteByIds(
        this.cases,
        doomed.map((doc) => doc._id),
      );
      deleted += doomed.length;
      if (doomed.length === wanted) break;
      if (day < lastDay) await this.progress.replaceOne({ _id: 'next-day' }, { day: day + 1 }, { upsert: true });
    }
    return deleted;
  }

  /** Where to start: the remembered day or, the first time on a database, the oldest finished case's day. */
  private async firstDay(): Promise<number | undefined> {
    const saved = await this.progress.findOne({ _id: 'next-day' });
    if (saved) return saved.day;
    // Once per database (FerretDB reads every case for it), then remembered: no case finishes
    // on a day before the oldest that has finished so far.
    const oldest = await this.cases
      .find({ finishedDay: { $exists: true } }, { projection: { finishedDay: 1 } })
      .sort({ finishedDay: 1 })
      .limit(1)
      .next();
    if (oldest?.finishedDay === undefined) return undefined;
    await this.progress.replaceOne({ _id: 'next-day' }, { day: oldest.finishedDay }, { upsert: true });
    return oldest.finishedDay;
  }
}
