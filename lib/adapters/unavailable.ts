import {
  MongoError,
  MongoErrorLabel,
  MongoNetworkError,
  MongoNotConnectedError,
  MongoOperationTimeoutError,
  MongoServerClosedError,
  MongoServerError,
  MongoServerSelectionError,
  MongoTopologyClosedError,
} from 'mongodb';
import { ReplyError } from 'ioredis';

/**
 * Whether an error means a backing server (MongoDB or Redis) is away, full or too slow, rather
 * than a request or a program at fault: the caller may retry, so the API answers 503 with
 * Retry-After and consumers defer. Errors are recognised by class, label and code, never by
 * message text; the drivers' wrappers (a bulk write error around a network error, a cause) are
 * looked through.
 */
export function isInfrastructureUnavailable(error: unknown): boolean {
  return infrastructureReason(error) !== undefined;
}

/** A short stable name of the kind of unavailability (for logs and episode keys), or undefined. */
export function infrastructureReason(error: unknown, depth = 0): string | undefined {
  if (depth > 5 || error === null || typeof error !== 'object') return undefined;
  const found = ownReason(error);
  if (found) return found;
  // MongoBulkWriteError keeps the error it wraps as `errorResponse`; others chain it as `cause`.
  const { cause, errorResponse } = error as { cause?: unknown; errorResponse?: unknown };
  return infrastructureReason(errorResponse instanceof Error ? errorResponse : undefined, depth + 1) ?? infrastructureReason(cause, depth + 1);
}

/** Driver error classes that say the server could not be reached or did not answer in time. */
const MONGO_UNAVAILABLE_CLASSES = [
  MongoNetworkError, // includes MongoNetworkTimeoutError
  MongoServerSelectionError,
  MongoNotConnectedError,
  MongoTopologyClosedError,
  MongoServerClosedError,
  MongoOperationTimeoutError,
] as const;

/** Driver classes without a public export (pool cleared, wait queue full), by their class name. */
const MONGO_UNAVAILABLE_NAMES = new Set(['MongoPoolClearedError', 'MongoWaitQueueTimeoutError']);

/** Labels the driver puts on errors that a retry may cure. */
const MONGO_RETRY_LABELS = [
  MongoErrorLabel.RetryableWriteError,
  MongoErrorLabel.ResetPool,
  MongoErrorLabel.PoolRequestedRetry,
  MongoErrorLabel.HandshakeError,
  MongoErrorLabel.SystemOverloadedError,
  MongoErrorLabel.RetryableError,
] as const;

/** Server codes of a node shutting down, stepping down or giving up on time. */
const MONGO_UNAVAILABLE_CODES = new Set([
  50, // MaxTimeMSExpired
  89, // NetworkTimeout
  91, // ShutdownInProgress
  189, // PrimarySteppedDown
  262, // ExceededTimeLimit
  6, // HostUnreachable
  7, // HostNotFound
  9001, // SocketException
  10107, // NotWritablePrimary
  11600, // InterruptedAtShutdown
  11602, // InterruptedDueToReplStateChange
  13435, // NotPrimaryNoSecondaryOk
  13436, // NotPrimaryOrSecondary
]);

/**
 * Redis error kinds (RESP: the first word of an error reply is its kind, as clients use it to
 * pick an error class) that mean the server cannot take the command now.
 */
const REDIS_UNAVAILABLE_KINDS = new Set(['OOM', 'LOADING', 'BUSY', 'MASTERDOWN', 'READONLY', 'TRYAGAIN', 'CLUSTERDOWN', 'NOREPLICAS', 'MISCONF']);

/** Node's socket errors. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN']);

/** The kind of a Redis error reply (`OOM`, `LOADING`, …), or undefined for anything else. */
function redisErrorKind(error: unknown): string | undefined {
  if (!(error instanceof ReplyError)) return undefined;
  return /^[A-Z]+(?=\s)/.exec((error as Error).message)?.[0];
}

function ownReason(error: object): string | undefined {
  const kind = redisErrorKind(error);
  if (kind !== undefined) return REDIS_UNAVAILABLE_KINDS.has(kind) ? `redis:${kind}` : undefined;
  if (MONGO_UNAVAILABLE_CLASSES.some((type) => error instanceof type)) return `mongodb:${(error as Error).name}`;
  if (error instanceof MongoError) {
    if (MONGO_UNAVAILABLE_NAMES.has(error.name)) return `mongodb:${error.name}`;
    const label = MONGO_RETRY_LABELS.find((candidate) => error.hasErrorLabel(candidate));
    if (label) return `mongodb:${label}`;
    if (error instanceof MongoServerError && typeof error.code === 'number' && MONGO_UNAVAILABLE_CODES.has(error.code)) return `mongodb:code-${error.code}`;
    return undefined;
  }
  const { name, code } = error as { name?: unknown; code?: unknown };
  // ioredis gives up on a command after maxRetriesPerRequest reconnections.
  if (name === 'MaxRetriesPerRequestError') return 'redis:unreachable';
  if (typeof code === 'string' && SOCKET_CODES.has(code)) return `socket:${code}`;
  return undefined;
}
