import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateOpenApi } from '../api/generate-openapi.js';
import { loadConfig } from '../config/load.js';
import { configTable } from '../config/table.js';
import { WorkflowDefinitionSchema } from '../lib/core/definition.js';
import { errorCodeTable } from '../lib/core/error-codes.js';
import { packageRoot } from '../lib/runtime/package-root.js';

/**
 * Writes the generated files that are committed: the README's configuration table and the
 * error-code table of docs/PRODUCERS.md (each between its markers), the published JSON Schema
 * of workflow definitions and openapi.json. Tests fail when they drift.
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

const producersPath = join(root, 'docs', 'PRODUCERS.md');
const producers = readFileSync(producersPath, 'utf8');
const codesStart = '<!-- error-codes:start -->';
const codesEnd = '<!-- error-codes:end -->';
const codesFrom = producers.indexOf(codesStart);
const codesTo = producers.indexOf(codesEnd);
if (codesFrom < 0 || codesTo < codesFrom) throw new Error(`docs/PRODUCERS.md lacks the ${codesStart} … ${codesEnd} markers`);
writeFileSync(producersPath, `${producers.slice(0, codesFrom + codesStart.length)}\n${errorCodeTable()}\n${producers.slice(codesTo)}`);

writeFileSync(join(root, 'schemas', 'workflow.schema.json'), `${JSON.stringify(WorkflowDefinitionSchema, null, 2)}\n`);
// The OpenAPI document comes from the route schemas; no service is called to produce it.
writeFileSync(join(root, 'openapi.json'), `${JSON.stringify(await generateOpenApi(loadConfig({})), null, 2)}\n`);
process.stdout.write('generated README.md configuration table, docs/PRODUCERS.md error codes, schemas/workflow.schema.json and openapi.json\n');
