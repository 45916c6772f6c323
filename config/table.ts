import { settings } from './load.js';

function formatDefault(value: unknown): string {
  if (Array.isArray(value)) return value.join(',');
  if (value === '') return '(empty)';
  return String(value);
}

/** The README's configuration table, generated from the schema so the two cannot drift. */
export function configTable(): string {
  const rows = [...settings().values()].map((leaf) => {
    const flag = leaf.arg ? ` (flag \`--${leaf.arg}\`)` : '';
    return `| \`${leaf.env}\` | \`${formatDefault(leaf.default)}\` | ${leaf.doc}${flag} |`;
  });
  return ['| Variable | Default | Meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
