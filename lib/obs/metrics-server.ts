import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';

export interface ProbeCheck {
  name: string;
  check: () => Promise<void>;
}

/**
 * The small HTTP server of schedulers and workers: /metrics for Prometheus, /health for
 * liveness, /ready for readiness (every check answers). The API serves these on its own port.
 */
export async function startMetricsServer(port: number, metrics: Metrics, checks: readonly ProbeCheck[]): Promise<Server | undefined> {
  if (port === 0) return undefined;
  const server = createServer((request, response) => {
    const send = (status: number, type: string, body: string) => {
      response.writeHead(status, { 'content-type': type });
      response.end(body);
    };
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET') return send(405, 'application/json', '{"error":{"code":"METHOD_NOT_ALLOWED","message":"GET only"}}');
    if (path === '/health') return send(200, 'application/json', '{"status":"ok"}');
    if (path === '/metrics') {
      void metrics.registry.metrics().then((text) => send(200, metrics.registry.contentType, text), () => send(500, 'text/plain', 'metrics unavailable'));
      return;
    }
    if (path === '/ready') {
      void Promise.all(
        checks.map(async ({ name, check }) => {
          try {
            await check();
            return [name, 'ok'] as const;
          } catch (error) {
            return [name, (error as Error).message || 'failed'] as const;
          }
        }),
      ).then((results) => {
        const ready = results.every(([, result]) => result === 'ok');
        send(ready ? 200 : 503, 'application/json', JSON.stringify({ status: ready ? 'ready' : 'not ready', checks: Object.fromEntries(results) }));
      });
      return;
    }
    send(404, 'application/json', '{"error":{"code":"ROUTE_NOT_FOUND","message":"try /metrics, /health or /ready"}}');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '0.0.0.0', resolve);
  });
  return server;
}
