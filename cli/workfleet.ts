#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { ConfigError } from '../config/load.js';
import { packageVersion } from '../lib/runtime/package-root.js';
import { ApiError } from './client.js';
import { bulkCommands } from './commands/bulk.js';
import { caseCommands } from './commands/cases.js';
import { fleetCommands } from './commands/fleet.js';
import { keyCommands } from './commands/keys.js';
import { scheduleCommands } from './commands/schedules.js';
import { workflowCommands } from './commands/workflows.js';

/**
 * The one executable: `workfleet api|scheduler|worker|dev` run the fleet's processes; the other
 * commands are clients of a running API (keys: of its database).
 */
const program = new Command('workfleet')
  .description('A workflow engine on BullMQ workers: cases in MongoDB, tasks on Redis queues.')
  .version(packageVersion(), '-V, --version', 'print the workfleet version')
  // Root options only before a command: `case start --version 2` names a definition version.
  .enablePositionalOptions()
  .showHelpAfterError();
fleetCommands(program);
keyCommands(program);
workflowCommands(program);
caseCommands(program);
bulkCommands(program);
scheduleCommands(program);

program.parseAsync(process.argv).catch((error: unknown) => {
  if (error instanceof ConfigError) {
    process.stderr.write(`workfleet: ${error.message}\n`);
    process.exit(2);
  }
  if (error instanceof ApiError) {
    const issues = (error.details as { issues?: Array<{ path: string; message: string }> } | undefined)?.issues;
    // The message lists the issues too: print them once, one a line.
    if (issues && issues.length > 0) {
      process.stderr.write(`workfleet: ${error.code} (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n`);
      for (const issue of issues) process.stderr.write(`  ${issue.path ? `${issue.path}: ` : ''}${issue.message}\n`);
    } else {
      process.stderr.write(`workfleet: ${error.code}: ${error.message}\n`);
    }
    process.exit(1);
  }
  if (error instanceof InvalidArgumentError || (error as { code?: string }).code === 'ENOENT' || error instanceof SyntaxError) {
    process.stderr.write(`workfleet: ${(error as Error).message}\n`);
    process.exit(2);
  }
  const coded = error as { code?: string; message?: string };
  process.stderr.write(`workfleet: ${coded.code ? `${coded.code}: ` : ''}${coded.message ?? String(error)}\n`);
  process.exit(1);
});
