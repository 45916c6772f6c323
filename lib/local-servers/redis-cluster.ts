import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { spawnManaged, waitForOutput, type ManagedChild } from './child.js';
import { freePort } from './free-port.js';
import { pauseProcess, resumeProcess } from './pause.js';

const run = promisify(execFile);

/** One redis-server of the cluster, on its own port (clients) and bus port (the nodes' gossip). */
export interface RedisClusterNode {
  /** 0..n-1, in start order; stable across restarts. */
  index: number;
  port: number;
  busPort: number;
  url: string;
  /** The running process; replaced by `restart`. */
  child: ManagedChild;
}

export interface RedisClusterOptions {
  /** Masters; each gets `replicasPerMaster` replicas. Default 3. */
  masters?: number;
  /** Default 1. */
  replicasPerMaster?: number;
  /** How long a master may be unreachable before its replica takes over. Default 2000 ms. */
  nodeTimeoutMs?: number;
  /** Where the nodes keep their nodes.conf; default a temp dir removed by `stop`. */
  dir?: string;
  /** The redis-server and redis-cli executables. Default from PATH. */
  bin?: string;
  cliBin?: string;
}

export interface RedisCluster {
  nodes: readonly RedisClusterNode[];
  /** `redis+cluster://127.0.0.1:p1,127.0.0.1:p2,…`: every node as a seed (REDIS_URL takes it). */
  url: string;
  /** The hash slot of `key` (CLUSTER KEYSLOT). */
  slotOf(key: string): Promise<number>;
  /** The masters as a live node sees them now, with the slot ranges each serves. */
  masters(): Promise<Array<{ node: RedisClusterNode; slots: Array<[number, number]> }>>;
  /** The master serving `key`'s slot now. */
  masterOf(key: string): Promise<RedisClusterNode>;
  /** SIGKILL: the node is gone until `restart`. */
  kill(node: RedisClusterNode): Promise<void>;
  /** SIGSTOP, resolved once every thread has stopped: the node holds its connections but answers nothing (a hung server). */
  pause(node: RedisClusterNode): Promise<void>;
  resume(node: RedisClusterNode): void;
  /** Starts a killed (or stopped) node again on its port and with its nodes.conf: it rejoins. */
  restart(node: RedisClusterNode): Promise<void>;
  /** Resolves when every answering node says cluster_state:ok and answering masters serve all 16384 slots; rejects after `timeoutMs`. */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/** Asks one node a question on a short-lived connection. */
async function ask<T>(port: number, question: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1_000, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return await question(redis);
  } finally {
    redis.disconnect();
  }
}

/** Polls `check` until it is true or `timeoutMs` passes; the error names `what`. */
async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      if (await check()) return;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Starts a private Redis Cluster on 127.0.0.1: `masters` × (1 + `replicasPerMaster`)
 * redis-servers in cluster mode, joined with `redis-cli --cluster create`, with the settings
 * startRedisServer uses (noeviction, no snapshots, no AOF) and a short `cluster-node-timeout`,
 * so that a replica takes over a lost master within a few seconds. For the tests and chaos runs;
 * resolves once every node reports cluster_state:ok.
 */
export async function startRedisCluster(options: RedisClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2_000;
  const ownDir = options.dir === undefined;
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'workfleet-redis-cluster-'));
  const bin = options.bin ?? 'redis-server';
  const cli = options.cliBin ?? 'redis-cli';
  const nodes: RedisClusterNode[] = [];

  const spawnNode = async (index: number, port: number, busPort: number): Promise<ManagedChild> => {
    const nodeDir = join(dir, String(index));
    mkdirSync(nodeDir, { recursive: true });
    // The same settings as startRedisServer (see there), plus cluster mode.
    const args = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      nodeDir,
      '--save',
      '',
      '--appendonly',
      'no',
      '--maxmemory-policy',
      'noeviction',
      '--hash-max-listpack-value',
      '128',
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-node-timeout',
      String(nodeTimeoutMs),
      '--cluster-port',
      String(busPort),
      // A replica may take over however long ago it last heard its master (the default refuses
      // one whose link was down longer than 10 node timeouts); the tests want the failover.
      '--cluster-replica-validity-factor',
      '0',
      '--loglevel',
      'notice',
    ];
    const child = spawnManaged(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.process.on('error', () => undefined);
    try {
      await waitForOutput(child, /Ready to accept connections/, 15_000, `redis-server (cluster node ${index})`);
    } catch (error) {
      await child.stop('SIGKILL');
      throw error;
    }
    child.process.stdout?.resume();
    child.process.stderr?.resume();
    return child;
  };

  const stopAll = async () => {
    await Promise.all(nodes.map((node) => node.child.stop('SIGTERM', 5_000)));
    if (ownDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    for (let index = 0; index < masters * (1 + replicas); index++) {
      for (let attempt = 0; ; attempt++) {
        const port = await freePort();
        const busPort = await freePort();
        if (port === busPort) continue;
        try {
          const child = await spawnNode(index, port, busPort);
          nodes.push({ index, port, busPort, url: `redis://127.0.0.1:${port}`, child });
          break;
        } catch (error) {
          if (attempt < 3 && /Address already in use/.test(String(error))) continue;
          throw error;
        }
      }
    }
    await run(cli, ['--cluster', 'create', ...nodes.map((node) => `127.0.0.1:${node.port}`), '--cluster-replicas', String(replicas), '--cluster-yes'], { timeout: 60_000 });
  } catch (error) {
    await stopAll();
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error('redis-server or redis-cli not found on PATH: install them (Debian: apt-get install redis-server)');
    throw error;
  }

  const running = () => nodes.filter((node) => node.child.process.exitCode === null && node.child.process.signalCode === null);
  const paused = new Set<RedisClusterNode>();
  const answering = () => running().filter((node) => !paused.has(node));

  /** CLUSTER NODES as one answering node sees it: id, port, role and slots of each node. */
  const clusterNodes = async () => {
    for (const node of answering()) {
      try {
        const text = await ask(node.port, (redis) => redis.cluster('NODES') as Promise<string>);
        return text
          .trim()
          .split('\n')
          .map((line) => {
            const [, address = '', flags = '', , , , , state = '', ...slots] = line.split(' ');
            return {
              port: Number(/:(\d+)@/.exec(address)?.[1]),
              master: flags.split(',').includes('master'),
              failed: flags.includes('fail') || state !== 'connected',
              slots: slots.filter((slot) => !slot.startsWith('[')).map((slot) => slot.split('-').map(Number) as [number] | [number, number]),
            };
          });
      } catch {
        // this node is not answering: ask the next one
      }
    }
    throw new Error('no cluster node answers');
  };

  const cluster: RedisCluster = {
    nodes,
    url: `redis+cluster://${nodes.map((node) => `127.0.0.1:${node.port}`).join(',')}`,
    async slotOf(key) {
      const [node] = answering();
      if (!node) throw new Error('no cluster node answers');
      return ask(node.port, (redis) => redis.cluster('KEYSLOT', key));
    },
    async masters() {
      const seen = await clusterNodes();
      return seen
        .filter((entry) => entry.master && !entry.failed && entry.slots.length > 0)
        .map((entry) => ({
          node: nodes.find((node) => node.port === entry.port) as RedisClusterNode,
          slots: entry.slots.map(([from, to]) => [from, to ?? from] as [number, number]),
        }))
        .filter((entry) => entry.node !== undefined);
    },
    async masterOf(key) {
      const slot = await cluster.slotOf(key);
      const owner = (await cluster.masters()).find((master) => master.slots.some(([from, to]) => slot >= from && slot <= to));
      if (!owner) throw new Error(`no master serves slot ${slot} (key ${key})`);
      return owner.node;
    },
    async kill(node) {
      paused.delete(node);
      await node.child.stop('SIGKILL');
    },
    async pause(node) {
      paused.add(node);
      await pauseProcess(processId(node));
    },
    resume(node) {
      resumeProcess(processId(node));
      paused.delete(node);
    },
    async restart(node) {
      if (paused.has(node)) cluster.resume(node);
      await node.child.stop('SIGTERM', 5_000);
      node.child = await spawnNode(node.index, node.port, node.busPort);
    },
    async waitHealthy(timeoutMs = 30_000) {
      await until(
        async () => {
          const infos = await Promise.all(answering().map((node) => ask(node.port, (redis) => redis.cluster('INFO'))));
          if (infos.length === 0 || !infos.every((info) => /cluster_state:ok/.test(info) && /cluster_slots_ok:16384/.test(info))) return false;
          // Right after a kill the others still say ok (for up to the node timeout): every slot must be served by a node that answers.
          const live = new Set(answering());
          const served = (await cluster.masters()).filter((master) => live.has(master.node));
          return served.flatMap((master) => master.slots).reduce((sum, [from, to]) => sum + to - from + 1, 0) === 16_384;
        },
        timeoutMs,
        'the Redis Cluster did not report cluster_state:ok on every node',
      );
    },
    stop: stopAll,
  };
  try {
    await cluster.waitHealthy();
    // Every node must know every other before a client's first CLUSTER SLOTS (else it may see a partial map).
    await until(
      async () => {
        const counts = await Promise.all(nodes.map((node) => ask(node.port, (redis) => redis.cluster('INFO'))));
        return counts.every((info) => new RegExp(`cluster_known_nodes:${nodes.length}\\b`).test(info));
      },
      30_000,
      'the Redis Cluster nodes did not all meet',
    );
    // And every replica must have its master's data (a replica still in its first sync cannot take over).
    await until(
      async () => {
        const infos = await Promise.all(nodes.map((node) => ask(node.port, (redis) => redis.info('replication'))));
        return infos.every((info) => /role:master/.test(info) || /master_link_status:up/.test(info));
      },
      30_000,
      'the Redis Cluster replicas did not sync with their masters',
    );
  } catch (error) {
    await stopAll();
    throw error;
  }
  return cluster;
}

function processId(node: RedisClusterNode): number {
  const { pid } = node.child.process;
  if (pid === undefined) throw new Error(`Redis Cluster node ${node.port} has no process`);
  return pid;
}
