import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { BullQueues } from '../lib/adapters/bullmq/queues.js';
import { ANONYMOUS, can, type Principal, type Role } from '../lib/core/auth.js';
import type { FleetMonitor } from '../lib/ports/fleet.js';
import { authenticate, declareAccess, type Authenticator } from './auth.js';
import { boardAction, caseOfJob, refusal } from './board-actions.js';
import { ErrorCode, httpStatusOf } from '../lib/core/error-codes.js';
import { sendError } from './errors.js';

export const BOARD_PATH = '/admin/queues';

/** The board looks for queues that appeared since (a new step queue, say) at most this often. */
const REFRESH_MS = 2_000;

/** Why a key with `roles` may not make a `method` request to the board (403), or undefined when it may. */
export function boardRefusal(roles: readonly Role[], method: string): string | undefined {
  const admin = can(roles, 'keys:manage');
  if (!admin && !can(roles, 'cases:operate')) return 'the queue board is for admins and operators';
  if (!admin && method !== 'GET' && method !== 'HEAD') return 'operators see the queue board read-only';
  return undefined;
}

/**
 * Bull Board under /admin/queues, showing every queue under the workfleet prefix. Admins get
 * full control; operators a read-only board (the queue list says readOnlyMode, and any request
 * that would change something is refused); other roles are refused. Browsers sign in with HTTP
 * Basic, the API key as the password. Actions that would split a case from its jobs (retrying
 * or removing a step job, say) are refused with the workfleet command to use (board-actions.ts).
 */
export async function mountBullBoard(app: FastifyInstance, deps: { queues: BullQueues; monitor: FleetMonitor; auth: Authenticator; authEnabled: boolean }): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  const adapt = (name: string) => new BullMQAdapter(deps.queues.queue(name));
  const board = createBullBoard({
    queues: [],
    serverAdapter,
    options: {
      uiConfig: { boardTitle: 'workfleet queues' },
      // Resolved here so that Bull Board does not have to find its UI itself.
      uiBasePath: dirname(createRequire(import.meta.url).resolve('@bull-board/ui/package.json')),
    },
  });
  const refusedAction = async (method: string, path: string): Promise<string | undefined> => {
    const action = boardAction(method, path);
    if (!action) return undefined;
    if (action.scope !== 'job') return refusal(action);
    await refresh().catch(() => undefined);
    if (!shown.has(action.queue)) return undefined; // the board answers 404 itself; no queue object for any name a request makes up
    const job = await deps.queues.queue(action.queue).getJob(action.jobId);
    if (!job) return undefined; // the board answers 404 itself
    const caseId = caseOfJob(action.jobId, job.data);
    return refusal(action, { state: await job.getState(), ...(caseId ? { caseId } : {}) });
  };
  let refreshedAt = 0;
  let shown: ReadonlySet<string> = new Set();
  const refresh = async () => {
    if (Date.now() - refreshedAt < REFRESH_MS) return;
    refreshedAt = Date.now();
    const names = await deps.monitor.queueNames();
    shown = new Set(names);
    board.replaceQueues(names.map(adapt));
  };

  await app.register(async (scope) => {
    // The board's routes are the plugin's; this scope's hook below checks the key of each request.
    declareAccess(scope, 'queue-board');
    scope.addHook('onRequest', async (request, reply) => {
      const principal: Principal | undefined = deps.authEnabled ? await authenticate(request, reply, deps.auth, { unauthenticatedMessage: 'sign in with an API key as the password' }) : ANONYMOUS;
      if (!principal) return reply;
      const forbidden = boardRefusal(principal.roles, request.method);
      if (forbidden) return sendError(reply, ErrorCode.forbidden, forbidden);
      request.principal = principal;
      const refused = await refusedAction(request.method, request.url.split('?')[0]?.slice(BOARD_PATH.length) ?? '');
      if (refused) {
        // In the board's own error shape, so that its UI shows the message (`error` is the toast's title).
        return reply.status(httpStatusOf(ErrorCode.boardActionRefused)).send({ error: 'Use workfleet for this', message: refused, code: ErrorCode.boardActionRefused });
      }
      // The queue list is read when the board asks for it, so new queues show up at once.
      if (request.url.split('?')[0]?.endsWith('/api/queues')) await refresh().catch(() => undefined);
    });
    // Operators' board: the UI hides every control of a queue that says it is read-only.
    scope.addHook('onSend', async (request, reply, payload) => {
      const principal = request.principal as Principal | null;
      if (!principal || can(principal.roles, 'keys:manage') || reply.statusCode !== 200 || typeof payload !== 'string') return payload;
      if (!request.url.split('?')[0]?.endsWith('/api/queues')) return payload;
      const body = JSON.parse(payload) as { queues?: Array<Record<string, unknown>> };
      for (const queue of body.queues ?? []) Object.assign(queue, { readOnlyMode: true, allowRetries: false, allowCompletedRetries: false });
      return JSON.stringify(body);
    });
    await scope.register(serverAdapter.registerPlugin(), { prefix: BOARD_PATH });
  });
}
