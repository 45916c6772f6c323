import { readFileSync } from 'node:fs';

/**
 * The fields of a /proc stat file (`/proc/<pid>/stat`, `/proc/<pid>/task/<tid>/stat`) after the
 * command name: [state, ppid, pgrp, session, ...]. The name, in parentheses, may itself hold
 * spaces and parentheses, so the fields start after the last ')'. Undefined when the file cannot
 * be read (the process or thread has exited).
 */
export function procStatFields(path: string): string[] | undefined {
  let stat: string;
  try {
    stat = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}
