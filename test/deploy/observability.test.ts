import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEPLOY, expandGrafanaVariables, metricCatalog, parsePromql, promqlProblems, readYaml, ROOT, type Json } from './support.js';

/**
 * The Grafana dashboard and the Prometheus alerts: every query parses with Prometheus's grammar
 * and names only metrics and labels that workfleet really exposes (the live registry of
 * lib/obs/metrics.ts), so a renamed metric fails here instead of leaving an empty panel or an
 * alert that can never fire.
 */

const catalog = metricCatalog();

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  targets?: Array<{ expr: string; refId: string; datasource?: { uid: string } }>;
  datasource?: { uid: string };
}

const dashboards = readdirSync(join(DEPLOY, 'grafana', 'dashboards'))
  .filter((name) => name.endsWith('.json'))
  .map((name) => ({
    name,
    json: JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'dashboards', name), 'utf8')) as Json & {
      uid: string;
      panels: Panel[];
      templating: { list: Array<Json & { name: string; type: string; query: unknown }> };
    },
  }));

interface Rule {
  alert?: string;
  record?: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}
const [rulesFile] = readYaml(join(DEPLOY, 'prometheus', 'alerts.yml')) as Array<{ groups: Array<{ name: string; rules: Rule[] }> }>;
const rules = rulesFile!.groups.flatMap((group) => group.rules);

describe('the metric catalogue', () => {
  it('is read from the real registry, stuck-case gauge included', () => {
    for (const name of [
      'workfleet_http_request_duration_seconds_bucket',
      'workfleet_queue_jobs',
      'workfleet_step_duration_seconds_count',
      'workfleet_breaker_state',
      'workfleet_cases_stuck',
      'process_start_time_seconds',
    ]) {
      expect(catalog.has(name), name).toBe(true);
    }
    expect(catalog.get('workfleet_queue_jobs')!.labels).toEqual(new Set(['process', 'queue', 'state']));
  });

  it('makes the query check bite: unknown metrics, unknown labels and syntax errors are reported', () => {
    expect(promqlProblems('rate(workfleet_nope_total[5m])', catalog)).toEqual(['unknown metric workfleet_nope_total']);
    expect(promqlProblems('sum(workfleet_queue_jobs{queu="default"})', catalog)).toEqual(['workfleet_queue_jobs has no label queu']);
    expect(promqlProblems('sum(rate(workfleet_step_retries_total[5m])', catalog).join()).toMatch(/syntax error/);
    // Default metrics keep their standard names, shared with every other service: scoped or refused.
    expect(promqlProblems('sum(process_resident_memory_bytes)', catalog)).toEqual(["process_resident_memory_bytes is not workfleet's own: select it by its process label"]);
    expect(promqlProblems('sum(process_resident_memory_bytes{process=~"api|worker"})', catalog)).toEqual([]);
    expect(promqlProblems('max(go_goroutines{process="api"})', catalog)).toEqual(['unknown metric go_goroutines']);
    expect(parsePromql('histogram_quantile(0.9, sum by (le) (rate(workfleet_step_duration_seconds_bucket[5m])))').selectors).toEqual([{ metric: 'workfleet_step_duration_seconds_bucket', labels: [] }]);
  });
});

describe.each(dashboards)('the Grafana dashboard $name', ({ json }) => {
  const panels = json.panels.filter((panel) => panel.type !== 'row');

  it('queries only metrics and labels workfleet exposes, in valid PromQL', () => {
    const problems = panels.flatMap((panel) =>
      (panel.targets ?? []).flatMap((target) => promqlProblems(expandGrafanaVariables(target.expr), catalog).map((problem) => `${panel.title} ${target.refId}: ${problem}`)),
    );
    expect(problems).toEqual([]);
    for (const variable of json.templating.list.filter((candidate) => candidate.type === 'query')) {
      const query = (variable.query as { query: string }).query;
      const inner = /^label_values\((\w+),\s*(\w+)\)$/.exec(query);
      expect(inner, variable.name).not.toBeNull();
      expect(catalog.get(inner![1]!)?.labels.has(inner![2]!), query).toBe(true);
    }
  });

  it('covers what issue 7 asks for: API RED, queue depth, step durations, retries, breakers, stuck cases', () => {
    const queries = panels.flatMap((panel) => (panel.targets ?? []).map((target) => target.expr)).join('\n');
    for (const metric of [
      'workfleet_http_request_duration_seconds_count',
      'workfleet_http_request_duration_seconds_bucket',
      'workfleet_queue_jobs',
      'workfleet_step_duration_seconds_bucket',
      'workfleet_step_retries_total',
      'workfleet_breaker_state',
      'workfleet_cases_stuck',
    ]) {
      expect(queries, metric).toContain(metric);
    }
    expect(queries).toMatch(/status=~"5\.\."/);
  });

  it('is a well-formed dashboard: unique ids, panels on the 24-column grid without overlap, one datasource variable', () => {
    expect(json.uid).toMatch(/^[\w-]{1,40}$/);
    const ids = json.panels.map((panel) => panel.id);
    expect(new Set(ids).size).toBe(ids.length);
    const cells = new Set<string>();
    for (const panel of json.panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, panel.title).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++) {
        for (let column = x; column < x + w; column++) {
          const cell = `${row}:${column}`;
          expect(cells.has(cell), `${panel.title} overlaps at ${cell}`).toBe(false);
          cells.add(cell);
        }
      }
    }
    const datasource = json.templating.list.find((variable) => variable.type === 'datasource');
    expect(datasource?.query).toBe('prometheus');
    for (const panel of panels) {
      expect(panel.datasource?.uid, panel.title).toBe(`\${${datasource!.name}}`);
      for (const target of panel.targets ?? []) expect(target.datasource?.uid).toBe(`\${${datasource!.name}}`);
    }
  });
});

describe('the Prometheus alert rules', () => {
  const operations = readFileSync(join(ROOT, 'docs', 'OPERATIONS.md'), 'utf8');
  // GitHub's heading anchors: lower case, punctuation dropped, spaces to dashes.
  const anchors = new Set(
    [...operations.matchAll(/^#{1,6} (.+)$/gm)].map((match) =>
      match[1]!
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N} _-]/gu, '')
        .replace(/ /g, '-'),
    ),
  );

  it('parse, and select only metrics and labels workfleet exposes', () => {
    expect(rules.length).toBeGreaterThanOrEqual(8);
    const problems = rules.flatMap((rule) => promqlProblems(rule.expr, catalog).map((problem) => `${rule.alert}: ${problem}`));
    expect(problems).toEqual([]);
  });

  it('are complete alerts: unique names, a duration, a severity, a summary and a runbook section that exists', () => {
    const names = rules.map((rule) => rule.alert);
    expect(new Set(names).size).toBe(names.length);
    for (const rule of rules) {
      expect(rule.alert, rule.expr).toMatch(/^Workfleet[A-Z]\w+$/);
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      expect(['page', 'ticket']).toContain(rule.labels?.severity);
      expect(rule.annotations?.summary, rule.alert).toBeTruthy();
      const anchor = /^docs\/OPERATIONS\.md#([\w-]+)$/.exec(rule.annotations?.runbook ?? '')?.[1];
      expect(anchor, `${rule.alert} runbook`).toBe(rule.alert!.toLowerCase());
      expect(anchors.has(anchor!), `docs/OPERATIONS.md has a section ${rule.alert}`).toBe(true);
    }
  });

  it('page someone for stuck cases, a missing scheduler or workers, an unconsumed or growing backlog, and failing API requests', () => {
    const paging = rules
      .filter((rule) => rule.labels?.severity === 'page')
      .map((rule) => rule.expr)
      .join('\n');
    for (const metric of ['workfleet_cases_stuck', 'process="scheduler"', 'process="worker"', 'workfleet_queue_jobs', 'workfleet_http_request_duration_seconds_count', 'workfleet_cases_finished_total']) {
      expect(paging, metric).toContain(metric);
    }
  });
});
