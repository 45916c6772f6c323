import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { WorkflowDefinitionSchema } from '../../lib/core/definition.js';

describe('published JSON Schema', () => {
  it('is the schema the validator uses (regenerate with npm run generate)', () => {
    const published = JSON.parse(readFileSync(new URL('../../schemas/workflow.schema.json', import.meta.url), 'utf8')) as unknown;
    expect(published).toEqual(JSON.parse(JSON.stringify(WorkflowDefinitionSchema)));
  });
});
