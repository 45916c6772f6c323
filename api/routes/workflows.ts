import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { WORKFLOW_NAME_PATTERN, WorkflowDefinitionSchema } from '../../lib/core/definition.js';
import { WorkflowNotFoundError } from '../../lib/core/errors.js';
import type { WorkflowRegistry } from '../../lib/engine/workflows.js';
import type { Clock } from '../../lib/ports/clock.js';
import type { FleetMonitor } from '../../lib/ports/fleet.js';
import type { WorkflowStore } from '../../lib/ports/store.js';
import { unservedQueues } from '../../lib/core/workflow-queues.js';

const NameParams = Type.Object({ name: Type.String({ pattern: WORKFLOW_NAME_PATTERN, maxLength: 100 }) });
const VersionParams = Type.Object({
  name: Type.String({ pattern: WORKFLOW_NAME_PATTERN, maxLength: 100 }),
  version: Type.String({ pattern: '^[1-9][0-9]{0,8}$' }),
});
const iso = (ms: number) => new Date(ms).toISOString();

/** How long an apply waits for the fleet's member list before it answers without warnings. */
const MEMBERS_TIMEOUT_MS = 1_000;

export interface WorkflowRouteDeps {
  workflows: WorkflowRegistry;
  store: WorkflowStore;
  /** Who is alive, for the warnings about queues no worker serves. */
  monitor: Pick<FleetMonitor, 'members'>;
  clock: Clock;
}

/** Warnings for the task queues of a workflow that no live worker consumes (none when the fleet cannot be read in time). */
async function noWorkerWarnings(deps: WorkflowRouteDeps, name: string, version: number): Promise<Array<{ code: string; queue: string; steps: string[]; message: string }>> {
  let timer: NodeJS.Timeout | undefined;
  const members = await Promise.race([
    deps.monitor.members(deps.clock.now()),
    new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), MEMBERS_TIMEOUT_MS))),
  ]).catch(() => undefined).finally(() => clearTimeout(timer));
  if (!members) return [];
  const served = new Set(members.filter((member) => member.role === 'worker').flatMap((member) => member.queues));
  return unservedQueues(await deps.workflows.compiled(name, version), served).map(({ queue, steps }) => ({
    code: 'NO_LIVE_WORKER',
    queue,
    steps,
    message: `no live worker serves queue "${queue}" (step${steps.length === 1 ? '' : 's'} ${steps.join(', ')}): its tasks wait until one does; start one with: workfleet worker --queues ${queue}`,
  }));
}

export function workflowRoutes(app: FastifyInstance, deps: WorkflowRouteDeps): void {
  // The definition is checked by the core validator, which names every problem with its path;
  // a route schema here would only answer with less precise messages first.
  const read = { permission: 'workflows:read' as const };
  const tags = ['workflows'];
  app.post(
    '/v1/workflows',
    {
      config: { permission: 'workflows:write' },
      schema: {
        tags,
        summary: 'Validate and store a definition (JSON, or YAML with content-type application/yaml): 201 new version, 200 unchanged; `warnings` names task queues no live worker serves',
        body: Type.Object({}, { additionalProperties: true, description: 'A workflow definition; see GET /v1/schema/workflow.' }),
      },
    },
    async (request, reply) => {
    const { workflow, created } = await deps.workflows.apply(request.body);
    return reply
      .status(created ? 201 : 200)
      .header('location', `/v1/workflows/${workflow.name}/versions/${workflow.version}`)
      .send({
        name: workflow.name,
        version: workflow.version,
        hash: workflow.hash,
        created,
        createdAt: iso(workflow.createdAt),
        warnings: await noWorkerWarnings(deps, workflow.name, workflow.version),
      });
    },
  );

  app.get('/v1/workflows', { config: read, schema: { tags, summary: 'Every workflow with its latest version' } }, async () => ({
    workflows: (await deps.store.listWorkflows()).map((summary) => ({ ...summary, updatedAt: iso(summary.updatedAt) })),
  }));

  app.get<{ Params: Static<typeof NameParams> }>('/v1/workflows/:name', { config: read, schema: { tags, summary: 'The latest definition and the list of versions', params: NameParams } }, async (request) => {
    const latest = await deps.store.getWorkflow(request.params.name);
    if (!latest) throw new WorkflowNotFoundError(request.params.name);
    const versions = await deps.store.listVersions(request.params.name);
    return {
      name: latest.name,
      latestVersion: latest.version,
      definition: latest.definition,
      versions: versions.map((version) => ({ ...version, createdAt: iso(version.createdAt) })),
    };
  });

  app.get<{ Params: Static<typeof VersionParams> }>(
    '/v1/workflows/:name/versions/:version',
    { config: read, schema: { tags, summary: 'One version of a definition', params: VersionParams } },
    async (request) => {
      const name = request.params.name;
      const version = Number(request.params.version);
      const stored = await deps.store.getWorkflow(name, version);
      if (!stored) throw new WorkflowNotFoundError(name, version);
      return { name, version, hash: stored.hash, createdAt: iso(stored.createdAt), definition: stored.definition };
    },
  );

  app.get('/v1/schema/workflow', { config: read, schema: { tags, summary: 'The JSON Schema of workflow definitions' } }, async () => WorkflowDefinitionSchema);
}
