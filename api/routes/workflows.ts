import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { WORKFLOW_NAME_PATTERN, WorkflowDefinitionSchema } from '../../lib/core/definition.js';
import { ErrorCode } from '../../lib/core/error-codes.js';
import { workflowNotFoundError } from '../../lib/core/errors.js';
import type { WorkflowRegistry } from '../../lib/engine/workflows.js';
import type { Clock } from '../../lib/ports/clock.js';
import type { FleetMonitor } from '../../lib/ports/fleet.js';
import type { WorkflowStore } from '../../lib/ports/store.js';
import { unservedQueues } from '../../lib/core/workflow-queues.js';
import { errorResponses } from '../schemas.js';

const NameParams = Type.Object({ name: Type.String({ pattern: WORKFLOW_NAME_PATTERN, maxLength: 100 }) });
const VersionParams = Type.Object({
  name: Type.String({ pattern: WORKFLOW_NAME_PATTERN, maxLength: 100 }),
  version: Type.String({ pattern: '^[1-9][0-9]{0,8}$' }),
});
const iso = (ms: number) => new Date(ms).toISOString();

const Time = Type.String({ format: 'date-time' });
const Definition = Type.Object({}, { additionalProperties: true, description: 'A workflow definition, as applied; see GET /v1/schema/workflow.' });
const AppliedWorkflow = Type.Object(
  {
    name: Type.String(),
    version: Type.Integer(),
    hash: Type.String({ description: 'SHA-256 of the canonical definition.' }),
    created: Type.Boolean(),
    createdAt: Time,
    warnings: Type.Array(Type.Object({ code: Type.String({ description: ErrorCode.noLiveWorker }), queue: Type.String(), steps: Type.Array(Type.String()), message: Type.String() }), {
      description: 'Task queues of the workflow that no live worker serves: their steps would wait until one does.',
    }),
  },
  { title: 'AppliedWorkflow' },
);
const WorkflowList = Type.Object(
  {
    workflows: Type.Array(
      Type.Object({ name: Type.String(), latestVersion: Type.Integer(), versions: Type.Integer({ description: 'How many versions it has.' }), description: Type.Optional(Type.String()), updatedAt: Time }),
    ),
  },
  { title: 'WorkflowList' },
);
const VersionInfo = Type.Object({ version: Type.Integer(), hash: Type.String(), createdAt: Time });
const WorkflowView = Type.Object({ name: Type.String(), latestVersion: Type.Integer(), definition: Definition, versions: Type.Array(VersionInfo, { description: 'Newest first.' }) }, { title: 'Workflow' });
const WorkflowVersion = Type.Object({ name: Type.String(), version: Type.Integer(), hash: Type.String(), createdAt: Time, definition: Definition }, { title: 'WorkflowVersion' });
const JsonSchema = Type.Object({}, { additionalProperties: true, title: 'JsonSchema', description: 'A JSON Schema document.' });

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
  const members = await Promise.race([deps.monitor.members(deps.clock.now()), new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), MEMBERS_TIMEOUT_MS)))])
    .catch(() => undefined)
    .finally(() => clearTimeout(timer));
  if (!members) return [];
  const served = new Set(members.filter((member) => member.role === 'worker').flatMap((member) => member.queues));
  return unservedQueues(await deps.workflows.compiled(name, version), served).map(({ queue, steps }) => ({
    code: ErrorCode.noLiveWorker,
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
        operationId: 'applyWorkflow',
        summary: 'Validate and store a definition',
        description: 'JSON, or YAML with content-type application/yaml. A changed definition becomes a new version (201); the same one again answers 200. `warnings` names task queues no live worker serves.',
        body: Type.Object({}, { additionalProperties: true, description: 'A workflow definition; see GET /v1/schema/workflow.' }),
        response: { 200: AppliedWorkflow, 201: AppliedWorkflow, ...errorResponses(400, 401, 403, 413, 415, 429) },
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

  app.get(
    '/v1/workflows',
    {
      config: read,
      schema: {
        tags,
        operationId: 'listWorkflows',
        description: 'Name, latest version, number of versions and description of every stored workflow.',
        summary: 'Every workflow with its latest version',
        response: { 200: WorkflowList, ...errorResponses(401, 403, 429) },
      },
    },
    async () => ({
      workflows: (await deps.store.listWorkflows()).map((summary) => ({ ...summary, updatedAt: iso(summary.updatedAt) })),
    }),
  );

  app.get<{ Params: Static<typeof NameParams> }>(
    '/v1/workflows/:name',
    {
      config: read,
      schema: {
        tags,
        operationId: 'getWorkflow',
        description: "The definition of the workflow's latest version, with every version (number, hash, time), newest first.",
        summary: 'The latest definition and the list of versions',
        params: NameParams,
        response: { 200: WorkflowView, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const latest = await deps.store.getWorkflow(request.params.name);
      if (!latest) throw workflowNotFoundError(request.params.name);
      const versions = await deps.store.listVersions(request.params.name);
      return {
        name: latest.name,
        latestVersion: latest.version,
        definition: latest.definition,
        versions: versions.map((version) => ({ ...version, createdAt: iso(version.createdAt) })),
      };
    },
  );

  app.get<{ Params: Static<typeof VersionParams> }>(
    '/v1/workflows/:name/versions/:version',
    {
      config: read,
      schema: {
        tags,
        operationId: 'getWorkflowVersion',
        description: 'Versions are never changed or deleted: a running case stays on the version it started with.',
        summary: 'One version of a definition',
        params: VersionParams,
        response: { 200: WorkflowVersion, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request) => {
      const name = request.params.name;
      const version = Number(request.params.version);
      const stored = await deps.store.getWorkflow(name, version);
      if (!stored) throw workflowNotFoundError(name, version);
      return { name, version, hash: stored.hash, createdAt: iso(stored.createdAt), definition: stored.definition };
    },
  );

  app.get(
    '/v1/schema/workflow',
    {
      config: read,
      schema: {
        tags,
        operationId: 'getWorkflowSchema',
        description: 'What POST /v1/workflows validates definitions against (also published as schemas/workflow.schema.json), for editors and CI checks.',
        summary: 'The JSON Schema of workflow definitions',
        response: { 200: JsonSchema, ...errorResponses(401, 403, 429) },
      },
    },
    async () => WorkflowDefinitionSchema,
  );
}
