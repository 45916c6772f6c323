import { Type, type Static } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { ROLES } from '../../lib/core/auth.js';
import { DURATION_PATTERN, parseDuration } from '../../lib/core/duration.js';
import type { KeyService } from '../../lib/engine/keys.js';
import { errorBody } from '../errors.js';

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

export function keyRoutes(app: FastifyInstance, keys: KeyService): void {
  const config = { permission: 'keys:manage' as const };
  const tags = ['keys'];

  app.post<{ Body: Static<typeof CreateKey> }>('/v1/keys', { config, schema: { tags, summary: 'Create a key; the answer is the only time its secret is shown', body: CreateKey } }, async (request, reply) => {
    const { name, roles, expiresIn } = request.body;
    const expiresInMs = expiresIn === undefined ? undefined : parseDuration(expiresIn);
    const { key, summary } = await keys.create({ name, roles, ...(expiresInMs === undefined ? {} : { expiresInMs }) });
    // The key is shown this once; only its hash is kept.
    return reply.status(201).send({ ...summary, key, createdAt: iso(summary.createdAt), expiresAt: iso(summary.expiresAt) });
  });

  app.get('/v1/keys', { config, schema: { tags, summary: 'Every key, never its secret' } }, async () => ({
    keys: (await keys.list()).map((key) => ({ ...key, createdAt: iso(key.createdAt), expiresAt: iso(key.expiresAt), revokedAt: iso(key.revokedAt) })),
  }));

  app.delete<{ Params: Static<typeof KeyParams> }>('/v1/keys/:id', { config, schema: { tags, summary: 'Revoke a key', params: KeyParams } }, async (request, reply) => {
    if (!(await keys.revoke(request.params.id))) return reply.status(404).send(errorBody('KEY_NOT_FOUND', `no key ${request.params.id}`));
    return reply.status(204).send();
  });
}
