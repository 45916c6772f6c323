/**
 * Re-vendors the JSON schemas that test/deploy validates the deploy files against, so the tests
 * run offline and pinned. Run it by hand after changing a version below:
 *
 *   node test/deploy/tools/vendor-schemas.ts
 *
 * Every source is a Go module fetched through the Go module proxy with `go mod download` (the
 * only route this project has to upstream files), so each is pinned by version and go.sum hash:
 * - Kubernetes: api/openapi-spec/swagger.json of k8s.io/kubernetes, cut down to the kinds the
 *   manifests use and the definitions they reach (descriptions dropped to keep it small).
 * - KEDA ScaledObject: config/crd/bases of github.com/kedacore/keda/v2.
 * - ServiceMonitor, PrometheusRule: example/prometheus-operator-crd of
 *   github.com/prometheus-operator/prometheus-operator.
 * - Compose: schema/compose-spec.json of github.com/compose-spec/compose-go/v2, copied as is.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const SOURCES = {
  kubernetes: 'k8s.io/kubernetes@v1.34.2',
  keda: 'github.com/kedacore/keda/v2@v2.18.1',
  prometheusOperator: 'github.com/prometheus-operator/prometheus-operator@v0.85.0',
  compose: 'github.com/compose-spec/compose-go/v2@v2.16.2',
} as const;

/** The built-in kinds the manifests may use, as apiVersion/kind → swagger definition. */
const KINDS: Record<string, string> = {
  'v1/ConfigMap': 'io.k8s.api.core.v1.ConfigMap',
  'v1/Namespace': 'io.k8s.api.core.v1.Namespace',
  'v1/Secret': 'io.k8s.api.core.v1.Secret',
  'v1/Service': 'io.k8s.api.core.v1.Service',
  'v1/ServiceAccount': 'io.k8s.api.core.v1.ServiceAccount',
  'apps/v1/Deployment': 'io.k8s.api.apps.v1.Deployment',
  'autoscaling/v2/HorizontalPodAutoscaler': 'io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler',
  'networking.k8s.io/v1/NetworkPolicy': 'io.k8s.api.networking.v1.NetworkPolicy',
  'policy/v1/PodDisruptionBudget': 'io.k8s.api.policy.v1.PodDisruptionBudget',
};

const CRDS: Array<{ module: keyof typeof SOURCES; file: string; version: string }> = [
  { module: 'keda', file: 'config/crd/bases/keda.sh_scaledobjects.yaml', version: 'v1alpha1' },
  { module: 'prometheusOperator', file: 'example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml', version: 'v1' },
  { module: 'prometheusOperator', file: 'example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml', version: 'v1' },
];

type Json = Record<string, unknown>;

function download(module: string): { dir: string; sum: string } {
  const out = execFileSync('go', ['mod', 'download', '-json', module], { encoding: 'utf8', env: { ...process.env, GOFLAGS: '-mod=mod' } });
  const info = JSON.parse(out) as { Dir: string; Sum: string };
  return { dir: info.Dir, sum: info.Sum };
}

/** Drops descriptions (most of the size) and keeps everything that validates. */
function strip(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strip);
  if (!node || typeof node !== 'object') return node;
  const out: Json = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'description') continue;
    // A property called "description" (PrometheusRule annotations do not have one, but CRDs may) is data, not a doc string.
    out[key] = key === 'properties' ? Object.fromEntries(Object.entries(value as Json).map(([name, schema]) => [name, strip(schema)])) : strip(value);
  }
  return out;
}

function refs(node: unknown, found: Set<string>): void {
  if (Array.isArray(node)) return node.forEach((item) => refs(item, found));
  if (!node || typeof node !== 'object') return;
  for (const [key, value] of Object.entries(node)) {
    if (key === '$ref' && typeof value === 'string') found.add(value.replace('#/definitions/', ''));
    else refs(value, found);
  }
}

function main(): void {
  const here = dirname(fileURLToPath(import.meta.url));
  const target = join(here, '..', '..', '..', 'deploy', 'schemas');

  const k8s = download(SOURCES.kubernetes);
  const swagger = JSON.parse(readFileSync(join(k8s.dir, 'api', 'openapi-spec', 'swagger.json'), 'utf8')) as { definitions: Record<string, Json> };
  const wanted = new Set(Object.values(KINDS));
  const queue = [...wanted];
  while (queue.length > 0) {
    const name = queue.pop()!;
    const definition = swagger.definitions[name];
    if (!definition) throw new Error(`no definition ${name}`);
    const found = new Set<string>();
    refs(definition, found);
    for (const ref of found) {
      if (wanted.has(ref)) continue;
      wanted.add(ref);
      queue.push(ref);
    }
  }
  const definitions = Object.fromEntries([...wanted].sort().map((name) => [name, strip(swagger.definitions[name])]));
  writeFileSync(
    join(target, 'kubernetes.json'),
    `${JSON.stringify({ $comment: `api/openapi-spec/swagger.json of ${SOURCES.kubernetes} (go.sum ${k8s.sum}), cut to these kinds and what they reference, descriptions dropped`, kinds: KINDS, definitions })}\n`,
  );

  const crds: Record<string, unknown> = {};
  const notes: string[] = [];
  for (const crd of CRDS) {
    const source = download(SOURCES[crd.module]);
    const doc = parse(readFileSync(join(source.dir, crd.file), 'utf8')) as {
      spec: { group: string; names: { kind: string }; versions: Array<{ name: string; schema: { openAPIV3Schema: unknown } }> };
    };
    const version = doc.spec.versions.find((candidate) => candidate.name === crd.version);
    if (!version) throw new Error(`${crd.file} has no version ${crd.version}`);
    crds[`${doc.spec.group}/${crd.version}/${doc.spec.names.kind}`] = strip(version.schema.openAPIV3Schema);
    notes.push(`${crd.file} of ${SOURCES[crd.module]} (go.sum ${source.sum})`);
  }
  writeFileSync(join(target, 'crds.json'), `${JSON.stringify({ $comment: `openAPIV3Schema of ${notes.join('; ')}; descriptions dropped`, kinds: crds })}\n`);

  const compose = download(SOURCES.compose);
  copyFileSync(join(compose.dir, 'schema', 'compose-spec.json'), join(target, 'compose-spec.json'));
  // The module cache is read-only; the copy must stay writable for the next update.
  chmodSync(join(target, 'compose-spec.json'), 0o644);
  process.stdout.write(`vendored ${Object.keys(definitions).length} Kubernetes definitions, ${Object.keys(crds).length} CRDs, the compose spec (${compose.sum})\n`);
}

main();
