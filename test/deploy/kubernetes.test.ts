import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../config/load.js';
import { DEPLOY, knownSettings, kubernetesValidator, kustomize, metricCatalog, promqlProblems, readYaml, type Json } from './support.js';

/**
 * The Kubernetes manifests, rendered by kustomize exactly as `kubectl apply -k` would, then held
 * to the Kubernetes and CRD schemas (strictly: unknown fields fail) and to what workfleet needs
 * of them: probes, grace periods, budgets, autoscaling on the backlog, only the API reachable.
 */

type Manifest = Json & { kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: Json };
type Container = Json & { name: string; image: string; args?: string[]; ports?: Array<{ name: string; containerPort: number }>; envFrom?: Array<Json>; resources?: Json };

const rendered = new Map<string, Manifest[]>();
let tmp = '';

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'workfleet-k8s-'));
  // The HPA alternative, rendered the way an operator swaps it in for KEDA.
  const hpaOverlay = join(tmp, 'hpa');
  const rel = (path: string) => relative(hpaOverlay, join(DEPLOY, 'k8s', path));
  await import('node:fs').then(({ mkdirSync }) => mkdirSync(hpaOverlay));
  writeFileSync(
    join(hpaOverlay, 'kustomization.yaml'),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: workfleet\nresources:\n  - ${rel('base')}\ncomponents:\n  - ${rel('components/hpa')}\n  - ${rel('components/prometheus-operator')}\n`,
  );
  for (const [name, dir] of [
    ['base', join(DEPLOY, 'k8s', 'base')],
    ['production', join(DEPLOY, 'k8s', 'overlays', 'production')],
    ['hpa', hpaOverlay],
  ] as const) {
    rendered.set(name, (await kustomize(dir)) as Manifest[]);
  }
}, 170_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const byKind = (docs: Manifest[], kind: string) => docs.filter((doc) => doc.kind === kind);
const find = (docs: Manifest[], kind: string, name: string) => {
  const doc = docs.find((candidate) => candidate.kind === kind && candidate.metadata.name === name);
  if (!doc) throw new Error(`no ${kind} ${name}`);
  return doc;
};
const podLabels = (deployment: Manifest) => ((deployment.spec!.template as Json).metadata as { labels: Record<string, string> }).labels;
const podSpec = (deployment: Manifest) => (deployment.spec!.template as Json).spec as Json & { containers: Container[]; terminationGracePeriodSeconds?: number };
const matches = (selector: { matchLabels?: Record<string, string>; matchExpressions?: Array<{ key: string; operator: string; values?: string[] }> }, labels: Record<string, string>) =>
  Object.entries(selector.matchLabels ?? {}).every(([key, value]) => labels[key] === value) &&
  (selector.matchExpressions ?? []).every((expression) => {
    const value = labels[expression.key];
    if (expression.operator === 'In') return value !== undefined && (expression.values ?? []).includes(value);
    if (expression.operator === 'NotIn') return value === undefined || !(expression.values ?? []).includes(value);
    if (expression.operator === 'Exists') return value !== undefined;
    return value === undefined;
  });

/** The environment a container gets: its ConfigMaps (as rendered) and the example Secret. */
function containerEnv(docs: Manifest[], container: Container): Record<string, string> {
  const secrets = readYaml(join(DEPLOY, 'k8s', 'secret.example.yaml')) as Manifest[];
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    const ref = (source.configMapRef ?? source.secretRef) as { name: string };
    const doc = source.configMapRef ? find(docs, 'ConfigMap', ref.name) : secrets.find((secret) => secret.metadata.name === ref.name);
    if (!doc) throw new Error(`${container.name} refers to ${ref.name}, which neither the render nor secret.example.yaml has`);
    Object.assign(env, (doc.data ?? doc.stringData) as Record<string, string>);
  }
  for (const variable of (container.env as Array<{ name: string; value?: string }> | undefined) ?? []) if (variable.value !== undefined) env[variable.name] = variable.value;
  return env;
}

describe.each(['base', 'production', 'hpa'])('the %s render', (name) => {
  const docs = () => rendered.get(name)!;

  it('is valid against the Kubernetes and CRD schemas, strictly', () => {
    const validate = kubernetesValidator();
    const problems = docs().flatMap((doc) => validate(doc).map((problem) => `${doc.kind}/${doc.metadata.name}: ${problem}`));
    expect(problems).toEqual([]);
    expect(docs().length).toBeGreaterThan(10);
  });

  it('runs api, scheduler and worker from the image with probes on /health and /ready and resource requests', () => {
    const deployments = byKind(docs(), 'Deployment');
    expect(deployments.map((doc) => doc.metadata.name).sort()).toEqual(['workfleet-api', 'workfleet-scheduler', 'workfleet-worker']);
    for (const deployment of deployments) {
      const spec = podSpec(deployment);
      const [container] = spec.containers;
      const role = deployment.metadata.name.replace('workfleet-', '');
      expect(container!.args?.[0], deployment.metadata.name).toBe(role);
      const portName = role === 'api' ? 'http' : 'metrics';
      const port = container!.ports?.find((candidate) => candidate.name === portName);
      expect(port?.containerPort).toBe(role === 'api' ? 8080 : 9464);
      const env = containerEnv(docs(), container!);
      expect(Number(env[role === 'api' ? 'API_PORT' : 'METRICS_PORT'])).toBe(port!.containerPort);
      const probe = (kind: string) => (container![kind] as { httpGet: { path: string; port: string } } | undefined)?.httpGet;
      expect(probe('livenessProbe')).toEqual({ path: '/health', port: portName });
      expect(probe('readinessProbe')).toEqual({ path: '/ready', port: portName });
      expect(probe('startupProbe')).toEqual({ path: '/health', port: portName });
      const requests = (container!.resources as { requests?: Record<string, unknown> }).requests;
      expect(requests?.cpu && requests.memory, `${deployment.metadata.name} requests`).toBeTruthy();
      expect((spec.securityContext as Json).runAsNonRoot).toBe(true);
      expect((container!.securityContext as Json).allowPrivilegeEscalation).toBe(false);
    }
  });

  it('gives every process a configuration that workfleet accepts in production', () => {
    const known = knownSettings();
    for (const deployment of byKind(docs(), 'Deployment')) {
      const env = containerEnv(docs(), podSpec(deployment).containers[0]!);
      expect(
        Object.keys(env).filter((key) => !known.has(key)),
        `${deployment.metadata.name}: unknown settings`,
      ).toEqual([]);
      const config = loadConfig(env);
      expect(config.env).toBe('production');
      expect(config.api.authEnabled).toBe(true);
    }
  });

  it('lets a worker drain within its pod grace period', () => {
    const worker = find(docs(), 'Deployment', 'workfleet-worker');
    const env = containerEnv(docs(), podSpec(worker).containers[0]!);
    const config = loadConfig(env);
    // Hand-back and closing connections need a few seconds after the grace runs out.
    expect(podSpec(worker).terminationGracePeriodSeconds! * 1000).toBeGreaterThanOrEqual(config.worker.shutdownGraceMs + 5_000);
    expect(config.worker.handlers).toMatch(/^\/app\/dist\/.+\.js$/);
  });

  it('covers every role with a disruption budget and every Service with pods and named ports', () => {
    for (const deployment of byKind(docs(), 'Deployment')) {
      const budgets = byKind(docs(), 'PodDisruptionBudget').filter((pdb) => matches(pdb.spec!.selector as Json, podLabels(deployment)));
      expect(budgets.length, deployment.metadata.name).toBe(1);
    }
    for (const service of byKind(docs(), 'Service')) {
      const selector = service.spec!.selector as Record<string, string>;
      const targets = byKind(docs(), 'Deployment').filter((deployment) => matches({ matchLabels: selector }, podLabels(deployment)));
      expect(targets.length, service.metadata.name).toBe(1);
      for (const port of service.spec!.ports as Array<{ targetPort: string }>) {
        expect(podSpec(targets[0]!).containers[0]!.ports!.map((candidate) => candidate.name)).toContain(port.targetPort);
      }
    }
  });

  it('lets traffic reach only the API; schedulers and workers only take scrapes from the monitoring namespace', () => {
    const policies = byKind(docs(), 'NetworkPolicy');
    for (const deployment of byKind(docs(), 'Deployment')) {
      const labels = podLabels(deployment);
      const applying = policies.filter((policy) => matches(policy.spec!.podSelector as Json, labels));
      expect(
        applying.some((policy) => (policy.spec!.policyTypes as string[]).includes('Ingress')),
        `${deployment.metadata.name} is isolated`,
      ).toBe(true);
      const rules = applying.flatMap((policy) => (policy.spec!.ingress as Array<{ from?: Array<Json>; ports?: Array<{ port: number }> }> | undefined) ?? []);
      const open = rules.filter((rule) => !rule.from || rule.from.length === 0);
      if (deployment.metadata.name === 'workfleet-api') {
        expect(open.flatMap((rule): Array<number | string> => rule.ports?.map((port) => port.port) ?? ['any'])).toEqual([8080]);
      } else {
        expect(open, `${deployment.metadata.name} open to all`).toEqual([]);
        for (const rule of rules) {
          expect(rule.from).toEqual([{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }]);
          expect(rule.ports?.map((port) => port.port)).toEqual([9464]);
        }
      }
    }
  });
});

describe('the production overlay', () => {
  const docs = () => rendered.get('production')!;

  it('runs a pinned image in its own namespace under the restricted pod security standard', () => {
    for (const deployment of byKind(docs(), 'Deployment')) {
      expect(deployment.metadata.namespace).toBe('workfleet');
      expect(podSpec(deployment).containers[0]!.image).toMatch(/^[^:]+\/[^:]+:\d+\.\d+\.\d+$/);
    }
    expect(find(docs(), 'Namespace', 'workfleet').metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  it('scales workers with KEDA on waiting and prioritized jobs, and leaves their count to it', () => {
    const [scaled] = byKind(docs(), 'ScaledObject');
    const spec = scaled!.spec as { scaleTargetRef: { name: string }; minReplicaCount: number; maxReplicaCount: number; triggers: Array<{ type: string; metadata: Record<string, string> }> };
    expect(spec.scaleTargetRef.name).toBe('workfleet-worker');
    expect(spec.minReplicaCount).toBeGreaterThanOrEqual(1);
    expect(spec.maxReplicaCount).toBeGreaterThan(spec.minReplicaCount);
    const trigger = spec.triggers.find((candidate) => candidate.type === 'prometheus')!;
    expect(promqlProblems(trigger.metadata.query!, metricCatalog())).toEqual([]);
    expect(trigger.metadata.query).toMatch(/workfleet_queue_jobs\{[^}]*state=~"waiting\|prioritized"/);
    expect(trigger.metadata.query).toContain('namespace="workfleet"');
    expect(Number(trigger.metadata.threshold)).toBeGreaterThan(0);
    expect(find(docs(), 'Deployment', 'workfleet-worker').spec!.replicas).toBeUndefined();
    expect(byKind(docs(), 'HorizontalPodAutoscaler')).toEqual([]);
  });

  it('has ServiceMonitors that reach every process, the API with a key', () => {
    const monitors = byKind(docs(), 'ServiceMonitor');
    for (const service of byKind(docs(), 'Service')) {
      const monitor = monitors.find((candidate) => matches(candidate.spec!.selector as Json, service.metadata.labels ?? {}));
      expect(monitor, service.metadata.name).toBeDefined();
      const endpoints = monitor!.spec!.endpoints as Array<{ port: string; path: string; authorization?: { credentials: { name: string } } }>;
      expect((service.spec!.ports as Array<{ name: string }>).map((port) => port.name)).toContain(endpoints[0]!.port);
      expect(endpoints[0]!.path).toBe('/metrics');
      if (service.metadata.name === 'workfleet-api') expect(endpoints[0]!.authorization?.credentials.name).toBe('workfleet-metrics');
    }
  });

  it('alerts with the same rules as deploy/prometheus/alerts.yml', () => {
    const [rule] = byKind(docs(), 'PrometheusRule');
    const [file] = readYaml(join(DEPLOY, 'prometheus', 'alerts.yml'));
    expect((rule!.spec as Json).groups).toEqual(file!.groups);
  });
});

describe('the HPA alternative', () => {
  it('scales the worker Deployment on the external backlog metric instead of KEDA', () => {
    const docs = rendered.get('hpa')!;
    expect(byKind(docs, 'ScaledObject')).toEqual([]);
    const [hpa] = byKind(docs, 'HorizontalPodAutoscaler');
    expect((hpa!.spec as { scaleTargetRef: { name: string } }).scaleTargetRef.name).toBe('workfleet-worker');
    expect(find(docs, 'Deployment', 'workfleet-worker').spec!.replicas).toBeUndefined();
  });
});

describe('the strict schema check itself', () => {
  it('rejects a misspelt field, a wrong type and a missing required field', () => {
    const validate = kubernetesValidator();
    const deployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'x' },
      spec: { replica: 2, selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'i', ports: [{ containerPort: 'http' }] }] } } },
    };
    expect(validate(deployment).join('\n')).toMatch(/additional properties: replica/);
    expect(validate(deployment).join('\n')).toMatch(/containerPort must be integer/);
    expect(validate({ apiVersion: 'keda.sh/v1alpha1', kind: 'ScaledObject', metadata: { name: 'x' }, spec: { triggers: [] } }).join('\n')).toMatch(/scaleTargetRef/);
    expect(validate({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: { ports: [{ port: 80, targetPort: 'http' }] } })).toEqual([]);
  });
});
