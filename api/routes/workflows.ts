import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { WORKFLOW_NAME_PATTERN, WorkflowDefinitionSchema } from '../../lib/core/definition.js';
import { WorkflowNotFoundError } from '../../lib/core/errors.js';
import type { WorkflowRegistry } from '../../lib/engine/workflows.js';
import type { WorkflowStore } from '../../lib/ports/store.js';
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
  { name: Type.String(), version: Type.Integer(), hash: Type.String({ description: 'SHA-256 of the canonical definition.' }), created: Type.Boolean(), createdAt: Time },
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
const WorkflowView = Type.Object(
  { name: Type.String(), latestVersion: Type.Integer(), definition: Definition, versions: Type.Array(VersionInfo, { description: 'Newest first.' }) },
  { title: 'Workflow' },
);
const WorkflowVersion = Type.Object({ name: Type.String(), version: Type.Integer(), hash: Type.String(), createdAt: Time, definition: Definition }, { title: 'WorkflowVersion' });
const JsonSchema = Type.Object({}, { additionalProperties: true, title: 'JsonSchema', description: 'A JSON Schema document.' });

export function workflowRoutes(app: FastifyInstance, deps: { workflows: WorkflowRegistry; store: WorkflowStore }): void {
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
        description: 'JSON, or YAML with content-type application/yaml. A changed definition becomes a new version (201); the same one again answers 200.',
        body: Type.Object({}, { additionalProperties: true, description: 'A workflow definition; see GET /v1/schema/workflow.' }),
        response: { 200: AppliedWorkflow, 201: AppliedWorkflow, ...errorResponses(400, 401, 403, 413, 415, 429) },
      },
    },
    async (request, reply) => {
    const { workflow, created } = await deps.workflows.apply(request.body);
    return reply
      .status(created ? 201 : 200)
      .header('location', `/v1/workflows/${workflow.name}/versions/${workflow.version}`)
      .send({ name: workflow.name, version: workflow.version, hash: workflow.hash, created, createdAt: iso(workflow.createdAt) });
    },
  );

  app.get('/v1/workflows', { config: read, schema: { tags, operationId: 'listWorkflows', description: 'Name, latest version, number of versions and description of every stored workflow.', summary: 'Every workflow with its latest version', response: { 200: WorkflowList, ...errorResponses(401, 403, 429) } } }, async () => ({
    workflows: (await deps.store.listWorkflows()).map((summary) => ({ ...summary, updatedAt: iso(summary.updatedAt) })),
  }));

  app.get<{ Params: Static<typeof NameParams> }>('/v1/workflows/:name', {
    config: read,
    schema: { tags, operationId: 'getWorkflow', description: "The definition of the workflow's latest version, with every version (number, hash, time), newest first.", summary: 'The latest definition and the list of versions', params: NameParams, response: { 200: WorkflowView, ...errorResponses(400, 401, 403, 404, 429) } },
  }, async (request) => {
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
    { config: read, schema: { tags, operationId: 'getWorkflowVersion', description: 'Versions are never changed or deleted: a running case stays on the version it started with.', summary: 'One version of a definition', params: VersionParams, response: { 200: WorkflowVersion, ...errorResponses(400, 401, 403, 404, 429) } } },
    async (request) => {
      const name = request.params.name;
      const version = Number(request.params.version);
      const stored = await deps.store.getWorkflow(name, version);
      if (!stored) throw new WorkflowNotFoundError(name, version);
      return { name, version, hash: stored.hash, createdAt: iso(stored.createdAt), definition: stored.definition };
    },
  );

  app.get(
    '/v1/schema/workflow',
    { config: read, schema: { tags, operationId: 'getWorkflowSchema', description: 'What POST /v1/workflows validates definitions against (also published as schemas/workflow.schema.json), for editors and CI checks.', summary: 'The JSON Schema of workflow definitions', response: { 200: JsonSchema, ...errorResponses(401, 403, 429) } } },
    async () => WorkflowDefinitionSchema,
  );
}
