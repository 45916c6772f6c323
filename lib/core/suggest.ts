/** Edit distance between two short names (insertions, deletions, substitutions), capped at `limit + 1`. */
function distance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const value = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
      current.push(value);
      best = Math.min(best, value);
    }
    if (best > limit) return limit + 1;
    previous = current;
  }
  return previous[b.length] ?? limit + 1;
}

/**
 * The candidates a mistyped `name` most likely meant, closest first: a few edits away (a third of
 * the name's length, at least 2) or containing it, at most `max` of them.
 */
export function closeNames(name: string, candidates: Iterable<string>, max = 3): string[] {
  const wanted = name.toLowerCase();
  const limit = Math.max(2, Math.floor(wanted.length / 3));
  const scored: Array<{ candidate: string; score: number }> = [];
  for (const candidate of candidates) {
    if (candidate === name) continue;
    const lower = candidate.toLowerCase();
    const edits = distance(wanted, lower, limit);
    if (edits <= limit) scored.push({ candidate, score: edits });
    else if (wanted.length >= 3 && (lower.includes(wanted) || wanted.includes(lower))) scored.push({ candidate, score: limit + 1 });
  }
  return scored
    .sort((a, b) => a.score - b.score || a.candidate.localeCompare(b.candidate))
    .slice(0, max)
    .map((entry) => entry.candidate);
}

/** ` (did you mean "charge"?)` for a near miss among the known names, or the empty string. */
export function didYouMean(name: string, known: Iterable<string>): string {
  // Suggest only near misses: at most a third of the name wrong, and never the whole of it.
  const limit = Math.min(Math.max(1, Math.floor(name.length / 3)), name.length - 1);
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const candidate of known) {
    const edits = distance(name, candidate, limit);
    if (edits < bestDistance) {
      best = candidate;
      bestDistance = edits;
    }
  }
  return best === undefined ? '' : ` (did you mean "${best}"?)`;
}
