import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildServer } from '../api/server.js';
import { loadConfig } from '../config/load.js';
import { configTable } from '../config/table.js';
import { createLogger } from '../lib/obs/logger.js';
import { Metrics } from '../lib/obs/metrics.js';
import { systemClock } from '../lib/ports/clock.js';
import { WorkflowDefinitionSchema } from '../lib/core/definition.js';
import { packageRoot } from '../lib/runtime/package-root.js';

/**
 * Writes the generated files that are committed: the README's configuration table (between its
 * markers), the published JSON Schema of workflow definitions and openapi.json. Tests fail
 * when they drift.
 */
const root = packageRoot();

const readmePath = join(root, 'README.md');
const readme = readFileSync(readmePath, 'utf8');
const start = '<!-- config-table:start -->';
const end = '<!-- config-table:end -->';
const from = readme.indexOf(start);
const to = readme.indexOf(end);
if (from < 0 || to < from) throw new Error(`README.md lacks the ${start} … ${end} markers`);
writeFileSync(readmePath, `${readme.slice(0, from + start.length)}\n${configTable()}\n${readme.slice(to)}`);

writeFileSync(join(root, 'schemas', 'workflow.schema.json'), `${JSON.stringify(WorkflowDefinitionSchema, null, 2)}\n`);
// The OpenAPI document comes from the route schemas; no service is called to produce it.
const unused = {} as never;
const app = await buildServer({
  config: loadConfig({}),
  logger: createLogger({ level: 'silent', name: 'generate' }),
  metrics: new Metrics('generate'),
  clock: systemClock,
  cases: unused,
  bulk: unused,
  workflows: unused,
  store: unused,
  keys: unused,
  schedules: unused,
  fleet: { monitor: { queueNames: async () => [] } as never, queues: unused },
  checks: [],
});
writeFileSync(join(root, 'openapi.json'), `${JSON.stringify(app.swagger(), null, 2)}\n`);
await app.close();
process.stdout.write('generated README.md configuration table, schemas/workflow.schema.json and openapi.json\n');
