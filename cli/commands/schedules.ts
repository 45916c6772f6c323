import { type Command, InvalidArgumentError } from 'commander';
import { formatDuration, plural } from '../../lib/core/format.js';
import { client, clientOptions } from '../context.js';
import { color } from '../render.js';

interface WireSchedule {
  id: string;
  workflow: string;
  cron?: string;
  everyMs?: number;
  timezone?: string;
  next: string | null;
  runs: number;
}

/** Schedules: start a workflow on a cron expression or an interval. */
export function scheduleCommands(program: Command): void {
  const schedule = program.command('schedule').description('start workflows on a cron expression or an interval');

  clientOptions(schedule.command('create').description('create or replace a schedule'))
    .argument('<id>', 'names the schedule')
    .argument('<workflow>')
    .option('--cron <expression>', 'e.g. "0 3 * * *"')
    .option('--every <duration>', 'e.g. 15m')
    .option('--timezone <zone>', 'IANA time zone of the cron expression (default UTC)')
    .option('--input <json>', 'the input of every case it starts', '{}')
    .action(async (id: string, workflow: string, options: { cron?: string; every?: string; timezone?: string; input: string; json?: boolean; apiUrl?: string; apiKey?: string }) => {
      let input: unknown;
      try {
        input = JSON.parse(options.input);
      } catch (error) {
        throw new InvalidArgumentError(`input is not JSON: ${(error as Error).message}`);
      }
      const body = {
        id,
        workflow,
        input,
        ...(options.cron ? { cron: options.cron } : {}),
        ...(options.every ? { every: options.every } : {}),
        ...(options.timezone ? { timezone: options.timezone } : {}),
      };
      const { body: created } = await client(options).request<WireSchedule>('POST', '/v1/schedules', body);
      console.log(options.json ? JSON.stringify(created) : `schedule ${created.id}: ${created.workflow}, next ${created.next ?? 'unknown'}`);
    });

  clientOptions(schedule.command('list').description('list schedules with their next run')).action(async (options: { json?: boolean; apiUrl?: string; apiKey?: string }) => {
    const { body } = await client(options).request<{ schedules: WireSchedule[] }>('GET', '/v1/schedules');
    if (options.json) return console.log(JSON.stringify(body.schedules, null, 2));
    for (const item of body.schedules) {
      const when = item.cron ? `cron ${item.cron}${item.timezone ? ` (${item.timezone})` : ''}` : `every ${formatDuration(item.everyMs ?? 0)}`;
      console.log(`${item.id.padEnd(24)} ${item.workflow.padEnd(20)} ${when.padEnd(28)} next ${item.next ?? '-'}  ${color.dim(plural(item.runs, 'run'))}`);
    }
  });

  clientOptions(schedule.command('delete').description('delete a schedule'))
    .argument('<id>')
    .action(async (id: string, options: { apiUrl?: string; apiKey?: string }) => {
      await client(options).request('DELETE', `/v1/schedules/${id}`);
      console.log(`schedule ${id} deleted`);
    });
}
