/** The vocabulary of input schemas: JSON Schema draft 2020-12, less what input-schema-check.ts refuses. */

export const DRAFT_2020_12 = 'https://json-schema.org/draft/2020-12/schema';

export type Shape =
  | 'schema'
  | 'schemaList'
  | 'schemaMap'
  | 'patternSchemaMap'
  | 'type'
  | 'anything'
  | 'list'
  | 'number'
  | 'positiveNumber'
  | 'count'
  | 'text'
  | 'flag'
  | 'pattern'
  | 'names'
  | 'namesMap'
  | 'ref'
  | 'anchor'
  | 'dialect';

/** Every keyword an input schema may use, with the shape of its value. */
export const KEYWORDS: Readonly<Record<string, Shape>> = {
  $schema: 'dialect',
  $ref: 'ref',
  $defs: 'schemaMap',
  $anchor: 'anchor',
  $comment: 'text',
  allOf: 'schemaList',
  anyOf: 'schemaList',
  oneOf: 'schemaList',
  not: 'schema',
  if: 'schema',
  then: 'schema',
  else: 'schema',
  dependentSchemas: 'schemaMap',
  prefixItems: 'schemaList',
  items: 'schema',
  contains: 'schema',
  properties: 'schemaMap',
  patternProperties: 'patternSchemaMap',
  additionalProperties: 'schema',
  propertyNames: 'schema',
  type: 'type',
  enum: 'list',
  const: 'anything',
  multipleOf: 'positiveNumber',
  maximum: 'number',
  exclusiveMaximum: 'number',
  minimum: 'number',
  exclusiveMinimum: 'number',
  maxLength: 'count',
  minLength: 'count',
  pattern: 'pattern',
  maxItems: 'count',
  minItems: 'count',
  uniqueItems: 'flag',
  maxContains: 'count',
  minContains: 'count',
  maxProperties: 'count',
  minProperties: 'count',
  required: 'names',
  dependentRequired: 'namesMap',
  // Annotations: kept, never checked against the input (format too, as draft 2020-12 says by default).
  title: 'text',
  description: 'text',
  default: 'anything',
  deprecated: 'flag',
  readOnly: 'flag',
  writeOnly: 'flag',
  examples: 'list',
  format: 'text',
  contentEncoding: 'text',
  contentMediaType: 'text',
  contentSchema: 'schema',
};

export const UNSUPPORTED: Readonly<Record<string, string>> = {
  $id: 'input schemas are self-contained: leave out $id and refer to "#/$defs/<name>"',
  $dynamicRef: '$dynamicRef is not supported: use $ref',
  $dynamicAnchor: '$dynamicAnchor is not supported: use $anchor',
  $recursiveRef: '$recursiveRef (draft 2019-09) is not supported: use $ref',
  $recursiveAnchor: '$recursiveAnchor (draft 2019-09) is not supported: use $anchor',
  $vocabulary: '$vocabulary belongs in meta-schemas, not in an input schema',
  unevaluatedProperties: 'unevaluatedProperties is not supported: use additionalProperties',
  unevaluatedItems: 'unevaluatedItems is not supported: use items',
  definitions: 'definitions is draft 7: use $defs (draft 2020-12)',
  dependencies: 'dependencies is draft 7: use dependentRequired or dependentSchemas',
  additionalItems: 'additionalItems is draft 7: use prefixItems and items (draft 2020-12)',
};

export const TYPES = new Set(['null', 'boolean', 'object', 'array', 'number', 'integer', 'string']);
/** Subschemas that apply to the same value as their parent (a `$ref` cycle through them never ends). */
export const IN_PLACE = new Set(['allOf', 'anyOf', 'oneOf', 'not', 'if', 'then', 'else', 'dependentSchemas']);
