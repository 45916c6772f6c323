import type { ValidationIssue } from './errors.js';
import { segmentsToPath, segmentsToPointer, type PathSegment } from './paths.js';
import { DRAFT_2020_12, IN_PLACE, KEYWORDS, TYPES, UNSUPPORTED } from './input-schema-keywords.js';
import { unsafePatternReason } from './regex-safety.js';
import { didYouMean } from './suggest.js';

/**
 * A workflow's `input:` is a JSON Schema (draft 2020-12) for the case input. This file checks a
 * declared schema when the definition is applied, so that a bad schema is a definition error
 * rather than a surprise at the first start, and gathers what checking inputs needs (reference
 * targets, compiled patterns). Input schemas are self-contained: no `$id`, no remote `$ref`; the
 * dynamic and unevaluated keywords are refused rather than half-supported. Every limit here
 * bounds the work one start can cause (see input-schema.ts).
 */

export const INPUT_SCHEMA_LIMITS = {
  /** The schema as JSON. */
  maxBytes: 64 * 1024,
  /** Nesting of subschemas. */
  maxDepth: 32,
  /** Subschemas in one schema. */
  maxSubschemas: 2_000,
  /** Length of one `pattern` or `patternProperties` key. */
  maxPatternLength: 500,
  /** Keyword checks one input may cost; past it the input is refused, not checked further. */
  maxChecks: 200_000,
  /** Problems reported for one input. */
  maxIssues: 20,
} as const;

/** What checking inputs needs from a schema that passed. */
export interface InputSchemaParts {
  /** Targets of every `$ref`, by the reference as written. */
  refs: Map<string, unknown>;
  /** Every `pattern` and `patternProperties` key, compiled once. */
  patterns: Map<string, RegExp>;
}

const isObject = (value: unknown): value is Record<string, unknown> => value !== null && typeof value === 'object' && !Array.isArray(value);

/**
 * Checks a declared input schema; `at` is where it sits in the definition (`input`). Returns the
 * problems, each with its path, and the parts a validator needs.
 */
export function checkInputSchema(schema: unknown, at: PathSegment[] = ['input']): { issues: ValidationIssue[]; parts: InputSchemaParts } {
  const issues: ValidationIssue[] = [];
  const parts: InputSchemaParts = { refs: new Map(), patterns: new Map() };
  const problem = (segments: readonly PathSegment[], message: string): void => {
    issues.push({ path: segmentsToPath([...at, ...segments]), message });
  };

  let text: string;
  try {
    text = JSON.stringify(schema);
  } catch {
    return { issues: [{ path: segmentsToPath(at), message: 'is not JSON' }], parts };
  }
  if (text.length > INPUT_SCHEMA_LIMITS.maxBytes) return { issues: [{ path: segmentsToPath(at), message: `is larger than ${INPUT_SCHEMA_LIMITS.maxBytes} bytes as JSON` }], parts };
  if (!isObject(schema)) return { issues: [{ path: segmentsToPath(at), message: 'must be a JSON Schema object, like { "type": "object", "required": ["sku"] }' }], parts };
  if (schema.type !== undefined && !(schema.type === 'object' || (Array.isArray(schema.type) && schema.type.includes('object')))) {
    problem(['type'], 'the case input is a JSON object, so the schema must allow "object"');
  }

  /** Subschemas by JSON pointer within the schema, for `$ref`; anchors by name. */
  const locations = new Map<string, unknown>();
  const anchors = new Map<string, unknown>();
  const references: Array<{ ref: string; segments: PathSegment[]; from: string }> = [];
  /** For the cycle check: the subschemas applying to the same value, by pointer. */
  const inPlace = new Map<string, string[]>();
  let subschemas = 0;

  const compilePattern = (pattern: string, segments: PathSegment[]) => {
    if (pattern.length > INPUT_SCHEMA_LIMITS.maxPatternLength) return problem(segments, `is longer than ${INPUT_SCHEMA_LIMITS.maxPatternLength} characters`);
    try {
      const regex = new RegExp(pattern, 'u');
      const unsafe = unsafePatternReason(pattern);
      if (unsafe) problem(segments, unsafe);
      else parts.patterns.set(pattern, regex);
    } catch (error) {
      problem(segments, `is not a regular expression: ${(error as Error).message}`);
    }
  };

  const walk = (node: unknown, segments: PathSegment[], pointer: string, depth: number): void => {
    if (++subschemas > INPUT_SCHEMA_LIMITS.maxSubschemas) {
      if (subschemas === INPUT_SCHEMA_LIMITS.maxSubschemas + 1) problem([], `has more than ${INPUT_SCHEMA_LIMITS.maxSubschemas} subschemas`);
      return;
    }
    if (depth > INPUT_SCHEMA_LIMITS.maxDepth) return problem(segments, `nests subschemas deeper than ${INPUT_SCHEMA_LIMITS.maxDepth} levels`);
    locations.set(pointer, node);
    if (typeof node === 'boolean') return;
    if (!isObject(node)) return problem(segments, 'must be a schema: an object, true or false');
    const sameValue: string[] = [];
    inPlace.set(pointer, sameValue);
    const child = (value: unknown, key: PathSegment, keyword: string, ...more: PathSegment[]) => {
      const childPointer = pointer + segmentsToPointer([key, ...more]);
      if (IN_PLACE.has(keyword)) sameValue.push(childPointer);
      walk(value, [...segments, key, ...more], childPointer, depth + 1);
    };
    for (const [keyword, value] of Object.entries(node)) {
      const here = [...segments, keyword];
      if (keyword.startsWith('x-')) continue;
      const unsupported = UNSUPPORTED[keyword];
      if (unsupported) {
        problem(here, unsupported);
        continue;
      }
      const shape = KEYWORDS[keyword];
      if (shape === undefined) {
        problem(here, `unknown keyword "${keyword}"${didYouMean(keyword, Object.keys(KEYWORDS))} (extensions start with "x-")`);
        continue;
      }
      switch (shape) {
        case 'schema':
          child(value, keyword, keyword);
          break;
        case 'schemaList':
          if (!Array.isArray(value) || value.length === 0) problem(here, 'must be a non-empty array of schemas');
          else value.forEach((item, index) => child(item, keyword, keyword, index));
          break;
        case 'schemaMap':
        case 'patternSchemaMap':
          if (!isObject(value)) problem(here, 'must be an object of schemas');
          else
            for (const [name, item] of Object.entries(value)) {
              if (shape === 'patternSchemaMap') compilePattern(name, [...here, name]);
              child(item, keyword, keyword, name);
            }
          break;
        case 'type': {
          const types = Array.isArray(value) ? value : [value];
          if (types.length === 0 || types.some((type) => typeof type !== 'string' || !TYPES.has(type)) || new Set(types).size !== types.length) {
            problem(here, `must be one of ${[...TYPES].join(', ')}, or an array of them without repeats`);
          }
          break;
        }
        case 'anything':
          break;
        case 'list':
          if (!Array.isArray(value)) problem(here, 'must be an array');
          break;
        case 'number':
          if (typeof value !== 'number') problem(here, 'must be a number');
          break;
        case 'positiveNumber':
          if (typeof value !== 'number' || value <= 0) problem(here, 'must be a number greater than 0');
          break;
        case 'count':
          if (!Number.isSafeInteger(value) || (value as number) < 0) problem(here, 'must be a whole number, 0 or more');
          break;
        case 'text':
          if (typeof value !== 'string') problem(here, 'must be a string');
          break;
        case 'flag':
          if (typeof value !== 'boolean') problem(here, 'must be true or false');
          break;
        case 'pattern':
          if (typeof value !== 'string') problem(here, 'must be a string');
          else compilePattern(value, here);
          break;
        case 'names':
          if (!Array.isArray(value) || value.some((name) => typeof name !== 'string') || new Set(value).size !== value.length) {
            problem(here, 'must be an array of distinct field names');
          }
          break;
        case 'namesMap':
          if (!isObject(value) || Object.values(value).some((names) => !Array.isArray(names) || names.some((name) => typeof name !== 'string'))) {
            problem(here, 'must map field names to arrays of field names');
          }
          break;
        case 'ref':
          if (typeof value !== 'string') problem(here, 'must be a string');
          else references.push({ ref: value, segments: here, from: pointer });
          break;
        case 'anchor':
          if (typeof value !== 'string' || !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(value)) problem(here, 'must be a name like "address"');
          else if (anchors.has(value)) problem(here, `anchor "${value}" is declared twice`);
          else anchors.set(value, node);
          break;
        case 'dialect':
          if (depth > 0) problem(here, '$schema belongs at the top of the schema');
          else if (value !== DRAFT_2020_12 && value !== `${DRAFT_2020_12}#`) problem(here, `input schemas are draft 2020-12: "${DRAFT_2020_12}"`);
          break;
      }
    }
  };
  walk(schema, [], '', 0);

  const pointerOf = new Map<unknown, string>([...locations].map(([pointer, node]) => [node, pointer]));
  for (const { ref, segments, from } of references) {
    let target: unknown;
    if (ref === '#' || ref.startsWith('#/')) {
      let pointer: string;
      try {
        pointer = decodeURIComponent(ref.slice(1));
      } catch {
        pointer = ref.slice(1);
      }
      target = locations.get(pointer);
    } else if (ref.startsWith('#')) {
      target = anchors.get(ref.slice(1));
    } else {
      problem(segments, `"${ref}": only references inside this schema are supported, like "#/$defs/address"`);
      continue;
    }
    if (target === undefined) {
      problem(
        segments,
        `"${ref}" refers to no subschema of this schema${didYouMean(
          ref,
          [...locations.keys()].filter(Boolean).map((pointer) => `#${pointer}`),
        )}`,
      );
      continue;
    }
    parts.refs.set(ref, target);
    inPlace.get(from)?.push(pointerOf.get(target) ?? '');
  }

  const cycle = findInPlaceCycle(inPlace);
  if (cycle !== undefined) problem([], `$ref loops back to ${cycle === '' ? 'the top of the schema' : `"#${cycle}"`} without reading into the input, so checking would never end`);
  return { issues, parts };
}

/** A subschema that reaches itself through `$ref` and in-place keywords alone, by its pointer. */
function findInPlaceCycle(edges: ReadonlyMap<string, readonly string[]>): string | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (pointer: string): string | undefined => {
    const seen = state.get(pointer);
    if (seen === 'done') return undefined;
    if (seen === 'visiting') return pointer;
    state.set(pointer, 'visiting');
    for (const next of edges.get(pointer) ?? []) {
      const found = visit(next);
      if (found !== undefined) return found;
    }
    state.set(pointer, 'done');
    return undefined;
  };
  for (const pointer of edges.keys()) {
    const found = visit(pointer);
    if (found !== undefined) return found;
  }
  return undefined;
}
