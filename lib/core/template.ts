import type { ValidationIssue } from './errors.js';

/**
 * Templates build step inputs and the case output from data the case already has. A template is
 * any JSON value; inside its strings `${path}` refers to a value:
 *
 * - `${input.order.id}`: the case input;
 * - `${steps.charge.output.receipt}`: the output of an earlier step;
 * - `${case.id}`, `${case.workflow}`, `${case.version}`: facts about the case;
 * - `${item}`, `${item.sku}`, `${index}`: in a forEach step, the item and its position.
 *
 * A string that is exactly one reference becomes the referenced value with its type; a reference
 * inside longer text is interpolated as text (objects as JSON). `$${` writes a literal `${`.
 * A path that leads nowhere yields null. Templates are data: they are walked, never evaluated.
 */

export type PathSegment = string | number;

export interface Reference {
  root: 'input' | 'steps' | 'case' | 'item' | 'index';
  /** For `steps` references: the step whose output is read. */
  stepId?: string;
  /** Segments after the root (for steps: after `output`). */
  path: PathSegment[];
  /** The reference as written, for messages. */
  text: string;
}

type Part = { literal: string } | { reference: Reference };

const IDENT = /^[A-Za-z_][A-Za-z0-9_-]*/;
const CASE_FIELDS = new Set(['id', 'workflow', 'version']);
const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/** Parses `input.a[0]["b c"]` into segments, or returns a message saying what is wrong. */
function parsePath(text: string): PathSegment[] | string {
  const segments: PathSegment[] = [];
  let rest = text.trim();
  const first = IDENT.exec(rest);
  if (!first) return `"${text}" must start with input, steps, case, item or index`;
  segments.push(first[0]);
  rest = rest.slice(first[0].length);
  while (rest.length > 0) {
    if (rest.startsWith('.')) {
      const ident = IDENT.exec(rest.slice(1)) ?? /^[0-9]+/.exec(rest.slice(1));
      if (!ident) return `"${text}": expected a name after "."`;
      segments.push(/^[0-9]+$/.test(ident[0]) ? Number(ident[0]) : ident[0]);
      rest = rest.slice(1 + ident[0].length);
    } else if (rest.startsWith('[')) {
      const index = /^\[([0-9]+)\]/.exec(rest);
      const quoted = /^\["((?:[^"\\]|\\.)*)"\]/.exec(rest);
      if (index?.[1] !== undefined) {
        segments.push(Number(index[1]));
        rest = rest.slice(index[0].length);
      } else if (quoted?.[1] !== undefined) {
        segments.push(quoted[1].replace(/\\(.)/g, '$1'));
        rest = rest.slice(quoted[0].length);
      } else {
        return `"${text}": "[" must hold an index like [0] or a quoted key like ["a b"]`;
      }
    } else {
      return `"${text}": unexpected "${rest[0] ?? ''}"`;
    }
  }
  // Resolution reads own properties only, so these would read nothing; refusing them says so at
  // apply time instead of leaving a reference that looks like it reaches into the runtime.
  const forbidden = segments.find((segment) => typeof segment === 'string' && FORBIDDEN_KEYS.has(segment));
  if (forbidden !== undefined) return `"${text}": "${String(forbidden)}" is not a data field and cannot be referenced`;
  return segments;
}

function toReference(text: string): Reference | string {
  const segments = parsePath(text);
  if (typeof segments === 'string') return segments;
  const [root, ...rest] = segments;
  switch (root) {
    case 'input':
      return { root: 'input', path: rest, text };
    case 'item':
      return { root: 'item', path: rest, text };
    case 'index':
      if (rest.length > 0) return `"${text}": index is a number`;
      return { root: 'index', path: rest, text };
    case 'case': {
      const field = rest[0];
      if (rest.length !== 1 || typeof field !== 'string' || !CASE_FIELDS.has(field)) {
        return `"${text}": case has only id, workflow and version`;
      }
      return { root: 'case', path: rest, text };
    }
    case 'steps': {
      const [stepId, field, ...path] = rest;
      if (typeof stepId !== 'string' || field !== 'output') {
        return `"${text}": a step reference reads steps.<id>.output`;
      }
      return { root: 'steps', stepId, path, text };
    }
    default:
      return `"${text}" must start with input, steps, case, item or index`;
  }
}

/** Splits a string into literal text and references; returns a message for a malformed one. */
function parseString(value: string): Part[] | string {
  const parts: Part[] = [];
  let literal = '';
  let i = 0;
  while (i < value.length) {
    if (value.startsWith('$${', i)) {
      literal += '${';
      i += 3;
    } else if (value.startsWith('${', i)) {
      const end = value.indexOf('}', i + 2);
      if (end < 0) return `unclosed "\${" in "${value}"`;
      const reference = toReference(value.slice(i + 2, end));
      if (typeof reference === 'string') return reference;
      if (literal) parts.push({ literal });
      literal = '';
      parts.push({ reference });
      i = end + 1;
    } else {
      literal += value[i];
      i += 1;
    }
  }
  if (literal || parts.length === 0) parts.push({ literal });
  return parts;
}

function childPath(base: string, key: string | number): string {
  if (typeof key === 'number') return `${base}[${key}]`;
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${base}.${key}` : `${base}[${JSON.stringify(key)}]`;
}

/** Every reference in a template with the path where it stands, and every malformed one as an issue. */
export function collectReferences(template: unknown, at: string): { references: Array<{ path: string; reference: Reference }>; issues: ValidationIssue[] } {
  const references: Array<{ path: string; reference: Reference }> = [];
  const issues: ValidationIssue[] = [];
  const visit = (value: unknown, path: string): void => {
    if (typeof value === 'string') {
      const parts = parseString(value);
      if (typeof parts === 'string') issues.push({ path, message: parts });
      else for (const part of parts) if ('reference' in part) references.push({ path, reference: part.reference });
    } else if (Array.isArray(value)) {
      value.forEach((item, index) => visit(item, childPath(path, index)));
    } else if (value !== null && typeof value === 'object') {
      for (const [key, item] of Object.entries(value)) visit(item, childPath(path, key));
    }
  };
  visit(template, at);
  return { references, issues };
}

/** What references can read. */
export interface TemplateScope {
  input: unknown;
  stepOutputs: Readonly<Record<string, unknown>>;
  case: { id: string; workflow: string; version: number };
  /** In a forEach step: the item and its position. */
  item?: unknown;
  index?: number;
}

function follow(value: unknown, path: readonly PathSegment[]): unknown {
  let current = value;
  for (const segment of path) {
    if (current === null || typeof current !== 'object') return null;
    // Own properties only: a reference must never reach Object.prototype.
    if (!Object.prototype.hasOwnProperty.call(current, segment)) return null;
    current = (current as Record<string | number, unknown>)[segment];
  }
  return current === undefined ? null : current;
}

function lookup(reference: Reference, scope: TemplateScope): unknown {
  switch (reference.root) {
    case 'input':
      return follow(scope.input, reference.path);
    case 'case':
      return follow(scope.case, reference.path);
    case 'steps':
      return follow(scope.stepOutputs[reference.stepId ?? ''] ?? null, reference.path);
    case 'item':
      return follow(scope.item ?? null, reference.path);
    case 'index':
      return scope.index ?? null;
  }
}

function asText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return '';
  // Only JSON values reach here: numbers and booleans print the same through JSON.stringify.
  return JSON.stringify(value);
}

/** Builds a value from a template; the template must have passed `collectReferences` without issues. */
export function renderTemplate(template: unknown, scope: TemplateScope): unknown {
  if (typeof template === 'string') {
    const parts = parseString(template);
    if (typeof parts === 'string') return template;
    const [only] = parts;
    if (parts.length === 1 && only && 'reference' in only) return lookup(only.reference, scope);
    return parts.map((part) => ('literal' in part ? part.literal : asText(lookup(part.reference, scope)))).join('');
  }
  if (Array.isArray(template)) return template.map((item) => renderTemplate(item, scope));
  if (template !== null && typeof template === 'object') {
    const out: Record<string, unknown> = {};
    for (const [key, value] of Object.entries(template)) {
      // defineProperty, not assignment: a "__proto__" key stays a plain key.
      Object.defineProperty(out, key, { value: renderTemplate(value, scope), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  return template;
}
