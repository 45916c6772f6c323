import { Type, type Static } from '@sinclair/typebox';
import type { CaseFilter } from '../lib/core/bulk.js';
import { WORKFLOW_NAME_PATTERN } from '../lib/core/definition.js';
import { CASE_STATUSES } from '../lib/core/state.js';

/**
 * Which cases: the filters of the case list (`GET /v1/cases`, as query parameters) and of bulk
 * operations (`filter` in their body), one schema and one parser for both, so that "act on the
 * cases the list shows" means exactly those.
 */

const Time = (description: string) => Type.Optional(Type.String({ format: 'date-time', description }));

export const CASE_FILTER_FIELDS = {
  status: Type.Optional(Type.Union(CASE_STATUSES.map((status) => Type.Literal(status)))),
  workflow: Type.Optional(Type.String({ pattern: WORKFLOW_NAME_PATTERN, maxLength: 100 })),
  key: Type.Optional(Type.String({ pattern: '^[A-Za-z][A-Za-z0-9_]{0,39}=.{1,200}$', description: 'A business key given at start, as name=value.' })),
  createdAfter: Time('Created at or after this time (ISO 8601).'),
  createdBefore: Time('Created before this time (ISO 8601).'),
  updatedAfter: Time('Last changed at or after this time (ISO 8601), as the case document records it: exact for finished cases.'),
  updatedBefore: Time('Last changed before this time (ISO 8601).'),
  errorCode: Type.Optional(
    Type.String({
      pattern: '^[A-Za-z][A-Za-z0-9_.:-]{0,99}$',
      description: "The case error's code (STEP_FAILED, DEADLINE_EXCEEDED, …) or the code of the step error that failed it (UPSTREAM_UNAVAILABLE, STEP_TIMEOUT, …).",
    }),
  ),
};

export const CaseFilterSchema = Type.Object(CASE_FILTER_FIELDS, { additionalProperties: false, description: 'Which cases: the filters of GET /v1/cases.' });
export type WireCaseFilter = Static<typeof CaseFilterSchema>;

/** The filter of a validated request. */
export function parseCaseFilter(wire: WireCaseFilter): CaseFilter {
  const { status, workflow, key, createdAfter, createdBefore, updatedAfter, updatedBefore, errorCode } = wire;
  const separator = key?.indexOf('=') ?? -1;
  return {
    ...(status ? { status } : {}),
    ...(workflow ? { workflow } : {}),
    ...(key ? { businessKey: { name: key.slice(0, separator), value: key.slice(separator + 1) } } : {}),
    ...(createdAfter ? { createdAfter: Date.parse(createdAfter) } : {}),
    ...(createdBefore ? { createdBefore: Date.parse(createdBefore) } : {}),
    ...(updatedAfter ? { updatedAfter: Date.parse(updatedAfter) } : {}),
    ...(updatedBefore ? { updatedBefore: Date.parse(updatedBefore) } : {}),
    ...(errorCode ? { errorCode } : {}),
  };
}

/** A filter as the wire shows it (the inverse of parseCaseFilter). */
export function presentCaseFilter(filter: CaseFilter): WireCaseFilter {
  const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());
  const wire: Record<string, string | undefined> = {
    status: filter.status,
    workflow: filter.workflow,
    key: filter.businessKey ? `${filter.businessKey.name}=${filter.businessKey.value}` : undefined,
    createdAfter: iso(filter.createdAfter),
    createdBefore: iso(filter.createdBefore),
    updatedAfter: iso(filter.updatedAfter),
    updatedBefore: iso(filter.updatedBefore),
    errorCode: filter.errorCode,
  };
  return Object.fromEntries(Object.entries(wire).filter(([, value]) => value !== undefined));
}
