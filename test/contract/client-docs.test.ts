import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as client from '../../lib/client/index.js';
import { packageRoot } from '../../lib/runtime/package-root.js';

/**
 * docs/PRODUCERS.md is the contract producers in other codebases read instead of our source:
 * its start-request table must match openapi.json, and its tables must name every client method
 * and error class that workfleet/client exports.
 */

const doc = readFileSync(join(packageRoot(), 'docs', 'PRODUCERS.md'), 'utf8');
const openapi = JSON.parse(readFileSync(join(packageRoot(), 'openapi.json'), 'utf8')) as {
  paths: Record<string, Record<string, { requestBody: { content: Record<string, { schema: { properties: Record<string, unknown>; required: string[] } }> } }>>;
};

/** The rows of the first table after a heading: first cell, and whether its "Required" cell says yes. */
function tableAfter(heading: string): Array<{ first: string; cells: string[] }> {
  const start = doc.indexOf(`\n${heading}\n`);
  expect(start, heading).toBeGreaterThan(-1);
  const lines = doc.slice(start).split('\n').slice(2);
  const table = lines.slice(lines.findIndex((line) => line.startsWith('|')));
  const rows = table
    .slice(
      0,
      table.findIndex((line) => !line.startsWith('|')),
    )
    .slice(2);
  return rows.map((row) => {
    const cells = row
      .split('|')
      .slice(1, -1)
      .map((cell) => cell.trim());
    return { first: cells[0]!.replace(/`/g, ''), cells };
  });
}

describe('docs/PRODUCERS.md', () => {
  it('documents exactly the start request fields of openapi.json, with the same required ones', () => {
    const schema = openapi.paths['/v1/cases']!.post!.requestBody.content['application/json']!.schema;
    const rows = tableAfter('## The start request');
    expect(rows.map((row) => row.first).sort()).toEqual(Object.keys(schema.properties).sort());
    expect(
      rows
        .filter((row) => row.cells[2] === 'yes')
        .map((row) => row.first)
        .sort(),
    ).toEqual([...schema.required].sort());
  });

  it('names every method of WorkfleetClient', () => {
    const methods = Object.getOwnPropertyNames(client.WorkfleetClient.prototype).filter((name) => name !== 'constructor' && !['call', 'send', 'waitFor'].includes(name));
    expect(methods.length).toBeGreaterThanOrEqual(10);
    const documented = tableAfter('## With TypeScript: `workfleet/client`').map((row) => row.first);
    for (const method of methods)
      expect(
        documented.some((cell) => cell.startsWith(`${method}(`) || cell.includes(`, ${method}(`)),
        method,
      ).toBe(true);
  });

  it('lists every error class the client exports, each with its code', () => {
    const classes = Object.entries(client)
      .filter(([, value]) => typeof value === 'function' && (value === client.WorkfleetError || (value as { prototype?: unknown }).prototype instanceof client.WorkfleetError))
      .map(([name]) => name)
      .filter((name) => name !== 'WorkfleetError');
    expect(classes.length).toBeGreaterThanOrEqual(12);
    const documented = doc
      .split('\n')
      .filter((line) => line.startsWith('| `'))
      .map((line) => line.split('|')[1]!.trim().replace(/`/g, ''));
    for (const name of classes) expect(documented, name).toContain(name);
    for (const code of Object.values(client.CLIENT_ERROR_CODES)) expect(doc, code).toContain(`\`${code}\``);
  });
});
