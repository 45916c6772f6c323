import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { parser as promqlParser } from '@prometheus-io/lezer-promql';
import { Ajv, type ValidateFunction } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { settings } from '../../config/load.js';
import { Metrics } from '../../lib/obs/metrics.js';
import { packageRoot } from '../../lib/runtime/package-root.js';

/** Helpers of the deploy checks: YAML, the metric catalogue, PromQL, kustomize, Kubernetes schemas. */

const run = promisify(execFile);
export const ROOT = packageRoot();
export const DEPLOY = join(ROOT, 'deploy');

export type Json = Record<string, unknown>;

/** Every document of a YAML file, with merge keys (`<<: *anchor`) resolved as Compose does. */
export function readYaml(path: string): Json[] {
  return parseAllDocuments(readFileSync(path, 'utf8'), { merge: true }).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${path}: ${doc.errors.map((error) => error.message).join('; ')}`);
    return doc.toJS({ maxAliasCount: 100 }) as Json;
  });
}

/** Every environment variable the configuration reads (config/schema.ts). */
export function knownSettings(): Set<string> {
  return new Set([...settings().values()].map((leaf) => leaf.env));
}

export interface MetricInfo {
  type: string;
  labels: Set<string>;
}

/**
 * The metrics a workfleet process exposes, from the real registry: every `watch*` gauge is
 * switched on (as the scheduler holding the lease does), and histograms contribute their
 * _bucket, _sum and _count series.
 */
export function metricCatalog(): Map<string, MetricInfo> {
  const metrics = new Metrics('catalogue');
  const prototype = Object.getPrototypeOf(metrics) as Record<string, unknown>;
  for (const name of Object.getOwnPropertyNames(prototype)) {
    const method = prototype[name];
    if (name.startsWith('watch') && typeof method === 'function') (method as (source: () => Promise<undefined>) => void).call(metrics, async () => undefined);
  }
  const catalog = new Map<string, MetricInfo>();
  for (const metric of metrics.registry.getMetricsAsArray()) {
    const { name, labelNames } = metric as unknown as { name: string; labelNames?: string[] };
    const type = (metric as unknown as { type?: string }).type ?? 'untyped';
    const labels = new Set(['process', ...(labelNames ?? [])]);
    if (type === 'histogram') {
      catalog.set(`${name}_bucket`, { type, labels: new Set([...labels, 'le']) });
      catalog.set(`${name}_sum`, { type, labels });
      catalog.set(`${name}_count`, { type, labels });
    } else {
      catalog.set(name, { type, labels });
    }
  }
  return catalog;
}

/** Labels Prometheus adds to every scraped series (static configs, Kubernetes service discovery). */
const TARGET_LABELS = new Set(['job', 'instance', 'namespace', 'pod', 'service', 'container', 'endpoint']);

export interface PromqlSelector {
  metric: string;
  labels: string[];
}

/**
 * Parses PromQL with Prometheus's own grammar (the one its UI uses) and returns the syntax
 * errors and every vector selector with the labels it matches on.
 */
export function parsePromql(expr: string): { errors: string[]; selectors: PromqlSelector[] } {
  const tree = promqlParser.parse(expr);
  const errors: string[] = [];
  const selectors: PromqlSelector[] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) errors.push(`syntax error at ${node.from}: …${expr.slice(Math.max(0, node.from - 20), node.from + 20)}…`);
      if (node.name === 'VectorSelector') {
        const metricNode = node.node.getChild('Identifier');
        const matchers = node.node.getChild('LabelMatchers');
        const labels: string[] = [];
        matchers?.toTree().iterate({
          enter(inner) {
            if (inner.name === 'LabelName') labels.push(expr.slice(matchers.from + inner.from, matchers.from + inner.to));
          },
        });
        selectors.push({ metric: metricNode ? expr.slice(metricNode.from, metricNode.to) : '', labels });
      }
    },
  });
  return { errors, selectors };
}

/**
 * Problems of one PromQL expression: syntax, metrics missing from the catalogue, and label
 * matchers on labels such a metric never has. The standard process_* and nodejs_* metrics are
 * exposed by other services too, so a selector of one must name workfleet's `process` label.
 */
export function promqlProblems(expr: string, catalog: Map<string, MetricInfo>): string[] {
  const { errors, selectors } = parsePromql(expr);
  const problems = [...errors];
  if (selectors.length === 0) problems.push('selects no metric');
  for (const { metric, labels } of selectors) {
    if (!metric) {
      problems.push('selects by labels only');
      continue;
    }
    if (!metric.startsWith('workfleet_') && !labels.includes('process')) problems.push(`${metric} is not workfleet's own: select it by its process label`);
    const info = catalog.get(metric);
    if (!info) {
      problems.push(`unknown metric ${metric}`);
      continue;
    }
    for (const label of labels) if (!info.labels.has(label) && !TARGET_LABELS.has(label)) problems.push(`${metric} has no label ${label}`);
  }
  return problems;
}

/** Grafana expands its variables before Prometheus sees a query; do the same for parsing. */
export function expandGrafanaVariables(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)/g, '5m').replace(/\$\{?[A-Za-z_]\w*\}?/g, '.*');
}

/**
 * A Go program the deploy checks need, built once from the Go module proxy with the module pinned
 * in deploy/tools/<name> (go.mod, go.sum) and cached in ~/.cache/workfleet under a hash of those
 * files, as the FerretDB build is. `target` is the package to build (default: the module itself).
 */
export async function goTool(name: string, target = '.'): Promise<string> {
  const dir = join(DEPLOY, 'tools', name);
  const hash = createHash('sha256');
  for (const file of readdirSync(dir).sort()) hash.update(file).update(readFileSync(join(dir, file)));
  const binary = join(homedir(), '.cache', 'workfleet', `${name}-${hash.digest('hex').slice(0, 12)}`, name);
  if (existsSync(binary)) return binary;
  mkdirSync(dirname(binary), { recursive: true });
  // Build to a private name and rename: parallel test files never run a half-written binary.
  const partial = `${binary}.${process.pid}.partial`;
  const go = ['/usr/local/go/bin/go', join(homedir(), '.cache', 'workfleet', 'go', 'bin', 'go')].find((candidate) => existsSync(candidate)) ?? 'go';
  await run(go, ['build', '-o', partial, target], {
    cwd: dir,
    env: { ...process.env, GOFLAGS: '-mod=mod', GOTOOLCHAIN: 'local', CGO_ENABLED: '0' },
    maxBuffer: 16 * 1024 * 1024,
  });
  renameSync(partial, binary);
  return binary;
}

/**
 * A kustomize to render the manifests with: $KUSTOMIZE_BIN, `kustomize` or `kubectl kustomize`
 * from PATH, else the version pinned in deploy/tools/kustomize, built from the Go module proxy.
 */
async function kustomizeCommand(): Promise<string[]> {
  if (process.env.KUSTOMIZE_BIN) return [process.env.KUSTOMIZE_BIN, 'build'];
  for (const [command, ...args] of [
    ['kustomize', 'build'],
    ['kubectl', 'kustomize'],
  ] as const) {
    try {
      await run(command, command === 'kubectl' ? ['version', '--client'] : ['version']);
      return [command, ...args];
    } catch {
      // not on PATH: try the next
    }
  }
  return [await goTool('kustomize', 'sigs.k8s.io/kustomize/kustomize/v5'), 'build'];
}

/** The rendered manifests of a kustomization directory. */
export async function kustomize(dir: string): Promise<Json[]> {
  const [command, ...args] = await kustomizeCommand();
  const { stdout } = await run(command!, [...args, dir], { maxBuffer: 16 * 1024 * 1024 });
  return parseAllDocuments(stdout)
    .map((doc) => doc.toJS() as Json)
    .filter((doc) => doc && typeof doc === 'object');
}

type Schema = Record<string, unknown>;

/**
 * Makes an OpenAPI schema strict the way `kubeconform -strict` does: an object that lists its
 * properties accepts no others (a misspelt field fails instead of being dropped by the API
 * server), unless Kubernetes marks it as preserving unknown fields. Int-or-string and quantity
 * fields take both forms, as the API server does.
 */
function strict(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strict);
  if (!node || typeof node !== 'object') return node;
  const schema = { ...(node as Schema) };
  // Every reference points into the one registered document of definitions.
  if (typeof schema.$ref === 'string') schema.$ref = schema.$ref.replace(/^#\/definitions\//, 'k8s#/definitions/');
  if (schema.format === 'int-or-string' || schema['x-kubernetes-int-or-string'] === true) {
    const { pattern } = schema;
    return { anyOf: [{ type: 'integer' }, { type: 'string', ...(pattern ? { pattern } : {}) }] };
  }
  // Go's inline flags, e.g. (?i), have no JavaScript equivalent: such a pattern is not checked.
  if (typeof schema.pattern === 'string' && schema.pattern.includes('(?')) delete schema.pattern;
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties' || key === 'definitions') schema[key] = Object.fromEntries(Object.entries(value as Schema).map(([name, inner]) => [name, strict(inner)]));
    else if (key === 'items' || key === 'additionalProperties' || key === 'allOf' || key === 'anyOf' || key === 'oneOf' || key === 'not') schema[key] = strict(value);
  }
  if (schema.properties && schema.additionalProperties === undefined && schema['x-kubernetes-preserve-unknown-fields'] !== true) schema.additionalProperties = false;
  return schema;
}

/** A validator for every kind the manifests may use, from the schemas vendored in deploy/schemas. */
export function kubernetesValidator(): (doc: Json) => string[] {
  cachedValidator ??= buildKubernetesValidator();
  return cachedValidator;
}

let cachedValidator: ((doc: Json) => string[]) | undefined;

function buildKubernetesValidator(): (doc: Json) => string[] {
  const k8s = JSON.parse(readFileSync(join(DEPLOY, 'schemas', 'kubernetes.json'), 'utf8')) as { kinds: Record<string, string>; definitions: Record<string, Schema> };
  const crds = JSON.parse(readFileSync(join(DEPLOY, 'schemas', 'crds.json'), 'utf8')) as { kinds: Record<string, Schema> };
  const definitions = Object.fromEntries(Object.entries(k8s.definitions).map(([name, schema]) => [name, strict(schema) as Schema]));
  // Quantities are strings or numbers in manifests (cpu: 1); the swagger says only string.
  definitions['io.k8s.apimachinery.pkg.api.resource.Quantity'] = { anyOf: [{ type: 'string', pattern: '^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$' }, { type: 'number' }] };
  const ajv = new Ajv({ allErrors: true, strict: false });
  ajv.addFormat('int32', { type: 'number', validate: (value: number) => Number.isInteger(value) && value >= -(2 ** 31) && value < 2 ** 31 });
  ajv.addFormat('int64', { type: 'number', validate: (value: number) => Number.isSafeInteger(value) });
  for (const format of ['byte', 'date-time', 'double', 'float']) ajv.addFormat(format, true);
  ajv.addSchema({ $id: 'k8s', definitions }, 'k8s');

  const pinKind = (apiVersionKind: string, schema: Schema): Schema => {
    const slash = apiVersionKind.lastIndexOf('/');
    const properties = { ...(schema.properties as Schema) };
    properties.apiVersion = { const: apiVersionKind.slice(0, slash) };
    properties.kind = { const: apiVersionKind.slice(slash + 1) };
    // CRD schemas leave metadata open; hold it to ObjectMeta like every built-in kind.
    properties.metadata = { $ref: 'k8s#/definitions/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta' };
    return { ...schema, properties, required: [...new Set([...((schema.required as string[] | undefined) ?? []), 'apiVersion', 'kind', 'metadata'])] };
  };
  const validators = new Map<string, ValidateFunction>();
  for (const [kind, definition] of Object.entries(k8s.kinds)) {
    validators.set(kind, ajv.compile(pinKind(kind, { ...(definitions[definition] as Schema), properties: { ...((definitions[definition] as Schema).properties as Schema) } })));
  }
  for (const [kind, schema] of Object.entries(crds.kinds)) validators.set(kind, ajv.compile(pinKind(kind, strict(schema) as Schema)));

  return (doc) => {
    const kind = `${String(doc.apiVersion)}/${String(doc.kind)}`;
    const validate = validators.get(kind);
    if (!validate) return [`no schema for ${kind}`];
    if (validate(doc)) return [];
    return (validate.errors ?? []).map(
      (error) => `${error.instancePath || '/'} ${error.message ?? ''}${error.params && 'additionalProperty' in error.params ? `: ${String(error.params.additionalProperty)}` : ''}`,
    );
  };
}
