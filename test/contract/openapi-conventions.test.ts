import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { routesOf, type DeclaredRoute } from '../../api/auth.js';
import { BOARD_PATH } from '../../api/bull-board.js';
import { buildOfflineServer, generateOpenApi } from '../../api/generate-openapi.js';
import { loadConfig } from '../../config/load.js';
import { packageRoot } from '../../lib/runtime/package-root.js';

/**
 * The API description holds to what OpenAPI linters recommend (Redocly's `recommended`,
 * Spectral's `spectral:oas`) and client generators need: servers, and for every operation a
 * unique operationId, a summary, a declared tag, a success answer with its schema and error
 * answers with the error schema. Checked on the document the route schemas generate, with no
 * network and no service, and on the committed openapi.json (npm run generate).
 */

interface Schema {
  $ref?: string;
  type?: string;
}
interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  parameters?: Array<{ name: string; in: string }>;
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: Schema }> }>;
}
interface Document {
  info: { license?: { name: string } };
  servers?: Array<{ url: string }>;
  tags?: Array<{ name: string; description?: string }>;
  paths: Record<string, Record<string, Operation>>;
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace']);
let document: Document;
let operations: Array<{ route: string; path: string; operation: Operation }>;
/** Every route of the server, hidden ones included (the documented operations are a part of them). */
let routes: readonly DeclaredRoute[];

beforeAll(async () => {
  document = (await generateOpenApi(loadConfig({}))) as unknown as Document;
  const app = await buildOfflineServer(loadConfig({}));
  routes = routesOf(app);
  await app.close();
  operations = Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.has(method))
      .map(([method, operation]) => ({ route: `${method.toUpperCase()} ${path}`, path, operation })),
  );
});

const schemaOf = (answer: { content?: Record<string, { schema?: Schema }> } | undefined) => answer?.content?.['application/json']?.schema;

describe('openapi.json', () => {
  it('is the document the routes generate (npm run generate)', () => {
    const committed = JSON.parse(readFileSync(join(packageRoot(), 'openapi.json'), 'utf8')) as unknown;
    expect(committed).toEqual(document);
  });

  it('names its servers and its license', () => {
    expect(document.servers?.length).toBeGreaterThan(0);
    for (const { url } of document.servers ?? []) {
      expect(url).not.toMatch(/example\.com/);
      expect(url === '/' || !url.endsWith('/'), url).toBe(true);
    }
    expect(document.info.license?.name).toBe('Apache-2.0');
  });

  it('documents the routes that clients use, /v1/workflows and /v1/status among them', () => {
    const routes = operations.map((entry) => entry.route);
    expect(routes).toEqual(expect.arrayContaining(['GET /v1/status', 'POST /v1/workflows', 'GET /v1/workflows', 'GET /v1/workflows/{name}', 'POST /v1/cases', 'DELETE /v1/keys/{id}']));
  });

  it('gives every operation a unique operationId in camelCase, a summary and a described tag', () => {
    const described = new Map((document.tags ?? []).map((tag) => [tag.name, tag.description ?? '']));
    const problems = operations.flatMap(({ route, operation }) => [
      ...(operation.operationId && /^[a-z][A-Za-z0-9]*$/.test(operation.operationId) ? [] : [`${route}: operationId ${operation.operationId ?? 'missing'}`]),
      ...(operation.summary ? [] : [`${route}: no summary`]),
      ...((operation.tags ?? []).length === 0 ? [`${route}: no tag`] : []),
      ...(operation.tags ?? []).filter((tag) => !described.get(tag)).map((tag) => `${route}: tag ${tag} not declared with a description`),
    ]);
    expect(problems).toEqual([]);
    const ids = operations.map(({ operation }) => operation.operationId);
    expect(ids.filter((id, index) => ids.indexOf(id) !== index)).toEqual([]);
  });

  it('gives every operation a success answer with its schema (204: no body) and error answers with the error schema', () => {
    const problems = operations.flatMap(({ route, operation }) => {
      const answers = Object.entries(operation.responses ?? {});
      const success = answers.filter(([status]) => /^2\d\d$/.test(status));
      const errors = answers.filter(([status]) => /^4\d\d$/.test(status));
      return [
        ...(success.length === 0 ? [`${route}: no 2xx answer`] : []),
        ...success.filter(([status, answer]) => status !== '204' && !schemaOf(answer)).map(([status]) => `${route}: ${status} has no schema`),
        ...success.filter(([status, answer]) => status === '204' && answer.content !== undefined).map(() => `${route}: 204 has a body`),
        ...(errors.length === 0 ? [`${route}: no 4xx answer`] : []),
        ...errors.filter(([, answer]) => schemaOf(answer)?.$ref !== '#/components/schemas/ErrorResponse').map(([status]) => `${route}: ${status} is not an ErrorResponse`),
        ...answers.filter(([, answer]) => !answer.description).map(([status]) => `${route}: ${status} has no description`),
      ];
    });
    expect(problems).toEqual([]);
  });

  it('gives every route of the server, hidden ones too, a success schema, and 401 and 403 answers to every route that needs a key', () => {
    // The docs page's and Bull Board's routes are their plugins': HTML, static files and the board's own JSON.
    const own = routes.filter((route) => !route.url.startsWith('/docs') && !route.url.startsWith(BOARD_PATH));
    const problems = own.flatMap(({ method, url, permission, responses }) => [
      ...(responses.some((status) => /^2\d\d$/.test(status)) ? [] : [`${method} ${url}: no 2xx response schema`]),
      ...(permission === 'public' ? [] : ['401', '403'].filter((status) => !responses.includes(status)).map((status) => `${method} ${url}: no ${status} response schema`)),
    ]);
    expect(problems).toEqual([]);
    expect(own.map((route) => `${route.method} ${route.url}`)).toEqual(expect.arrayContaining(['GET /health', 'GET /ready', 'GET /metrics', 'GET /ui/*', 'GET /']));
  });

  it('declares every path parameter of every route', () => {
    const problems = operations.flatMap(({ route, path, operation }) => {
      const declared = (operation.parameters ?? [])
        .filter((parameter) => parameter.in === 'path')
        .map((parameter) => parameter.name)
        .sort();
      const templated = [...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]!).sort();
      return JSON.stringify(declared) === JSON.stringify(templated) ? [] : [`${route}: declares ${declared.join(',')}`];
    });
    expect(problems).toEqual([]);
  });
});
