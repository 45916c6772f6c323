import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ROLES } from '../../lib/core/auth.js';
import { DURATION_PATTERN, parseDuration } from '../../lib/core/duration.js';
import type { KeyService } from '../../lib/engine/keys.js';
import { ErrorCode } from '../../lib/core/error-codes.js';
import { sendError } from '../errors.js';
import { errorResponses } from '../schemas.js';

const CreateKey = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    roles: Type.Array(Type.Union(ROLES.map((role) => Type.Literal(role))), { minItems: 1, maxItems: ROLES.length, uniqueItems: true }),
    expiresIn: Type.Optional(Type.String({ pattern: DURATION_PATTERN, description: 'e.g. "90d"; never when omitted' })),
  },
  { additionalProperties: false },
);
const KeyParams = Type.Object({ id: Type.String({ pattern: '^[A-Za-z0-9]{12}$' }) });

const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());

const Time = Type.Union([Type.String({ format: 'date-time' }), Type.Null()]);
const keyFields = {
  id: Type.String(),
  name: Type.String(),
  roles: Type.Array(Type.Union(ROLES.map((role) => Type.Literal(role)))),
  createdAt: Time,
  expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'Null: never expires.' }),
};
const CreatedKey = Type.Object({ ...keyFields, key: Type.String({ description: 'The key to use: wfk_<id>_<secret>. Shown in this answer only; only its hash is kept.' }) }, { title: 'CreatedKey' });
const KeyList = Type.Object({ keys: Type.Array(Type.Object({ ...keyFields, revokedAt: Time })) }, { title: 'KeyList' });
const NoContent = Type.Null({ description: 'Done; no body.' });

export function keyRoutes(app: FastifyInstance, keys: KeyService): void {
  const config = { permission: 'keys:manage' as const };
  // Minting and revoking read the presenting key from the store, not the cache (api/auth.ts).
  const writeConfig = { ...config, freshKey: true };
  const tags = ['keys'];

  app.post<{ Body: Static<typeof CreateKey> }>(
    '/v1/keys',
    {
      config: writeConfig,
      schema: {
        tags,
        operationId: 'createKey',
        description: 'The answer holds the key (wfk_<id>_<secret>) this one time; only a hash of its secret is kept.',
        summary: 'Create a key; the answer is the only time its secret is shown',
        body: CreateKey,
        response: { 201: CreatedKey, ...errorResponses(400, 401, 403, 429) },
      },
    },
    async (request, reply) => {
      const { name, roles, expiresIn } = request.body;
      const expiresInMs = expiresIn === undefined ? undefined : parseDuration(expiresIn);
      const { key, summary } = await keys.create({ name, roles, ...(expiresInMs === undefined ? {} : { expiresInMs }) });
      // The key is shown this once; only its hash is kept.
      return reply.status(201).send({ ...summary, key, createdAt: iso(summary.createdAt), expiresAt: iso(summary.expiresAt) });
    },
  );

  app.get(
    '/v1/keys',
    {
      config,
      schema: {
        tags,
        operationId: 'listKeys',
        description: 'Ids, names, roles, and times of creation, expiry and revocation; never secrets.',
        summary: 'Every key, never its secret',
        response: { 200: KeyList, ...errorResponses(401, 403, 429) },
      },
    },
    async () => ({
      keys: (await keys.list()).map((key) => ({ ...key, createdAt: iso(key.createdAt), expiresAt: iso(key.expiresAt), revokedAt: iso(key.revokedAt) })),
    }),
  );

  app.delete<{ Params: Static<typeof KeyParams> }>(
    '/v1/keys/:id',
    {
      config: writeConfig,
      schema: {
        tags,
        operationId: 'revokeKey',
        description: 'Every API process stops accepting the key at once (within 10 s when Redis cannot carry the notice).',
        summary: 'Revoke a key',
        params: KeyParams,
        response: { 204: NoContent, ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    async (request, reply) => {
      if (!(await keys.revoke(request.params.id))) return sendError(reply, ErrorCode.keyNotFound, `no key ${request.params.id}`);
      return reply.status(204).send();
    },
  );
}
