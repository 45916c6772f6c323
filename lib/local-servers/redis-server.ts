import { mkdirSync } from 'node:fs';
import { spawnManaged, waitForOutput, type ManagedChild } from './child.js';
import { freePort } from './free-port.js';

export interface RedisServer {
  url: string;
  port: number;
  child: ManagedChild;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** Working directory for AOF files; required with `appendOnly`. */
  dir?: string;
  /** Keep an append-only file (fsync every second), so queued jobs survive a restart. Default false. */
  appendOnly?: boolean;
  /** Reuse a port, e.g. to restart a server in place. Default: a free one. */
  port?: number;
  /** The redis-server executable. Default "redis-server" from PATH. */
  bin?: string;
  /**
   * Run in a process group of its own, so that a terminal's Ctrl-C (sent to the whole foreground
   * group) reaches only its owner, which stops it after the processes that use it. Default false.
   */
  ownProcessGroup?: boolean;
}

/**
 * Starts a private redis-server on 127.0.0.1 with `noeviction` (BullMQ needs every key it
 * writes). Used by `workfleet dev` and by the tests, which never touch a Redis they did not start.
 *
 * `hash-max-listpack-value 128`: BullMQ keeps a job's options in one hash field, and a step
 * job's options hold its id (`<case uuid>.<step>`, so at least 65 bytes of JSON); at Redis's
 * default of 64 that one field turns the whole job hash from the compact encoding into a hash
 * table, twice the memory (726 bytes a queued step job against 360). Jobs whose fields fit in 64
 * bytes are stored as before. docs/SCALING.md recommends the same for production Redis.
 */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  for (let attempt = 0; ; attempt++) {
    const port = options.port ?? (await freePort());
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--maxmemory-policy', 'noeviction', '--hash-max-listpack-value', '128', '--loglevel', 'notice'];
    if (options.dir) {
      mkdirSync(options.dir, { recursive: true });
      args.push('--dir', options.dir);
    }
    args.push('--appendonly', options.appendOnly ? 'yes' : 'no', '--appendfsync', 'everysec');
    const child = spawnManaged(options.bin ?? 'redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: options.ownProcessGroup ?? false });
    child.process.on('error', () => undefined);
    try {
      await waitForOutput(child, /Ready to accept connections/, 15_000, 'redis-server');
    } catch (error) {
      await child.stop('SIGKILL');
      if (attempt < 3 && options.port === undefined && /Address already in use/.test(String(error))) continue;
      if ((error as Error).message.includes('ENOENT') || child.process.pid === undefined) {
        throw new Error('redis-server not found on PATH: install it (Debian: apt-get install redis-server) or set REDIS_URL');
      }
      throw error;
    }
    child.process.stdout?.resume();
    child.process.stderr?.resume();
    return { url: `redis://127.0.0.1:${port}`, port, child, stop: async () => void (await child.stop('SIGTERM', 10_000)) };
  }
}
