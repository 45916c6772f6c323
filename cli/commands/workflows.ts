import type { Command } from 'commander';
import { ErrorCode } from '../../lib/core/error-codes.js';
import { plural } from '../../lib/core/format.js';
import { ApiError } from '../client.js';
import { client, clientOptions, positiveInt } from '../context.js';
import { readDefinitionFile, type Problem } from '../definition-files.js';
import { color } from '../render.js';

interface Issue {
  path: string;
  message: string;
}

/** Each problem once, on a line of its own that starts with where it is. */
function printProblems(file: string, code: string, problems: readonly Problem[]): void {
  const seen = new Set<string>();
  const lines = problems.map(({ where, text }) => `${where}: ${text}`).filter((line) => !seen.has(line) && seen.add(line));
  for (const line of lines) process.stderr.write(`${line}\n`);
  process.stderr.write(`workfleet: ${file}: ${code} (${plural(lines.length, 'problem')})\n`);
}

/** Client commands for workflow definitions. */
export function workflowCommands(program: Command): void {
  const workflow = program.command('workflow').description('manage workflow definitions');

  clientOptions(workflow.command('apply').description('validate and store definitions (a changed one becomes a new version)'))
    .argument('<files...>', 'JSON or YAML definition files')
    .action(async (files: string[], options: { apiUrl?: string; apiKey?: string; json?: boolean }) => {
      const api = client(options);
      // Every file is read and sent, so that one run reports the problems of all of them.
      for (const file of files) {
        const read = readDefinitionFile(file);
        if (!read.ok) {
          printProblems(file, ErrorCode.definitionInvalid, read.problems);
          process.exitCode = 1;
          continue;
        }
        try {
          const { status, body: result } = await api.request<{ name: string; version: number; created: boolean; warnings?: Array<{ message: string }> }>('POST', '/v1/workflows', read.body);
          if (options.json) console.log(JSON.stringify(result));
          else console.log(`${file}: ${result.name} v${result.version} ${status === 201 ? color.green('created') : color.dim('unchanged')}`);
          for (const warning of result.warnings ?? []) process.stderr.write(`${color.yellow(`${file}: warning: ${warning.message}`)}\n`);
        } catch (error) {
          const issues = error instanceof ApiError ? (error.details as { issues?: Issue[] } | undefined)?.issues : undefined;
          if (!(error instanceof ApiError) || !issues) throw error;
          printProblems(
            file,
            error.code,
            issues.map((issue) => ({ where: read.locate(issue.path), text: issue.path ? `${issue.path}: ${issue.message}` : issue.message })),
          );
          process.exitCode = 1;
        }
      }
    });

  clientOptions(workflow.command('list').description('list workflows and their latest versions')).action(async (options: { apiUrl?: string; apiKey?: string; json?: boolean }) => {
    const { body } = await client(options).request<{ workflows: Array<{ name: string; latestVersion: number; versions: number; description?: string }> }>('GET', '/v1/workflows');
    if (options.json) return console.log(JSON.stringify(body, null, 2));
    for (const item of body.workflows) console.log(`${item.name.padEnd(24)} v${item.latestVersion} (${plural(item.versions, 'version')})  ${color.dim(item.description ?? '')}`);
  });

  clientOptions(workflow.command('versions').description('list the versions of a workflow'))
    .argument('<name>')
    .action(async (name: string, options: { json?: boolean; apiUrl?: string; apiKey?: string }) => {
      const { body } = await client(options).request<{ versions: Array<{ version: number; hash: string; createdAt: string }> }>('GET', `/v1/workflows/${name}`);
      if (options.json) return console.log(JSON.stringify(body.versions, null, 2));
      for (const version of body.versions) console.log(`v${String(version.version).padEnd(4)} ${version.createdAt}  ${color.dim(version.hash.slice(0, 12))}`);
    });

  clientOptions(workflow.command('show').description('print a definition'))
    .argument('<name>')
    .option('--version <n>', 'a specific version', positiveInt)
    .action(async (name: string, options: { version?: number; apiUrl?: string; apiKey?: string }) => {
      const path = options.version ? `/v1/workflows/${name}/versions/${options.version}` : `/v1/workflows/${name}`;
      const { body } = await client(options).request<unknown>('GET', path);
      console.log(JSON.stringify(body, null, 2));
    });
}
