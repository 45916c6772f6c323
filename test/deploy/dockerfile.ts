import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileParser } from 'dockerfile-ast';
import { DEPLOY } from './support.js';

/** deploy/Dockerfile parsed into stages, for the lint test and the build-and-start test. */

export interface Step {
  keyword: string;
  /** The arguments as written (continuations joined). */
  text: string;
  /** Exec-form arguments (`["node", "x.js"]`), or undefined for shell form. */
  exec: string[] | undefined;
  /** --flag=value options before the arguments (RUN --mount, COPY --from, HEALTHCHECK --interval). */
  flags: Record<string, string>;
}

export interface Stage {
  name: string | undefined;
  /** The base image with build arguments resolved to their defaults. */
  from: string;
  steps: Step[];
}

export const DOCKERFILE = join(DEPLOY, 'Dockerfile');
const DOCKERIGNORE = join(DEPLOY, 'Dockerfile.dockerignore');

export function parseDockerfile(content = readFileSync(DOCKERFILE, 'utf8')): { stages: Stage[]; args: Record<string, string> } {
  const dockerfile = DockerfileParser.parse(content);
  const args: Record<string, string> = {};
  for (const arg of dockerfile.getInitialARGs()) {
    const property = arg.getProperty();
    if (property?.getName()) args[property.getName()] = property.getValue() ?? '';
  }
  const stages: Stage[] = [];
  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword().toUpperCase();
    const raw = instruction.getArgumentsContent() ?? '';
    const flags: Record<string, string> = {};
    // dockerfile-ast keeps --flags apart from the arguments on instructions that take them.
    const parsedFlags = (instruction as unknown as { getFlags?: () => Array<{ getName(): string; getValue(): string | null }> }).getFlags?.() ?? [];
    for (const flag of parsedFlags) flags[flag.getName()] = flag.getValue() ?? 'true';
    let text = raw.replace(/\\\n\s*/g, '');
    // Leading --flags are options of the instruction, not its command.
    for (;;) {
      const match = /^--([a-z-]+)(?:=(\S+))?\s+/.exec(text);
      if (!match || keyword === 'CMD' || keyword === 'ENTRYPOINT') break;
      flags[match[1]!] = match[2] ?? 'true';
      text = text.slice(match[0].length);
    }
    if (keyword === 'HEALTHCHECK' && text.startsWith('CMD ')) text = text.slice(4);
    let exec: string[] | undefined;
    if (text.trimStart().startsWith('[')) {
      try {
        exec = JSON.parse(text) as string[];
      } catch {
        exec = undefined;
      }
    }
    const step = { keyword, text, exec, flags };
    if (keyword === 'FROM') {
      const [image, as, name] = text.split(/\s+/);
      stages.push({ name: as?.toUpperCase() === 'AS' ? name : undefined, from: (image ?? '').replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string, b: string) => args[a ?? b] ?? ''), steps: [] });
    } else if (stages.length > 0) {
      stages.at(-1)!.steps.push(step);
    }
  }
  return { stages, args };
}

/** The plain paths deploy/Dockerfile.dockerignore keeps out of the build context. */
export function ignoredPaths(): string[] {
  return readFileSync(DOCKERIGNORE, 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}
