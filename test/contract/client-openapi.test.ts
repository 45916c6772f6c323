import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  CASE_STATUSES,
  CLIENT_OPERATIONS,
  STEP_STATUSES,
  type BulkOperation,
  type BulkPreview,
  type BulkResult,
  type CaseList,
  type CaseSummary,
  type CaseView,
  type DebouncedStart,
  type ErrorInfo,
  type StartCaseRequest,
  type StartedCase,
  type StepView,
  type TraceEvent,
} from '../../lib/client/index.js';
import { packageRoot } from '../../lib/runtime/package-root.js';

/**
 * workfleet/client against the published API description (openapi.json, generated from the
 * server's route schemas): every route the client calls exists with the success statuses it
 * expects, and every type it declares has only fields the API documents, with exactly the
 * documented ones required. The key lists are tied to the TypeScript types at compile time (`Exact`), so a
 * field added to a type without the list, or the other way round, does not compile.
 */

type Schema = { type?: string; properties?: Record<string, Schema>; required?: string[]; anyOf?: Schema[]; enum?: string[]; $ref?: string; items?: Schema; additionalProperties?: Schema | boolean };
const openapi = JSON.parse(readFileSync(join(packageRoot(), 'openapi.json'), 'utf8')) as {
  paths: Record<
    string,
    Record<
      string,
      {
        requestBody?: { content: Record<string, { schema: Schema }> };
        responses: Record<string, { content?: Record<string, { schema: Schema }> }>;
        parameters?: Array<{ name: string; in: string; schema: Schema }>;
      }
    >
  >;
  components: { schemas: Record<string, Schema> };
};

const resolve = (schema: Schema): Schema => (schema.$ref ? openapi.components.schemas[schema.$ref.replace('#/components/schemas/', '')]! : schema);
const operation = (method: string, path: string) => openapi.paths[path]?.[method.toLowerCase()];
const response = (method: string, path: string, status = '200') => resolve(operation(method, path)!.responses[status]!.content!['application/json']!.schema);
const nullableObject = (schema: Schema) => resolve(schema.anyOf?.find((option) => option.type !== 'null') ?? schema);

/** Keys of T, as a tuple checked both ways against the type. */
type Exact<T, K extends readonly PropertyKey[]> = [Exclude<keyof T, K[number]>] extends [never] ? ([Exclude<K[number], keyof T>] extends [never] ? K : never) : never;
const keys =
  <T>() =>
  <const K extends readonly (keyof T)[]>(list: Exact<T, K>) => ({ all: list as readonly string[] });
/** Which keys of T are required (not optional). */
type RequiredKeys<T> = { [P in keyof T]-?: object extends Pick<T, P> ? never : P }[keyof T];
const required =
  <T>() =>
  <const K extends readonly RequiredKeys<T>[]>(list: [Exclude<RequiredKeys<T>, K[number]>] extends [never] ? K : never) =>
    list as readonly string[];

const shapes: Array<{ name: string; all: readonly string[]; required: readonly string[]; schema: () => Schema }> = [
  {
    name: 'StartCaseRequest',
    ...keys<StartCaseRequest>()(['workflow', 'version', 'input', 'idempotencyKey', 'idempotencyWindow', 'businessKeys', 'priority']),
    required: required<StartCaseRequest>()(['workflow']),
    schema: () => operation('POST', '/v1/cases')!.requestBody!.content['application/json']!.schema,
  },
  {
    name: 'StartedCase',
    ...keys<StartedCase>()(['id', 'status', 'workflow', 'version']),
    required: required<StartedCase>()(['id', 'status', 'workflow', 'version']),
    schema: () => response('POST', '/v1/cases', '201'),
  },
  {
    name: 'DebouncedStart',
    ...keys<DebouncedStart>()(['id', 'status', 'workflow', 'version', 'debounce']),
    required: required<DebouncedStart>()(['id', 'status', 'workflow', 'version', 'debounce']),
    schema: () => response('POST', '/v1/cases', '202'),
  },
  {
    name: 'DebouncedStart.debounce',
    ...keys<DebouncedStart['debounce']>()(['key', 'outcome', 'startsAt', 'starts']),
    required: required<DebouncedStart['debounce']>()(['key', 'outcome', 'startsAt', 'starts']),
    schema: () => response('POST', '/v1/cases', '202').properties!.debounce!,
  },
  {
    name: 'CaseView',
    ...keys<CaseView>()([
      'id',
      'workflow',
      'version',
      'status',
      'input',
      'output',
      'error',
      'steps',
      'createdAt',
      'updatedAt',
      'deadlineAt',
      'finishedAt',
      'startedBy',
      'businessKeys',
      'waitingFor',
      'parent',
      'stuck',
      'idempotencyKey',
    ]),
    required: required<CaseView>()(['id', 'workflow', 'version', 'status', 'input', 'output', 'error', 'steps', 'createdAt', 'updatedAt', 'deadlineAt', 'finishedAt', 'startedBy', 'businessKeys', 'waitingFor']),
    schema: () => response('GET', '/v1/cases/{id}'),
  },
  {
    name: 'StepView',
    ...keys<StepView>()([
      'status',
      'attempts',
      'startedAt',
      'finishedAt',
      'output',
      'error',
      'scheduledAt',
      'nextAttemptAt',
      'deferredBy',
      'limits',
      'waitingFor',
      'iteration',
      'items',
      'childCaseId',
      'skipReason',
      'compensation',
      'run',
    ]),
    required: required<StepView>()(['status', 'attempts', 'startedAt', 'finishedAt', 'output', 'error', 'scheduledAt']),
    schema: () => response('GET', '/v1/cases/{id}').properties!.steps!.additionalProperties as Schema,
  },
  {
    name: 'ErrorInfo',
    ...keys<ErrorInfo>()(['code', 'message', 'retryable', 'stepId', 'attempt', 'details']),
    required: required<ErrorInfo>()(['code', 'message']),
    schema: () => nullableObject(response('GET', '/v1/cases/{id}').properties!.error!),
  },
  { name: 'CaseList', ...keys<CaseList>()(['cases', 'nextCursor']), required: required<CaseList>()(['cases', 'nextCursor']), schema: () => response('GET', '/v1/cases') },
  {
    name: 'CaseSummary',
    ...keys<CaseSummary>()(['id', 'workflow', 'version', 'status', 'createdAt', 'updatedAt', 'finishedAt', 'error']),
    required: required<CaseSummary>()(['id', 'workflow', 'version', 'status', 'createdAt', 'updatedAt', 'finishedAt', 'error']),
    schema: () => response('GET', '/v1/cases').properties!.cases!.items!,
  },
  {
    name: 'TraceEvent',
    ...keys<TraceEvent>()(['seq', 'type', 'stepId', 'at', 'data']),
    required: required<TraceEvent>()(['seq', 'type', 'at', 'data']),
    schema: () => response('GET', '/v1/cases/{id}/trace').properties!.events!.items!,
  },
  {
    name: 'BulkPreview',
    ...keys<BulkPreview>()(['dryRun', 'action', 'matched', 'atLeast', 'byStatus', 'eligible', 'wouldAct', 'limit', 'sample']),
    required: required<BulkPreview>()(['dryRun', 'action', 'matched', 'atLeast', 'byStatus', 'eligible', 'wouldAct', 'limit', 'sample']),
    schema: () => response('POST', '/v1/cases/bulk/retry'),
  },
  {
    name: 'BulkOperation',
    ...keys<BulkOperation>()(['id', 'action', 'filter', 'limit', 'status', 'total', 'done', 'counts', 'createdAt', 'updatedAt', 'finishedAt', 'createdBy', 'reason', 'compensate', 'signal']),
    required: required<BulkOperation>()(['id', 'action', 'filter', 'limit', 'status', 'total', 'done', 'counts', 'createdAt', 'updatedAt', 'finishedAt', 'createdBy']),
    schema: () => response('GET', '/v1/bulk/{id}'),
  },
  {
    name: 'BulkResult',
    ...keys<BulkResult>()(['caseId', 'outcome', 'status', 'code', 'message']),
    required: required<BulkResult>()(['caseId', 'outcome', 'status', 'code', 'message']),
    schema: () => response('GET', '/v1/bulk/{id}/results').properties!.results!.items!,
  },
];

describe('workfleet/client against openapi.json', () => {
  it.each(Object.entries(CLIENT_OPERATIONS))('calls %s on a documented route with its documented success statuses', (_name, { method, path, success }) => {
    const documented = operation(method, path);
    expect(documented, `${method} ${path}`).toBeDefined();
    for (const status of success) expect(Object.keys(documented!.responses), `${method} ${path}`).toContain(String(status));
    const pathParameters = (documented!.parameters ?? []).filter((parameter) => parameter.in === 'path').map((parameter) => parameter.name);
    expect(pathParameters.sort()).toEqual([...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]).sort());
  });

  it.each(shapes)('declares $name with documented fields only, and exactly the documented ones as required', ({ all, required: mandatory, schema }) => {
    const documented = schema();
    // A field the API adds later (optional, or required) fails here only in the second case: an
    // SDK may lag behind an optional addition, never declare what the API does not send.
    expect(all.filter((field) => !(field in (documented.properties ?? {})))).toEqual([]);
    expect([...mandatory].sort()).toEqual([...(documented.required ?? [])].sort());
  });

  it('knows every case and step status the API documents', () => {
    const statuses = (schema: Schema) => (schema.anyOf ?? []).flatMap((option) => option.enum ?? []);
    expect([...CASE_STATUSES]).toEqual(statuses(response('GET', '/v1/cases/{id}').properties!.status!));
    const step = response('GET', '/v1/cases/{id}').properties!.steps!.additionalProperties as Schema;
    expect([...STEP_STATUSES]).toEqual(statuses(step.properties!.status!));
  });

  it('sends list filters the API documents as query parameters', () => {
    const documented = (operation('GET', '/v1/cases')!.parameters ?? []).filter((parameter) => parameter.in === 'query').map((parameter) => parameter.name);
    const sent = keys<import('../../lib/client/index.js').ListCasesQuery>()(['status', 'workflow', 'key', 'createdAfter', 'createdBefore', 'updatedAfter', 'updatedBefore', 'errorCode', 'limit', 'cursor']).all;
    expect([...sent].sort()).toEqual(documented.sort());
  });
});
