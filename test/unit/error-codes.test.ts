import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { settings } from '../../config/load.js';
import { ERROR_CODE_ENTRIES, ErrorCode, errorCodeTable, isErrorCode } from '../../lib/core/error-codes.js';
import { WorkfleetError } from '../../lib/core/errors.js';
import { packageRoot } from '../../lib/runtime/package-root.js';

const root = packageRoot();

/** The source that gives or answers codes; ui/src is a browser bundle of its own that cannot import the table. */
const SOURCE_DIRS = ['lib', 'api', 'cli', 'scheduler', 'workers', 'config'];
const BROWSER_DIRS = ['ui/src'];
const TABLE_FILE = 'lib/core/error-codes.ts';
/** Being split by the lead while this table lands: their codes are in the table, their literals are replaced with the split. */

/**
 * Names in capitals that are not workfleet's codes: other systems' error codes (Node, its HTTP
 * parser, Fastify, Redis replies, opossum), signals, HTTP methods, Redis commands.
 */
const FOREIGN = new Set([
  ...['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOENT', 'EPERM'],
  ...['HPE_HEADER_OVERFLOW', 'ERR_HTTP_REQUEST_TIMEOUT', 'EOPENBREAKER'],
  ...['LOADING', 'BUSY', 'MASTERDOWN', 'READONLY', 'TRYAGAIN', 'CLUSTERDOWN', 'NOREPLICAS', 'MISCONF'],
  ...['SIGTERM', 'SIGKILL', 'SIGINT', 'SIGHUP', 'SIGSTOP', 'SIGCONT'],
  ...['POST', 'HEAD', 'DELETE', 'PATCH', 'OPTIONS'],
  ...['INCR', 'PEXPIRE', 'PTTL', 'KEYS', 'ARGV', 'MATCH', 'COUNT', 'INFO', 'NODES', 'KEYSLOT', 'WAIT'],
  // psql's variable, set when the FerretDB indexes are made.
  'ON_ERROR_STOP',
  // The CLI's own environment variables (not settings of the fleet).
  ...['WORKFLEET_API_URL', 'WORKFLEET_API_KEY'],
  // A code of the example handlers (examples/handlers), named where handler codes are described.
  'UPSTREAM_UNAVAILABLE',
]);
const isForeign = (token: string) => FOREIGN.has(token) || token.startsWith('FST_ERR_');
/** Settings' environment variables, which messages and descriptions name. */
const SETTINGS = new Set([...settings().values()].map((leaf) => leaf.env));

function sourceFiles(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(join(root, path)).isDirectory()) return sourceFiles(path);
    return path.endsWith('.ts') && !path.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every string and template text of a file with the line it starts on. */
function literals(file: string): Array<{ text: string; line: number }> {
  const source = ts.createSourceFile(file, readFileSync(join(root, file), 'utf8'), ts.ScriptTarget.Latest, true);
  const found: Array<{ text: string; line: number }> = [];
  const visit = (node: ts.Node) => {
    if (ts.isStringLiteralLike(node) || ts.isTemplateLiteralToken(node)) {
      found.push({ text: node.text, line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Code-shaped words of a literal: names in capitals with underscores anywhere, and a literal that is one capital word. */
function codeShaped(text: string): string[] {
  const words = [...text.matchAll(/\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b/g)].map((match) => match[0]);
  if (/^[A-Z]{4,}$/.test(text)) words.push(text);
  return words;
}

/**
 * The codes a literal spells out for use: the whole literal, a failed reason that starts with one
 * (`CODE: why`), a code in JSON text. A code named in prose (a description, a message) is
 * documentation, and only has to be in the table.
 */
function spelledOut(text: string): string[] {
  return codeShaped(text).filter((token) => text === token || text.startsWith(`${token}:`) || text.includes(`"${token}"`));
}

const uses = (dirs: readonly string[], words: (text: string) => string[] = codeShaped) =>
  dirs.flatMap(sourceFiles).flatMap((file) => literals(file).flatMap(({ text, line }) => words(text).map((token) => ({ token, where: `${file}:${line}`, file }))));

describe('the table of error codes', () => {
  it('names each code once, in capitals, by a name that is its constant', () => {
    const codes = ERROR_CODE_ENTRIES.map((entry) => entry.code);
    expect(new Set(codes).size).toBe(codes.length);
    for (const code of codes) expect(code).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/);
    expect(Object.values(ErrorCode)).toEqual(codes);
    expect(ErrorCode.caseNotFound).toBe('CASE_NOT_FOUND');
  });

  it('gives an HTTP status exactly to the codes the API answers with, and Retry-After only with a status', () => {
    for (const entry of ERROR_CODE_ENTRIES) {
      expect(entry.httpStatus !== undefined, entry.code).toBe(entry.surfaces.includes('http'));
      if (entry.httpStatus !== undefined) expect(entry.httpStatus, entry.code).toSatisfy((status: number) => status >= 400 && status <= 599);
      if (entry.retryAfterSeconds !== undefined) expect(entry.httpStatus, entry.code).toBe(503);
      expect(entry.description, entry.code).toMatch(/^[A-Z].*\.$/);
    }
  });

  it('answers a code a client may repeat with a status that says so, and a retryable 503 with Retry-After', () => {
    for (const entry of ERROR_CODE_ENTRIES.filter((each) => each.retryable && each.httpStatus !== undefined)) {
      expect([408, 429, 503], entry.code).toContain(entry.httpStatus);
      if (entry.httpStatus === 503) expect(entry.retryAfterSeconds, entry.code).toBeGreaterThan(0);
    }
    // The 503s that are not retryable, each with its reason in the table: a case the store refuses
    // (the engine must not retry it; a client may try a cancel later, hence its Retry-After) and an
    // installation without the explorer.
    expect(ERROR_CODE_ENTRIES.filter((entry) => entry.httpStatus === 503 && !entry.retryable).map((entry) => entry.code)).toEqual([ErrorCode.caseNotCommittable, ErrorCode.uiNotBuilt]);
  });

  it('gives WorkfleetError the retryability of its code', () => {
    expect(new WorkfleetError(ErrorCode.revisionConflict, 'raced').retryable).toBe(true);
    expect(new WorkfleetError(ErrorCode.caseNotFound, 'gone').retryable).toBe(false);
    expect(new WorkfleetError(ErrorCode.caseNotCommittable, 'refused').retryable).toBe(false);
  });

  it('has every code-shaped word of the source as a code, a setting or another system name', () => {
    const unknown = uses([...SOURCE_DIRS, ...BROWSER_DIRS]).filter(({ token }) => !isErrorCode(token) && !SETTINGS.has(token) && !isForeign(token));
    expect(unknown.map(({ token, where }) => `${where} ${token}`)).toEqual([]);
  });

  it('is the only place a code is spelled out (the browser bundle aside)', () => {
    const inline = uses(SOURCE_DIRS, spelledOut).filter(({ token, file }) => isErrorCode(token) && file !== TABLE_FILE);
    expect(inline.map(({ token, where }) => `${where} ${token}`)).toEqual([]);
  });

  it('holds only codes something gives', () => {
    const files = SOURCE_DIRS.flatMap(sourceFiles).filter((file) => file !== TABLE_FILE);
    const text = files.map((file) => readFileSync(join(root, file), 'utf8')).join('\n');
    const unused = Object.keys(ErrorCode).filter((name) => !new RegExp(`\\bErrorCode\\.${name}\\b`).test(text));
    expect(unused).toEqual([]);
  });

  it('is the error-code table of docs/PRODUCERS.md (regenerate with npm run generate)', () => {
    const doc = readFileSync(join(root, 'docs', 'PRODUCERS.md'), 'utf8');
    expect(doc).toContain(`<!-- error-codes:start -->\n${errorCodeTable()}\n<!-- error-codes:end -->`);
  });
});

describe('the scan for code-shaped words', () => {
  it('finds codes in strings, templates and JSON text, and tells use from prose', () => {
    expect(codeShaped('CASE_NOT_FOUND')).toEqual(['CASE_NOT_FOUND']);
    expect(codeShaped('STEP_CANCELLED: the case was cancelled')).toEqual(['STEP_CANCELLED']);
    expect(codeShaped('{"error":{"code":"METHOD_NOT_ALLOWED"}}')).toEqual(['METHOD_NOT_ALLOWED']);
    expect(codeShaped('INTERNAL')).toEqual(['INTERNAL']);
    expect(codeShaped('a case')).toEqual([]);
    expect(spelledOut('STEP_CANCELLED: the case was cancelled')).toEqual(['STEP_CANCELLED']);
    expect(spelledOut('{"error":{"code":"METHOD_NOT_ALLOWED"}}')).toEqual(['METHOD_NOT_ALLOWED']);
    expect(spelledOut('a case past its budget fails with CASE_TOO_LARGE')).toEqual([]);
  });
});
