import { createHash } from 'node:crypto';
import type { CompiledWorkflow } from '../core/definition.js';
import { closeNames } from '../core/suggest.js';
import { workflowNotFoundError } from '../core/errors.js';
import { canonicalJson } from '../core/requests.js';
import { compileWorkflow, validateDefinition } from '../core/validate.js';
import type { Clock } from '../ports/clock.js';
import type { StoredWorkflow, WorkflowStore } from '../ports/store.js';
import { GroupCommit } from '../concurrency/group-commit.js';

/** Versions are immutable, so compiled ones are cached; the cap bounds memory, not freshness. */
const CACHE_LIMIT = 1_000;
/** How long the names a WORKFLOW_NOT_FOUND suggests from are reused. */
const NAMES_TTL_MS = 5_000;

/** Applies definitions (validate, version, store) and hands out compiled versions. */
export class WorkflowRegistry {
  private readonly cache = new Map<string, CompiledWorkflow>();
  /**
   * "Which is the latest version of X?" is asked by every start that names no version. Asked
   * concurrently, it is read once per name for all of them; a group commit never answers from
   * a read sent before the question, so a version applied before a start is what it gets.
   */
  private readonly latest: GroupCommit<string, StoredWorkflow | undefined>;
  /** The workflow names a miss suggests from, read at most every NAMES_TTL_MS (misses can come in floods). */
  private names: { readAt: number; names: Promise<string[]> } | undefined;

  constructor(
    private readonly store: WorkflowStore,
    private readonly clock: Clock,
  ) {
    this.latest = new GroupCommit(async (names) => {
      const distinct = [...new Set(names)];
      const found = new Map(await Promise.all(distinct.map(async (name) => [name, await this.store.getWorkflow(name)] as const)));
      return names.map((name) => found.get(name));
    });
  }

  /** Validates and stores a definition; an identical one already stored keeps its version. */
  async apply(document: unknown): Promise<{ workflow: StoredWorkflow; created: boolean }> {
    const { $schema: _schema, ...definition } = validateDefinition(document);
    const hash = createHash('sha256').update(canonicalJson(definition)).digest('hex');
    return this.store.saveWorkflow(definition, hash, this.clock.now());
  }

  private knownNames(): Promise<string[]> {
    const now = this.clock.now();
    if (!this.names || now - this.names.readAt > NAMES_TTL_MS) {
      this.names = {
        readAt: now,
        names: this.store.listWorkflows().then(
          (list) => list.map((workflow) => workflow.name),
          () => [],
        ),
      };
    }
    return this.names.names;
  }

  /** The compiled definition of a version (the latest when omitted); throws WORKFLOW_NOT_FOUND. */
  async compiled(name: string, version?: number): Promise<CompiledWorkflow> {
    if (version !== undefined) {
      const cached = this.cache.get(`${name}@${version}`);
      if (cached) return cached;
    }
    const stored = version === undefined ? await this.latest.submit(name) : await this.store.getWorkflow(name, version);
    if (!stored) {
      if (version !== undefined) throw workflowNotFoundError(name, version);
      throw workflowNotFoundError(name, undefined, closeNames(name, await this.knownNames()));
    }
    const key = `${name}@${stored.version}`;
    const cached = this.cache.get(key);
    if (cached) return cached;
    const compiled = compileWorkflow(stored.definition, stored.version);
    if (this.cache.size >= CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, compiled);
    return compiled;
  }
}
