/** Issue paths: every problem names where it is in the style of `steps[2].after[0]`. */

export type PathSegment = string | number;

/** `['steps', 2, 'after', 0]` → `steps[2].after[0]`; keys that are not names are quoted. */
export function segmentsToPath(segments: readonly PathSegment[]): string {
  let path = '';
  for (const segment of segments) {
    if (typeof segment === 'number' || /^[0-9]+$/.test(segment)) path += `[${segment}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(segment)) path += path ? `.${segment}` : segment;
    else path += `[${JSON.stringify(segment)}]`;
  }
  return path;
}

/** `['input', 'lines', 0]` → `/input/lines/0` (RFC 6901). */
export function segmentsToPointer(segments: readonly PathSegment[]): string {
  return segments.map((segment) => `/${String(segment).replace(/~/g, '~0').replace(/\//g, '~1')}`).join('');
}

/** `/steps/2/after/0` → `steps[2].after[0]` */
export function pointerToPath(pointer: string): string {
  return segmentsToPath(
    pointer
      .split('/')
      .slice(1)
      .map((raw) => raw.replace(/~1/g, '/').replace(/~0/g, '~')),
  );
}
