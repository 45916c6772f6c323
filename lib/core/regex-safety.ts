/**
 * Why a pattern could take time exponential in the input, or undefined. It refuses the classic
 * shape, a repeated group that itself repeats (`(a+)+`, `(\w*)*`); overlapping alternatives
 * under a repetition (`(a|a)*`) are not caught.
 */
export function unsafePatternReason(pattern: string): string | undefined {
  /** Per open group: whether something inside it repeats without bound. */
  const groups: boolean[] = [false];
  let index = 0;
  const quantifierAt = (at: number): { length: number; unbounded: boolean } | undefined => {
    const char = pattern[at];
    const lazy = (length: number) => length + (pattern[at + length] === '?' ? 1 : 0);
    if (char === '*' || char === '+') return { length: lazy(1), unbounded: true };
    if (char === '?') return { length: lazy(1), unbounded: false };
    const braces = /^\{(\d+)(,(\d*))?\}/.exec(pattern.slice(at));
    if (braces) return { length: lazy(braces[0].length), unbounded: braces[2] !== undefined && braces[3] === '' };
    return undefined;
  };
  while (index < pattern.length) {
    const char = pattern[index];
    if (char === '(') {
      groups.push(false);
      index++;
      // Skip a group's modifier: (?: (?= (?! (?<= (?<! (?<name>
      const modifier = /^\?(?:[:=!]|<[=!]|<[^>]*>)/.exec(pattern.slice(index));
      if (modifier) index += modifier[0].length;
      continue;
    }
    let inner = false;
    if (char === ')') {
      inner = groups.pop() ?? false;
      if (groups.length === 0) groups.push(false);
      index++;
    } else if (char === '\\') {
      index += 2;
    } else if (char === '[') {
      index++;
      while (index < pattern.length && pattern[index] !== ']') index += pattern[index] === '\\' ? 2 : 1;
      index++;
    } else {
      index++;
    }
    const quantifier = quantifierAt(index);
    if (quantifier) index += quantifier.length;
    const unbounded = quantifier?.unbounded ?? false;
    if (unbounded && inner) return 'a repeated group repeats inside itself (like "(a+)+"), which can take exponential time';
    const top = groups.length - 1;
    groups[top] = (groups[top] ?? false) || inner || unbounded;
  }
  return undefined;
}
