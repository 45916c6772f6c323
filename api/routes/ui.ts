import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { packageRoot } from '../../lib/runtime/package-root.js';
import { ErrorCode } from '../../lib/core/error-codes.js';
import { sendError } from '../errors.js';
import { errorResponses, ErrorResponseSchema } from '../schemas.js';

const UI_PATH = '/ui';

/**
 * The explorer's pages hold no data: they call the /v1 API with the key the person signs in
 * with. So the assets are open, and this CSP lets them run nothing but their own files: no
 * inline script or style, no eval, no other origin, no framing.
 */
const UI_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "manifest-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
};

interface Asset {
  body: Buffer;
  type: string;
  etag: string;
}

/** Every file of the built UI, read once: requests can only ever name one of these, so no path reaches the disk. */
function loadAssets(dir: string): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (current: string) => {
    for (const name of readdirSync(current)) {
      const path = join(current, name);
      if (statSync(path).isDirectory()) {
        walk(path);
        continue;
      }
      const type = TYPES[extname(name)];
      // Source maps and declarations stay on disk: the page does not need them.
      if (!type) continue;
      const body = readFileSync(path);
      assets.set(relative(dir, path).split(sep).join('/'), { body, type, etag: `"${createHash('sha1').update(body).digest('base64url')}"` });
    }
  };
  walk(dir);
  return assets;
}

/** Serves the case explorer built by `npm run build` (dist/ui) under /ui. */
export function uiRoutes(app: FastifyInstance, options: { dir?: string } = {}): void {
  const dir = options.dir ?? join(packageRoot(), 'dist', 'ui');
  const assets = existsSync(join(dir, 'index.html')) ? loadAssets(dir) : new Map<string, Asset>();

  app.register(async (scope) => {
    // Mounted on a server of their own too (test/e2e/explorer-scale.test.ts), without the API's shared schemas.
    if (!scope.getSchema('ErrorResponse')) scope.addSchema(ErrorResponseSchema);
    scope.addHook('onSend', async (_request, reply, payload) => {
      reply.header('content-security-policy', UI_CSP);
      return payload;
    });

    const send = (path: string, etag: string | undefined, reply: import('fastify').FastifyReply) => {
      const asset = assets.get(path);
      if (!asset) {
        if (assets.size === 0) return sendError(reply, ErrorCode.uiNotBuilt, 'the explorer is not built: run npm run build');
        return sendError(reply, ErrorCode.routeNotFound, `no such file: ${UI_PATH}/${path}`);
      }
      // HTML is revalidated every time so that a new build's scripts are picked up at once.
      reply.header('cache-control', path.endsWith('.html') ? 'no-cache' : 'public, max-age=300');
      reply.header('etag', asset.etag);
      if (etag === asset.etag) return reply.status(304).send();
      return reply.type(asset.type).send(asset.body);
    };

    // The files hold no data (see UI_CSP): anyone may load them, and the page asks for a key.
    const options = {
      config: { permission: 'public' as const },
      schema: {
        hide: true,
        response: {
          200: Type.String({ description: 'A file of the explorer: HTML, script, style or image.' }),
          304: Type.Null({ description: 'Not modified since the ETag sent.' }),
          ...errorResponses(404, 503),
        },
      },
    };
    scope.get(UI_PATH, options, async (request, reply) => send('index.html', request.headers['if-none-match'], reply));
    scope.get<{ Params: { '*': string } }>(`${UI_PATH}/*`, options, async (request, reply) => send(request.params['*'] || 'index.html', request.headers['if-none-match'], reply));
  });
}
