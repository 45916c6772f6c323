import { canonicalJson } from './canonical-json.js';
import type { CompiledWorkflow } from './definition.js';
import { InputInvalidError, type ValidationIssue } from './errors.js';
import { checkInputSchema, INPUT_SCHEMA_LIMITS, type InputSchemaParts } from './input-schema-check.js';
import { segmentsToPath, segmentsToPointer, type PathSegment } from './paths.js';

/**
 * Checks a case input against its workflow's `input:` schema (JSON Schema draft 2020-12, the
 * keywords input-schema-check.ts accepts). An interpreter walks the schema: nothing is compiled
 * to code. Each keyword check counts against INPUT_SCHEMA_LIMITS.maxChecks, so no input can make
 * the check run long, whatever the schema's `anyOf`s and references multiply.
 */

/** A declared input schema, checked and prepared once per workflow version. */
export interface CompiledInputSchema {
  readonly schema: unknown;
  readonly parts: InputSchemaParts;
}

/** An issue about the case input: its path (`input.lines[0].sku`) and JSON pointer (`/input/lines/0/sku`). */
export interface InputIssue extends ValidationIssue {
  pointer: string;
}

/** Prepares a schema that passed `checkInputSchema` (the definition was validated). */
export function compileInputSchema(schema: unknown): CompiledInputSchema {
  const { issues, parts } = checkInputSchema(schema);
  if (issues.length > 0) throw new Error(`input schema was not validated: ${issues[0]?.path}: ${issues[0]?.message}`);
  return { schema, parts };
}

class OutOfChecks extends Error {}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Schema = boolean | Record<string, unknown>;

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function hasType(value: unknown, type: string): boolean {
  if (type === 'integer') return typeof value === 'number' && Number.isInteger(value);
  return typeOf(value) === type;
}

const show = (value: unknown): string => {
  const text = JSON.stringify(value) ?? 'undefined';
  return text.length > 60 ? `${text.slice(0, 57)}…` : text;
};

function isMultipleOf(value: number, divisor: number): boolean {
  const quotient = value / divisor;
  return Number.isFinite(quotient) && Math.abs(quotient - Math.round(quotient)) <= 1e-9 * Math.max(1, Math.abs(quotient));
}

/** Collects problems for one value. A probe only asks yes or no (a branch of anyOf, if, not): it stops at the first problem and spells out none. */
interface Sink {
  issues: InputIssue[];
  limit: number;
  probe?: true;
}

const PROBE_FAILURE: InputIssue = { path: '', pointer: '', message: '' };

class Checker {
  private checks = 0;

  constructor(private readonly parts: InputSchemaParts) {}

  private add(sink: Sink, at: readonly PathSegment[], message: string): void {
    if (sink.issues.length >= sink.limit) return;
    sink.issues.push(sink.probe ? PROBE_FAILURE : { path: segmentsToPath(at), pointer: segmentsToPointer(at), message });
  }

  private passes(schema: unknown, value: unknown, at: PathSegment[]): boolean {
    const sink: Sink = { issues: [], limit: 1, probe: true };
    this.check(schema, value, at, sink);
    return sink.issues.length === 0;
  }

  check(raw: unknown, value: unknown, at: PathSegment[], sink: Sink): void {
    if (++this.checks > INPUT_SCHEMA_LIMITS.maxChecks) throw new OutOfChecks();
    const schema = raw as Schema;
    if (schema === true) return;
    if (schema === false) return this.add(sink, at, 'is not allowed here');
    const full = () => sink.issues.length >= sink.limit;

    if (typeof schema.$ref === 'string') this.check(this.parts.refs.get(schema.$ref), value, at, sink);
    if (schema.type !== undefined) {
      const types = (Array.isArray(schema.type) ? schema.type : [schema.type]) as string[];
      if (!types.some((type) => hasType(value, type))) return this.add(sink, at, `must be ${types.join(' or ')}, not ${typeOf(value)}`);
    }
    if ('const' in schema && canonicalJson(schema.const) !== canonicalJson(value)) this.add(sink, at, `must be ${show(schema.const)}`);
    if (Array.isArray(schema.enum)) {
      const text = canonicalJson(value);
      if (!schema.enum.some((option) => canonicalJson(option) === text)) {
        this.add(sink, at, `must be one of ${schema.enum.slice(0, 8).map(show).join(', ')}${schema.enum.length > 8 ? ', …' : ''}`);
      }
    }
    if (full()) return;

    if (Array.isArray(schema.allOf)) for (const part of schema.allOf) this.check(part, value, at, sink);
    if (Array.isArray(schema.anyOf) && !schema.anyOf.some((part) => this.passes(part, value, at))) {
      this.add(sink, at, `matches none of the ${schema.anyOf.length} schemas in anyOf`);
    }
    if (Array.isArray(schema.oneOf)) {
      const matching = schema.oneOf.filter((part) => this.passes(part, value, at)).length;
      if (matching !== 1) this.add(sink, at, `must match exactly one of the ${schema.oneOf.length} schemas in oneOf, but matches ${matching}`);
    }
    if (schema.not !== undefined && this.passes(schema.not, value, at)) this.add(sink, at, 'must not match the schema in not');
    if (schema.if !== undefined) {
      const branch = this.passes(schema.if, value, at) ? schema.then : schema.else;
      if (branch !== undefined) this.check(branch, value, at, sink);
    }
    if (full()) return;

    if (typeof value === 'number') this.checkNumber(schema, value, at, sink);
    else if (typeof value === 'string') this.checkString(schema, value, at, sink);
    else if (Array.isArray(value)) this.checkArray(schema, value as Json[], at, sink);
    else if (value !== null && typeof value === 'object') this.checkObject(schema, value as Record<string, Json>, at, sink);
  }

  private checkNumber(schema: Record<string, unknown>, value: number, at: PathSegment[], sink: Sink): void {
    const bound = (keyword: string, fails: (limit: number) => boolean, words: string) => {
      const limit = schema[keyword];
      if (typeof limit === 'number' && fails(limit)) this.add(sink, at, `must be ${words} ${limit}`);
    };
    bound('minimum', (limit) => value < limit, '>=');
    bound('maximum', (limit) => value > limit, '<=');
    bound('exclusiveMinimum', (limit) => value <= limit, '>');
    bound('exclusiveMaximum', (limit) => value >= limit, '<');
    bound('multipleOf', (limit) => !isMultipleOf(value, limit), 'a multiple of');
  }

  private checkString(schema: Record<string, unknown>, value: string, at: PathSegment[], sink: Sink): void {
    if (typeof schema.minLength === 'number' || typeof schema.maxLength === 'number') {
      // JSON Schema counts characters (code points), not UTF-16 units.
      let length = 0;
      for (const _ of value) length++;
      if (typeof schema.minLength === 'number' && length < schema.minLength) this.add(sink, at, `must be at least ${schema.minLength} characters long`);
      if (typeof schema.maxLength === 'number' && length > schema.maxLength) this.add(sink, at, `must be at most ${schema.maxLength} characters long`);
    }
    if (typeof schema.pattern === 'string' && !this.parts.patterns.get(schema.pattern)?.test(value)) {
      this.add(sink, at, `must match the pattern ${show(schema.pattern)}`);
    }
  }

  private checkArray(schema: Record<string, unknown>, value: Json[], at: PathSegment[], sink: Sink): void {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) this.add(sink, at, `must have at least ${schema.minItems} items`);
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) this.add(sink, at, `must have at most ${schema.maxItems} items`);
    if (schema.uniqueItems === true) {
      const first = new Map<string, number>();
      for (const [index, item] of value.entries()) {
        this.checks++;
        const text = canonicalJson(item);
        const earlier = first.get(text);
        if (earlier !== undefined) {
          this.add(sink, at, `must not repeat items: items ${earlier} and ${index} are equal`);
          break;
        }
        first.set(text, index);
      }
    }
    const prefix: unknown[] = Array.isArray(schema.prefixItems) ? schema.prefixItems : [];
    for (const [index, item] of value.entries()) {
      if (sink.issues.length >= sink.limit) return;
      const itemSchema: unknown = index < prefix.length ? prefix[index] : schema.items;
      if (itemSchema !== undefined) this.check(itemSchema, item, [...at, index], sink);
    }
    if (schema.contains !== undefined) {
      const matching = value.filter((item, index) => this.passes(schema.contains, item, [...at, index])).length;
      const min = typeof schema.minContains === 'number' ? schema.minContains : 1;
      if (matching < min) this.add(sink, at, `must contain at least ${min} item${min === 1 ? '' : 's'} matching contains, but has ${matching}`);
      if (typeof schema.maxContains === 'number' && matching > schema.maxContains) this.add(sink, at, `must contain at most ${schema.maxContains} items matching contains, but has ${matching}`);
    }
  }

  private checkObject(schema: Record<string, unknown>, value: Record<string, Json>, at: PathSegment[], sink: Sink): void {
    const names = Object.keys(value);
    if (typeof schema.minProperties === 'number' && names.length < schema.minProperties) this.add(sink, at, `must have at least ${schema.minProperties} fields`);
    if (typeof schema.maxProperties === 'number' && names.length > schema.maxProperties) this.add(sink, at, `must have at most ${schema.maxProperties} fields`);
    const has = (name: string) => Object.prototype.hasOwnProperty.call(value, name);
    if (Array.isArray(schema.required)) for (const name of schema.required as string[]) if (!has(name)) this.add(sink, [...at, name], 'is required');
    const dependentRequired = (schema.dependentRequired ?? {}) as Record<string, string[]>;
    for (const [trigger, needed] of Object.entries(dependentRequired)) {
      if (has(trigger)) for (const name of needed) if (!has(name)) this.add(sink, [...at, name], `is required when "${trigger}" is given`);
    }
    const dependentSchemas = (schema.dependentSchemas ?? {}) as Record<string, unknown>;
    for (const [trigger, dependent] of Object.entries(dependentSchemas)) if (has(trigger)) this.check(dependent, value, at, sink);

    const properties = (schema.properties ?? {}) as Record<string, unknown>;
    const patterns = Object.keys(schema.patternProperties ?? {});
    for (const name of names) {
      if (sink.issues.length >= sink.limit) return;
      const item = value[name];
      const here = [...at, name];
      if (schema.propertyNames !== undefined && !this.passes(schema.propertyNames, name, here)) this.add(sink, here, 'is not an allowed field name');
      let matched = false;
      if (Object.prototype.hasOwnProperty.call(properties, name)) {
        matched = true;
        this.check(properties[name], item, here, sink);
      }
      for (const pattern of patterns) {
        this.checks++;
        if (this.parts.patterns.get(pattern)?.test(name)) {
          matched = true;
          this.check((schema.patternProperties as Record<string, unknown>)[pattern], item, here, sink);
        }
      }
      if (!matched && schema.additionalProperties !== undefined) {
        if (schema.additionalProperties === false) this.add(sink, here, 'unknown field');
        else this.check(schema.additionalProperties, item, here, sink);
      }
    }
  }
}

/**
 * The problems of a case input under a compiled schema (at most INPUT_SCHEMA_LIMITS.maxIssues),
 * each with its path and JSON pointer from `root`; empty when it matches.
 */
export function inputSchemaIssues(compiled: CompiledInputSchema, input: unknown, root: PathSegment[] = ['input']): InputIssue[] {
  const sink: Sink = { issues: [], limit: INPUT_SCHEMA_LIMITS.maxIssues };
  try {
    new Checker(compiled.parts).check(compiled.schema, input, [...root], sink);
  } catch (error) {
    if (!(error instanceof OutOfChecks)) throw error;
    return [
      {
        path: segmentsToPath(root),
        pointer: segmentsToPointer(root),
        message: `takes more than ${INPUT_SCHEMA_LIMITS.maxChecks} checks against the workflow's input schema; send a smaller input`,
      },
    ];
  }
  return sink.issues;
}

/** Throws INPUT_INVALID, naming each problem, when a case input does not match its workflow's schema. */
export function assertCaseInput(workflow: Pick<CompiledWorkflow, 'name' | 'version' | 'inputSchema'>, input: unknown): void {
  if (!workflow.inputSchema) return;
  const problems = inputSchemaIssues(workflow.inputSchema, input);
  if (problems.length > 0) throw new InputInvalidError(problems, `input of workflow ${workflow.name} v${workflow.version}`);
}
