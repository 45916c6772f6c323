import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ErrorCode } from '../lib/core/error-codes.js';
import type { Handler, Handlers } from '../lib/sdk/index.js';

class HandlersModuleError extends Error {
  readonly code = ErrorCode.handlersModuleInvalid;
  constructor(message: string) {
    super(message);
    this.name = 'HandlersModuleError';
  }
}

/**
 * Loads the handlers module the operator configured (WORKER_HANDLERS). Its default export (or
 * an export named `handlers`) maps task names to async functions. This is code the operator
 * deployed, not content from workflow definitions, which are never executed.
 */
export async function loadHandlers(path: string): Promise<ReadonlyMap<string, Handler>> {
  if (!path) throw new HandlersModuleError('no handlers module: set WORKER_HANDLERS or pass --handlers to the path of your handlers module');
  const absolute = resolve(path);
  if (!existsSync(absolute)) throw new HandlersModuleError(`handlers module ${absolute} does not exist`);
  const module = (await import(pathToFileURL(absolute).href)) as { default?: unknown; handlers?: unknown };
  const exported = module.default ?? module.handlers;
  if (!exported || typeof exported !== 'object') {
    throw new HandlersModuleError(`${absolute} must export (default, or as "handlers") an object mapping task names to functions`);
  }
  const handlers = new Map<string, Handler>();
  for (const [task, handler] of Object.entries(exported as Handlers)) {
    if (typeof handler !== 'function') throw new HandlersModuleError(`${absolute}: handler "${task}" is not a function`);
    handlers.set(task, handler);
  }
  if (handlers.size === 0) throw new HandlersModuleError(`${absolute} exports no handlers`);
  return handlers;
}
