import { MongoClient } from 'mongodb';
import { MongoStore } from '../lib/adapters/mongo/store.js';
import { isTerminalCase, type CaseState, type CaseStatus } from '../lib/core/state.js';
import type { CreateResult, Store } from '../lib/ports/store.js';

/**
 * What a fleet process counts about its store, reported to the bench over IPC (bench/fleet-process.ts):
 * calls on the Store port (every store), the database commands behind them (MongoDB driver
 * command monitoring, MongoStore only) and the cases it saw created and finished, so that the
 * bench learns when a workload is done without asking the database.
 */
export interface StoreCounters {
  /** Calls of each Store port method. */
  portCalls: Record<string, number>;
  /** Database commands by name (insert, update, find, …); the port calls for the memory store. */
  storeOps: Record<string, number>;
  /**
   * Documents written: inserted, modified and deleted as the database answered. The memory store
   * has no documents: one per case created and per transition committed (a history entry and the
   * case document, written in one step).
   */
  storeDocs: number;
  /** Commits that lost their revision to another writer (the case had moved on): a conflict, a re-read and a retry. */
  conflicts: number;
  created: number;
  /** When the first case this process created was created (epoch ms). */
  firstCreatedAt: number | undefined;
  /** Cases that reached a terminal status through this process, by workflow. */
  finished: Record<string, FinishedCounts>;
}

export type FinishedCounts = Record<'completed' | 'failed' | 'cancelled', number> & { lastFinishedAt: number };

export function newCounters(): StoreCounters {
  return { portCalls: {}, storeOps: {}, storeDocs: 0, conflicts: 0, created: 0, firstCreatedAt: undefined, finished: {} };
}

const bump = (record: Record<string, number>, key: string, by = 1) => void (record[key] = (record[key] ?? 0) + by);

function noteFinished(counters: StoreCounters, previous: CaseState, next: CaseState): void {
  if (isTerminalCase(previous.status) || !isTerminalCase(next.status)) return;
  const counts = (counters.finished[next.workflow] ??= { completed: 0, failed: 0, cancelled: 0, lastFinishedAt: 0 });
  const status = next.status as Exclude<CaseStatus, 'pending' | 'running' | 'waiting'>;
  counts[status] += 1;
  counts.lastFinishedAt = Math.max(counts.lastFinishedAt, next.finishedAt ?? next.updatedAt);
}

/**
 * `store` with every port call counted. `documents` says who counts documents written: the
 * database's answers (MongoStore) or this wrapper, one per case created or transition committed.
 */
export function countingStore(store: Store, counters: StoreCounters, documents: 'driver' | 'port'): Store {
  const ownDocs = documents === 'port';
  return new Proxy(store, {
    get(target, property) {
      const value = Reflect.get(target, property, target) as unknown;
      if (typeof value !== 'function' || typeof property !== 'string') return value;
      // A question the store answers from the states it is given, with no I/O: not a store operation.
      if (property === 'projects') return (value as (...args: unknown[]) => unknown).bind(target);
      const method = value as (...args: unknown[]) => unknown;
      return (...args: unknown[]) => {
        bump(counters.portCalls, property);
        if (ownDocs) bump(counters.storeOps, property);
        const result = method.apply(target, args);
        if (property === 'createCase') {
          const record = args[0] as CaseState;
          void (result as Promise<CreateResult>).then(
            (created) => {
              if (!created.created) return;
              counters.created += 1;
              counters.firstCreatedAt = Math.min(counters.firstCreatedAt ?? Infinity, record.createdAt);
              if (ownDocs) counters.storeDocs += 1;
            },
            () => undefined,
          );
        } else if (property === 'appendTransition') {
          const [previous, next] = args as [CaseState, CaseState];
          void (result as Promise<'committed' | 'conflict'>).then(
            (outcome) => {
              if (outcome === 'conflict') counters.conflicts += 1;
              if (outcome !== 'committed') return;
              if (ownDocs) counters.storeDocs += 1;
              noteFinished(counters, previous, next);
            },
            () => undefined,
          );
        }
        return result;
      };
    },
  });
}

/**
 * A MongoStore whose driver reports every command (`monitorCommands`) into `counters`. The
 * store keeps its MongoClient private; the benchmark reaches it by name and fails loudly if the
 * adapter ever stops having one, rather than counting nothing.
 */
export function monitoredMongoStore(url: string, counters: StoreCounters): MongoStore {
  const store = new MongoStore({ url, client: { monitorCommands: true } });
  const client = Reflect.get(store, 'client') as unknown;
  if (!(client instanceof MongoClient)) throw new Error('bench: MongoStore no longer keeps its MongoClient as `client`; update bench/store-counters.ts');
  client.on('commandStarted', (event) => bump(counters.storeOps, event.commandName));
  client.on('commandSucceeded', (event) => {
    const reply = event.reply as { n?: number; nModified?: number } | undefined;
    if (event.commandName === 'insert' || event.commandName === 'delete') counters.storeDocs += reply?.n ?? 0;
    else if (event.commandName === 'update') counters.storeDocs += reply?.nModified ?? reply?.n ?? 0;
  });
  return store;
}
