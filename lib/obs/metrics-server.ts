import { createServer, type Server } from 'node:http';
import { ErrorCode, httpStatusOf } from '../core/error-codes.js';
import type { Metrics } from './metrics.js';
import { runReadinessChecks, type ReadinessCheck } from './readiness.js';

/**
 * The small HTTP server of schedulers and workers: /metrics for Prometheus, /health for
 * liveness, /ready for readiness (every check answers, each within the probe's time). The API
 * serves these on its own port. It listens on `host` only (METRICS_HOST): loopback unless the
 * operator opens it, as the API's API_HOST.
 */
export async function startMetricsServer(address: { host: string; port: number }, metrics: Metrics, checks: readonly ReadinessCheck[]): Promise<Server | undefined> {
  if (address.port === 0) return undefined;
  const server = createServer((request, response) => {
    const send = (status: number, type: string, body: string) => {
      response.writeHead(status, { 'content-type': type });
      response.end(body);
    };
    const sendError = (code: ErrorCode, message: string) => send(httpStatusOf(code), 'application/json', JSON.stringify({ error: { code, message } }));
    const path = (request.url ?? '/').split('?')[0];
    if (request.method !== 'GET') return sendError(ErrorCode.methodNotAllowed, 'GET only');
    if (path === '/health') return send(200, 'application/json', '{"status":"ok"}');
    if (path === '/metrics') {
      void metrics.registry.metrics().then(
        (text) => send(200, metrics.registry.contentType, text),
        () => send(500, 'text/plain', 'metrics unavailable'),
      );
      return;
    }
    if (path === '/ready') {
      void runReadinessChecks(checks).then(({ ready, checks: results }) => send(ready ? 200 : 503, 'application/json', JSON.stringify({ status: ready ? 'ready' : 'not ready', checks: results })));
      return;
    }
    sendError(ErrorCode.routeNotFound, 'try /metrics, /health or /ready');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(address.port, address.host, resolve);
  });
  return server;
}
