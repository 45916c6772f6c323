import type { BulkCaseResult, BulkOperation } from '../../core/bulk.js';

/** Bulk operations in memory, with the MongoDB adapter's rules: a page's results are stored once, a stop is never overwritten. */
export class MemoryBulkOperations {
  private readonly operations = new Map<string, { operation: BulkOperation; stoppedAt?: number }>();
  private readonly results = new Map<string, BulkCaseResult[]>();

  async insert(operation: BulkOperation): Promise<void> {
    if (this.operations.has(operation.id)) throw new Error(`bulk operation ${operation.id} already exists`);
    this.operations.set(operation.id, { operation: structuredClone(operation) });
  }

  async get(id: string): Promise<BulkOperation | undefined> {
    const entry = this.operations.get(id);
    return entry && this.view(entry);
  }

  async savePage(operation: BulkOperation, results: readonly BulkCaseResult[]): Promise<'saved' | 'taken'> {
    const key = `${operation.id}:${operation.pages - 1}`;
    if (this.results.has(key)) return 'taken';
    this.results.set(key, structuredClone([...results]));
    const entry = this.operations.get(operation.id);
    if (entry) entry.operation = structuredClone({ ...operation, status: operation.status === 'stopped' ? 'running' : operation.status });
    return 'saved';
  }

  async stop(id: string, at: number): Promise<BulkOperation | undefined> {
    const entry = this.operations.get(id);
    if (!entry) return undefined;
    if (entry.operation.status === 'running' && entry.stoppedAt === undefined) entry.stoppedAt = at;
    return this.view(entry);
  }

  async readResults(id: string, page: number): Promise<BulkCaseResult[] | undefined> {
    const results = this.results.get(`${id}:${page}`);
    return results && structuredClone(results);
  }

  async findStalled(before: number, limit: number): Promise<BulkOperation[]> {
    return [...this.operations.values()]
      .filter((entry) => entry.operation.status === 'running' && entry.stoppedAt === undefined && entry.operation.updatedAt < before)
      .sort((a, b) => a.operation.updatedAt - b.operation.updatedAt)
      .slice(0, limit)
      .map((entry) => this.view(entry));
  }

  private view(entry: { operation: BulkOperation; stoppedAt?: number }): BulkOperation {
    const operation = structuredClone(entry.operation);
    if (operation.status !== 'running' || entry.stoppedAt === undefined) return operation;
    return { ...operation, status: 'stopped', finishedAt: entry.stoppedAt };
  }
}
