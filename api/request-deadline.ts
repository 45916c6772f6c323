import type { FastifyInstance } from 'fastify';

/** The code the error handler answers 503 for: a request its deadline ended. */
export const REQUEST_DEADLINE_CODE = 'FST_ERR_HANDLER_TIMEOUT';

/**
 * Answers a request that has no answer within `timeoutMs` through the error handler (503 with
 * Retry-After), whatever it waits for. Fastify's own `handlerTimeout` is not enough: it stops
 * its timer on the request's `close` event, which Node emits as soon as a request body has been
 * read, so a POST that then waits on a paused or cut-off store was never answered in time
 * (measured: a start answered 201 after 14.3 s with a 4 s deadline; test/integration/request-deadline.test.ts).
 */
export function installRequestDeadline(app: FastifyInstance, timeoutMs: number): void {
  app.addHook('onRequest', async (_request, reply) => {
    const timer = setTimeout(() => {
      if (reply.sent || reply.raw.headersSent) return;
      const error = Object.assign(new Error(`no answer within ${timeoutMs} ms`), { code: REQUEST_DEADLINE_CODE, timeoutMs });
      void reply.send(error);
    }, timeoutMs);
    // The response's `close` comes when it has been sent or its connection is gone: either way the deadline is moot.
    reply.raw.once('close', () => clearTimeout(timer));
  });
}
