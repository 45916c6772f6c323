import { MongoServerError, type Collection } from 'mongodb';
import type { WorkflowDefinition } from '../../core/definition.js';
import type { StoredWorkflow, WorkflowStore, WorkflowSummary } from '../../ports/store.js';
import { DUPLICATE_KEY } from './bulk.js';
import { decodeWorkflow, type WorkflowDocument } from './documents.js';

const isDuplicateKey = (error: unknown): boolean =>
  error instanceof MongoServerError &&
  (error.code === DUPLICATE_KEY ||
    // insertMany reports per-document errors; all must be duplicates to be ignorable.
    (Array.isArray((error as { writeErrors?: unknown }).writeErrors) && (error as unknown as { writeErrors: Array<{ code: number }> }).writeErrors.every((e) => e.code === DUPLICATE_KEY)));

/** Workflow definitions, one document per version (`<name>@<version>`). */
export class MongoWorkflows implements WorkflowStore {
  constructor(private readonly workflows: Collection<WorkflowDocument>) {}

  async saveWorkflow(definition: WorkflowDefinition, hash: string, now: number): Promise<{ workflow: StoredWorkflow; created: boolean }> {
    const { name } = definition;
    // Two writers may race for the next version number; the unique indexes decide, and the
    // loser either finds its identical definition stored or takes the number after.
    for (let round = 0; round < 20; round++) {
      const same = await this.workflows.findOne({ name, hash });
      if (same) return { workflow: decodeWorkflow(same), created: false };
      const latest = await this.workflows.find({ name }).sort({ version: -1 }).limit(1).next();
      const version = (latest?.version ?? 0) + 1;
      const doc: WorkflowDocument = {
        _id: `${name}@${version}`,
        name,
        version,
        hash,
        source: JSON.stringify(definition),
        createdAt: new Date(now),
        ...(definition.description === undefined ? {} : { description: definition.description }),
      };
      try {
        await this.workflows.insertOne(doc);
        return { workflow: decodeWorkflow(doc), created: true };
      } catch (error) {
        if (!isDuplicateKey(error)) throw error;
      }
    }
    throw new Error(`could not store workflow "${name}": too many concurrent versions`);
  }

  async getWorkflow(name: string, version?: number): Promise<StoredWorkflow | undefined> {
    const doc = version === undefined ? await this.workflows.find({ name }).sort({ version: -1 }).limit(1).next() : await this.workflows.findOne({ _id: `${name}@${version}` });
    return doc ? decodeWorkflow(doc) : undefined;
  }

  async listWorkflows(): Promise<WorkflowSummary[]> {
    // Versions are few; grouping here keeps to what FerretDB v1 aggregates (it lacks $first).
    const docs = await this.workflows
      .find({}, { projection: { name: 1, version: 1, createdAt: 1, description: 1 } })
      .sort({ name: 1, version: -1 })
      .toArray();
    const summaries = new Map<string, WorkflowSummary>();
    for (const doc of docs) {
      const known = summaries.get(doc.name);
      if (known) {
        known.versions += 1;
        continue;
      }
      summaries.set(doc.name, {
        name: doc.name,
        latestVersion: doc.version,
        versions: 1,
        updatedAt: doc.createdAt.getTime(),
        ...(doc.description ? { description: doc.description } : {}),
      });
    }
    return [...summaries.values()];
  }

  async listVersions(name: string): Promise<Array<{ version: number; hash: string; createdAt: number }>> {
    const docs = await this.workflows
      .find({ name }, { projection: { version: 1, hash: 1, createdAt: 1 } })
      .sort({ version: -1 })
      .toArray();
    return docs.map((doc) => ({ version: doc.version, hash: doc.hash, createdAt: doc.createdAt.getTime() }));
  }
}
