import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installRequestDeadline, REQUEST_DEADLINE_CODE } from '../../api/request-deadline.js';

/**
 * The request deadline over a real socket (inject does not emit the request's `close` event the
 * way Node's server does, which is what made Fastify's own handlerTimeout miss requests with a body).
 */
const app = Fastify();
let url = '';

beforeAll(async () => {
  app.setErrorHandler((error: { code?: string }, _request, reply) => reply.status(error.code === REQUEST_DEADLINE_CODE ? 503 : 500).send({ error: { code: error.code } }));
  installRequestDeadline(app, 500);
  const slow = async () => {
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    return { late: true };
  };
  app.post('/slow', slow);
  app.get('/slow', slow);
  app.get('/fast', async () => ({ ok: true }));
  await app.listen({ host: '127.0.0.1', port: 0 });
  url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
});

afterAll(() => app.close());

describe('the request deadline', () => {
  it('answers 503 in time for a request with a body (a start waiting on the store) and one without', async () => {
    for (const method of ['POST', 'GET']) {
      const startedAt = Date.now();
      const response = await fetch(`${url}/slow`, { method, ...(method === 'POST' ? { body: '{"workflow":"w"}', headers: { 'content-type': 'application/json' } } : {}) });
      const tookMs = Date.now() - startedAt;
      expect([method, response.status]).toEqual([method, 503]);
      expect(tookMs).toBeLessThan(2_000);
    }
  });

  it('leaves a request answered in time alone', async () => {
    const response = await fetch(`${url}/fast`);
    expect(response.status).toBe(200);
  });
});
