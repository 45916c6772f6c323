import { isClusterUrl } from '../adapters/redis/cluster-url.js';
import type { RedisClient } from '../adapters/redis/connection.js';
import { isInfrastructureUnavailable } from '../adapters/unavailable.js';
import { ErrorCode } from '../core/error-codes.js';
import type { Store } from '../ports/store.js';

/** How long a starting process tries to reach Redis or the store before it gives up and says why. */
const REACH_TIMEOUT_MS = 10_000;

/** A server's URL as a log line may show it: any password (and a user name with it) masked. */
export function maskUrl(url: string): string {
  // A cluster URL's host list (`a:1,b:2`) is no URL host: its password is masked as text.
  if (isClusterUrl(url)) return url.replace(/^([^/]*\/\/[^:@/]*:)[^@/]*@/, '$1***@');
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '(not a URL)';
  }
}

/** Thrown when a starting process cannot reach a server it needs; its message says which and what to do. */
class UnreachableError extends Error {
  readonly code = ErrorCode.unreachable;
}

const HINT = 'start it, or set the variable (a running `workfleet dev` fleet is found through .workfleet/dev.json)';

function reason(error: unknown): string {
  const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as { code?: string }).code;
  const message = (error as Error).message ?? String(error);
  return cause && !message.includes(cause) ? `${cause}: ${message}` : message;
}

/** Opens the store, or fails with the address it tried (masked) instead of a bare driver error. */
export async function reachStore(store: Store, url: string): Promise<void> {
  try {
    await store.init();
  } catch (error) {
    // Only a server that cannot be reached is "unreachable"; any other failure of init says itself.
    if (!isInfrastructureUnavailable(error)) throw error;
    throw new UnreachableError(`cannot reach MongoDB at ${maskUrl(url)} (MONGO_URL): ${reason(error)}; ${HINT}`, { cause: error });
  }
}

/** Pings Redis within `timeoutMs`: its client retries for ever, which would hide a wrong address. */
export async function reachRedis(connection: RedisClient, url: string, timeoutMs = REACH_TIMEOUT_MS): Promise<void> {
  // The connection's own error (ECONNREFUSED, a refused password) says more than the ping's retry limit.
  let connectionError: unknown;
  const onError = (error: unknown) => (connectionError = error);
  connection.on('error', onError);
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([connection.ping(), new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)))]);
  } catch (error) {
    throw new UnreachableError(`cannot reach Redis at ${maskUrl(url)} (REDIS_URL): ${reason(connectionError ?? error)}; ${HINT}`, { cause: error });
  } finally {
    clearTimeout(timer);
    connection.off('error', onError);
  }
}
