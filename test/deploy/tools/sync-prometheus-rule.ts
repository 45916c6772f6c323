/**
 * Writes deploy/k8s/components/prometheus-operator/prometheusrule.yaml from
 * deploy/prometheus/alerts.yml, so compose and Kubernetes alert on the same rules. test/deploy
 * fails when the two differ; run this after editing the alerts:
 *
 *   node test/deploy/tools/sync-prometheus-rule.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';

const deploy = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'deploy');
const rules = parse(readFileSync(join(deploy, 'prometheus', 'alerts.yml'), 'utf8')) as { groups: unknown[] };
const resource = { apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', metadata: { name: 'workfleet' }, spec: { groups: rules.groups } };
const header = '# Generated from deploy/prometheus/alerts.yml by test/deploy/tools/sync-prometheus-rule.ts: edit that file, then run\n# `node test/deploy/tools/sync-prometheus-rule.ts`.\n';
writeFileSync(join(deploy, 'k8s', 'components', 'prometheus-operator', 'prometheusrule.yaml'), header + stringify(resource, { lineWidth: 0 }));
