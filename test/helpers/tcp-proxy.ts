import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy in front of a real server, for network faults no server can be asked for: replies
 * held back (the server did the work, the client has not heard), and every connection cut at
 * once (the client sees its connection reset mid-operation).
 */
export class TcpProxy {
  private readonly pairs = new Set<{ client: Socket; server: Socket; held: Buffer[]; holding: boolean }>();
  /** Replies are held on a connection once it has sent these bytes. */
  private marker: Buffer | undefined;
  /** Bytes sent to the server since the proxy started. */
  forwardedBytes = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const accepting: { proxy?: TcpProxy } = {};
    const server = createServer((client) => accepting.proxy?.accept(client, target));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    accepting.proxy = new TcpProxy(server, typeof address === 'object' && address ? address.port : 0);
    return accepting.proxy;
  }

  private accept(client: Socket, target: { host: string; port: number }): void {
    const server = createConnection(target);
    const pair = { client, server, held: [] as Buffer[], holding: false };
    this.pairs.add(pair);
    client.on('data', (chunk: Buffer) => {
      this.forwardedBytes += chunk.length;
      if (this.marker && chunk.includes(this.marker)) pair.holding = true;
      server.write(chunk);
    });
    server.on('data', (chunk: Buffer) => (pair.holding ? pair.held.push(chunk) : client.write(chunk)));
    const close = () => {
      client.destroy();
      server.destroy();
      this.pairs.delete(pair);
    };
    client.on('error', close).on('close', close);
    server.on('error', close).on('close', close);
  }

  /** A connection that sends a message containing `marker` gets no more replies (the server still gets and does the work). */
  holdRepliesAfter(marker: string): void {
    this.marker = Buffer.from(marker);
  }

  /** Resets every open connection (the held replies are lost with them) and forwards normally again. */
  cut(): void {
    for (const pair of this.pairs) {
      pair.client.resetAndDestroy();
      pair.server.destroy();
    }
    this.pairs.clear();
    this.marker = undefined;
  }

  async stop(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
