import { readFileSync } from 'node:fs';
import { isNode, LineCounter, parseDocument, type Document } from 'yaml';

/**
 * Definition files as `workfleet workflow apply` reads them: every YAML syntax error at once,
 * each as `file:line:col: message`, and the problems the API finds located in the file too, so
 * that an editor can jump to them.
 */

export interface Problem {
  /** `file:line:col` (or `file` when the place is unknown). */
  where: string;
  /** `path: message`, or the message alone. */
  text: string;
}

export type DefinitionFile = { ok: true; body: unknown; locate: (path: string) => string } | { ok: false; problems: Problem[] };

/** `steps[2].after[0]` → `['steps', 2, 'after', 0]`; undefined for text that is not such a path. */
function pathSegments(path: string): Array<string | number> | undefined {
  const segments: Array<string | number> = [];
  const token = /^(?:\.?([A-Za-z_$][A-Za-z0-9_$]*)|\[([0-9]+)\]|\[("(?:[^"\\]|\\.)*")\])/;
  let rest = path;
  while (rest.length > 0) {
    const match = token.exec(rest);
    if (!match) return undefined;
    if (match[1] !== undefined) segments.push(match[1]);
    else if (match[2] !== undefined) segments.push(Number(match[2]));
    else if (match[3] !== undefined) segments.push(JSON.parse(match[3]) as string);
    rest = rest.slice(match[0].length);
  }
  return segments;
}

/** Where the deepest existing part of `path` starts in the YAML document, as `file:line:col`. */
function locator(file: string, document: Document, lines: LineCounter): (path: string) => string {
  return (path) => {
    const segments = pathSegments(path) ?? [];
    // A missing field (`steps[0].id: is required`) is located at the nearest part that exists.
    for (let length = segments.length; length >= 0; length--) {
      const node: unknown = length === 0 ? document.contents : document.getIn(segments.slice(0, length), true);
      if (isNode(node) && node.range) {
        const { line, col } = lines.linePos(node.range[0]);
        return `${file}:${line}:${col}`;
      }
    }
    return file;
  };
}

export function readDefinitionFile(file: string): DefinitionFile {
  const text = readFileSync(file, 'utf8');
  if (/\.json$/i.test(file)) {
    try {
      return { ok: true, body: JSON.parse(text), locate: () => file };
    } catch (error) {
      return { ok: false, problems: [{ where: file, text: `not JSON: ${(error as Error).message}` }] };
    }
  }
  const lines = new LineCounter();
  const document = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  if (document.errors.length > 0) {
    return {
      ok: false,
      problems: document.errors.map((error) => {
        const { line, col } = lines.linePos(error.pos[0]);
        return { where: `${file}:${line}:${col}`, text: error.message };
      }),
    };
  }
  return { ok: true, body: document.toJS({ maxAliasCount: 100 }), locate: locator(file, document, lines) };
}
