import { execFile, execFileSync } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { promisify } from 'node:util';

/**
 * A network namespace for partition scenarios: a process started inside it reaches the host
 * only through veth pairs, one per link (say `backend` for Redis, `store` for the database), each
 * a /30 of 10.213.x.y with the host end at .1 of the /30 and the namespace end at .2. Traffic
 * stays inside the machine. The servers listen on 127.0.0.1, so for each server the namespace
 * needs, a forwarder on the link's host address relays connections to it.
 *
 * Cutting a link sets its host end down: the namespace end loses its carrier and drops what it
 * sends, the host drops what it would send back, and no side is told. Open TCP connections hang
 * and retransmit, as across a real partition; nothing is reset. Healing sets it up again and
 * the same connections carry on (if their owners have not given up on them meanwhile).
 *
 * Needs CAP_NET_ADMIN (`ip netns add`); `unavailableReason` says why not before a fleet starts.
 * Everything made is removed by `destroy`, and on SIGINT, SIGTERM or exit if it was not.
 */

const run = promisify(execFile);

async function ip(...args: string[]): Promise<void> {
  await run('ip', args);
}

/** Namespaces made by this process and not yet destroyed, removed synchronously on the way out. */
const live = new Set<string>();

function removeSync(name: string): void {
  try {
    execFileSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  } catch {
    // already gone
  }
}

function cleanUpAndExit(signal: NodeJS.Signals): void {
  for (const name of live) removeSync(name);
  live.clear();
  process.exit(signal === 'SIGINT' ? 130 : 143);
}

function track(name: string): void {
  if (live.size === 0) {
    process.once('SIGINT', cleanUpAndExit);
    process.once('SIGTERM', cleanUpAndExit);
    process.once('exit', removeLive);
  }
  live.add(name);
}

function untrack(name: string): void {
  live.delete(name);
  if (live.size === 0) {
    process.off('SIGINT', cleanUpAndExit);
    process.off('SIGTERM', cleanUpAndExit);
    process.off('exit', removeLive);
  }
}

function removeLive(): void {
  for (const name of live) removeSync(name);
}

/** Why a namespace cannot be made here (no `ip`, no privilege), or undefined if it can. */
export async function unavailableReason(): Promise<string | undefined> {
  const probe = `wf-probe-${randomBytes(3).toString('hex')}`;
  try {
    await ip('netns', 'add', probe);
  } catch (error) {
    const detail = ((error as { stderr?: string }).stderr ?? (error as Error).message).trim();
    return `cannot make a network namespace (ip netns add: ${detail}); partitions need root or CAP_NET_ADMIN`;
  }
  await ip('netns', 'del', probe).catch(() => undefined);
  return undefined;
}

interface Link {
  hostEnd: string;
  hostAddress: string;
  insideAddress: string;
}

/** A third octet of 10.213.0.0/16 no interface of the host uses yet. */
async function freeSubnet(): Promise<number> {
  const { stdout } = await run('ip', ['-4', '-o', 'addr', 'show']);
  for (let attempt = 0; attempt < 50; attempt++) {
    const octet = randomInt(0, 256);
    if (!stdout.includes(`10.213.${octet}.`)) return octet;
  }
  throw new Error('no free 10.213.x.0/24 for a partition namespace');
}

export class NetworkNamespace {
  private readonly forwarders: Server[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(
    readonly name: string,
    private readonly links: ReadonlyMap<string, Link>,
  ) {}

  /** Makes the namespace and one veth pair per link name, all up. */
  static async create(linkNames: readonly string[]): Promise<NetworkNamespace> {
    const id = randomBytes(3).toString('hex');
    const name = `wf-${id}`;
    const octet = await freeSubnet();
    await ip('netns', 'add', name);
    track(name);
    const links = new Map<string, Link>();
    const namespace = new NetworkNamespace(name, links);
    try {
      await ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
      for (const [index, linkName] of linkNames.entries()) {
        // Interface names have at most 15 characters: wf<id>h<n> on the host, wf<id>n<n> inside.
        const hostEnd = `wf${id}h${index}`;
        const insideEnd = `wf${id}n${index}`;
        const hostAddress = `10.213.${octet}.${index * 4 + 1}`;
        const insideAddress = `10.213.${octet}.${index * 4 + 2}`;
        await ip('link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', insideEnd);
        links.set(linkName, { hostEnd, hostAddress, insideAddress });
        await ip('link', 'set', insideEnd, 'netns', name);
        await ip('addr', 'add', `${hostAddress}/30`, 'dev', hostEnd);
        await ip('link', 'set', hostEnd, 'up');
        await ip('netns', 'exec', name, 'ip', 'addr', 'add', `${insideAddress}/30`, 'dev', insideEnd);
        await ip('netns', 'exec', name, 'ip', 'link', 'set', insideEnd, 'up');
      }
    } catch (error) {
      await namespace.destroy();
      throw error;
    }
    return namespace;
  }

  /** The command line that runs `command` inside the namespace (same pid: `ip netns exec` execs it). */
  wrap(command: string, args: readonly string[]): [string, string[]] {
    return ['ip', ['netns', 'exec', this.name, command, ...args]];
  }

  /** The namespace's own address on `link`: how the host reaches a server inside. */
  insideAddress(link: string): string {
    return this.must(link).insideAddress;
  }

  /**
   * Relays connections made to the host end of `link` to `127.0.0.1:port`, and answers the
   * address and port a process inside the namespace connects to.
   */
  async forward(link: string, port: number): Promise<string> {
    const { hostAddress } = this.must(link);
    const server = createServer((inbound) => {
      const outbound = createConnection({ host: '127.0.0.1', port });
      for (const socket of [inbound, outbound]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => undefined);
      }
      inbound.on('close', () => outbound.destroy());
      outbound.on('close', () => inbound.destroy());
      inbound.pipe(outbound);
      outbound.pipe(inbound);
    });
    this.forwarders.push(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, hostAddress, () => resolve());
    });
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('forwarder has no port');
    return `${hostAddress}:${address.port}`;
  }

  /** Cuts `link`: packets either way are dropped silently from now on. */
  async cutLink(link: string): Promise<void> {
    await ip('link', 'set', this.must(link).hostEnd, 'down');
  }

  /** Heals a cut link: same addresses, same routes. */
  async healLink(link: string): Promise<void> {
    await ip('link', 'set', this.must(link).hostEnd, 'up');
  }

  /** Stops the forwarders and removes the namespace (which takes its veth pairs with it). */
  async destroy(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await Promise.all(this.forwarders.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
    for (const { hostEnd } of this.links.values()) await ip('link', 'del', hostEnd).catch(() => undefined);
    await ip('netns', 'del', this.name).catch(() => undefined);
    untrack(this.name);
  }

  private must(link: string): Link {
    const found = this.links.get(link);
    if (!found) throw new Error(`namespace ${this.name} has no link ${link}`);
    return found;
  }
}
