import type { FastifyDynamicSwaggerOptions } from '@fastify/swagger';

/**
 * The OpenAPI description's fixed part; the paths come from the route schemas. Each route
 * names its operationId (what generated clients call their methods), its success answer and
 * its error answers, so that clients in other languages get sensible names and error types.
 */
export const OPENAPI_DOCUMENT: Pick<FastifyDynamicSwaggerOptions, 'openapi'> = {
  openapi: {
    info: {
      title: 'workfleet API',
      description: 'Start, inspect and follow workflow cases; manage definitions, schedules and API keys.',
      version: '1',
      license: { name: 'Apache-2.0', url: 'https://www.apache.org/licenses/LICENSE-2.0' },
    },
    servers: [
      { url: '/', description: 'The API that serves this document (GET /docs/json)' },
      { url: 'http://127.0.0.1:8080', description: 'An API on this machine at its default port (API_PORT)' },
    ],
    tags: [
      { name: 'cases', description: 'Start cases, read them and their traces, cancel, signal and retry them.' },
      { name: 'workflows', description: 'Workflow definitions and their versions.' },
      { name: 'schedules', description: 'Start a workflow on a cron expression or an interval.' },
      { name: 'keys', description: 'API keys (admin only); a secret is shown once, when its key is created.' },
      { name: 'operations', description: 'The fleet at a glance: queues, processes, cases by status, stuck cases.' },
      { name: 'explorer', description: 'What the case explorer (/ui) reads besides the case routes.' },
      { name: 'bulk', description: 'Retry, cancel or signal every case a filter matches: a dry run counts them, a real run is an operation with progress and a result per case.' },
    ],
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'An API key: wfk_<id>_<secret>' },
        apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' },
      },
    },
    security: [{ bearer: [] }, { apiKey: [] }],
  },
};
