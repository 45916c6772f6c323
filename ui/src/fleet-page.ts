import { api, describeError } from './api.js';
import { fill, h } from './dom.js';
import { formatAge, formatDuration, formatPeriod, formatTime } from './format.js';
import type { PageContext } from './main.js';
import { CASE_STATUSES } from './model.js';
import { poll } from './poller.js';

const REFRESH_MS = 5_000;

interface Status {
  at: string;
  queues: Record<string, { waiting: number; active: number; delayed: number; failed: number; completed: number; prioritized: number }>;
  processes: Array<{ id: string; role: string; host: string; pid: number; queues: string[]; concurrency: number; startedAt: string; seenAt: string }>;
  workers: number;
  cases: Record<string, number>;
  stuck: { afterMs: number; cases: Array<{ id: string; workflow: string; status: string; updatedAt: string; reason: string }>; more: boolean };
  redis: { maxmemoryPolicy: string; usedMemoryBytes: number };
  concurrency: { groups: Array<{ group: string; inUse: number; waiting: number; topKeys: Array<{ key: string; inUse: number; waiting: number; limit: number }> }> };
  rateLimits: { groups: Array<{ group: string; keys: number; deferred: number; topKeys: Array<{ key: string; max: number; perMs: number; used: number; deferred: number }> }> };
}

interface Fleet {
  queues: Record<string, { oldestWaitingAt: string | null }>;
  breakers: Array<{ breaker: string; deferredSteps: number; until: string | null; cases: string[] }>;
  scannedCases: number;
  scanComplete: boolean;
}

const board = (queue: string) => `/admin/queues/queue/${encodeURIComponent(queue)}`;

/** The fleet at a glance: queues with depth and age, live processes, concurrency keys, rate limits, breakers, stuck cases. */
export function fleetPage(context: PageContext): () => void {
  const { root } = context;
  const error = h('p', { class: 'error', role: 'alert', id: 'fleet-error' });
  const content = h('div', { id: 'fleet' }, h('p', { class: 'muted' }, 'loading…'));
  fill(root, h('h2', {}, 'Fleet'), error, content);
  const linkBoard = context.may('cases:operate');

  const load = async () => {
    try {
      const [status, fleet] = await Promise.all([api<Status>('GET', '/v1/status'), api<Fleet>('GET', '/v1/explorer/fleet')]);
      const now = Date.parse(status.at);
      const table = (id: string, head: string[], rows: HTMLElement[], empty: string) =>
        // Wide tables scroll inside their box on a narrow screen, not the page.
        h(
          'div',
          { class: 'table-scroll' },
          h(
            'table',
            { class: 'grid', id },
            h('thead', {}, h('tr', {}, ...head.map((cell) => h('th', {}, cell)))),
            h('tbody', {}, ...(rows.length ? rows : [h('tr', {}, h('td', { colspan: head.length, class: 'muted' }, empty))])),
          ),
        );
      fill(error);
      fill(
        content,
        h('p', { class: 'muted' }, `as of ${formatTime(status.at)}, refreshed every ${REFRESH_MS / 1000} s`),
        h('h3', {}, 'Cases by status'),
        h('div', { class: 'counts' }, ...CASE_STATUSES.map((value) => h('a', { class: `chip state-${value}`, href: `#/cases?status=${value}` }, `${value} ${(status.cases[value] ?? 0).toLocaleString()}`))),
        h('h3', {}, 'Queues'),
        table(
          'queues',
          ['queue', 'waiting', 'oldest waiting', 'active', 'delayed', 'prioritized', 'failed', 'completed'],
          Object.entries(status.queues)
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([name, counts]) =>
              h(
                'tr',
                { 'data-queue': name },
                h('td', {}, linkBoard ? h('a', { href: board(name), target: '_blank', rel: 'noopener' }, name) : name),
                h('td', { class: 'num' }, counts.waiting),
                h('td', {}, formatAge(fleet.queues[name]?.oldestWaitingAt ?? null, now) || '–'),
                h('td', { class: 'num' }, counts.active),
                h('td', { class: 'num' }, counts.delayed),
                h('td', { class: 'num' }, counts.prioritized),
                h(
                  'td',
                  { class: `num${counts.failed ? ' bad' : ''}` },
                  linkBoard && counts.failed ? h('a', { href: `${board(name)}?status=failed`, target: '_blank', rel: 'noopener' }, counts.failed) : counts.failed,
                ),
                h('td', { class: 'num' }, counts.completed),
              ),
            ),
          'No queue yet.',
        ),
        h('h3', {}, `Processes (${status.workers} worker${status.workers === 1 ? '' : 's'})`),
        table(
          'processes',
          ['role', 'id', 'queues', 'concurrency', 'up for', 'last seen'],
          status.processes
            .sort((a, b) => a.role.localeCompare(b.role) || a.id.localeCompare(b.id))
            .map((member) =>
              h(
                'tr',
                { 'data-role': member.role },
                h('td', {}, member.role),
                h('td', { class: 'mono' }, member.id),
                h('td', {}, member.queues.join(', ')),
                h('td', { class: 'num' }, member.concurrency),
                h('td', {}, formatDuration(now - Date.parse(member.startedAt))),
                h('td', {}, formatAge(member.seenAt, now)),
              ),
            ),
          'No live process.',
        ),
        h('h3', {}, 'Concurrency keys'),
        h('p', { class: 'muted' }, 'Slots in use and units waiting by key group, with the busiest keys of each (slots in use of the limit, units waiting in line).'),
        table(
          'concurrency',
          ['group', 'in use', 'waiting', 'busiest keys'],
          status.concurrency.groups.map((group) =>
            h(
              'tr',
              { 'data-group': group.group },
              h('td', {}, group.group),
              h('td', { class: 'num' }, group.inUse),
              h('td', { class: 'num' }, group.waiting),
              h(
                'td',
                {},
                ...group.topKeys.map((key) =>
                  h('div', { class: 'limit-key', 'data-key': key.key }, h('span', { class: 'mono' }, key.key), ` ${key.inUse}/${key.limit} in use${key.waiting ? `, ${key.waiting} waiting` : ''}`),
                ),
              ),
            ),
          ),
          'No step has a concurrency key in use.',
        ),
        h('h3', {}, 'Rate limits'),
        h(
          'p',
          { class: 'muted' },
          'Keys with starts in their window and units deferred by the limit, by group, with the busiest keys of each (starts in the last window of the limit, starts reserved for later).',
        ),
        table(
          'rate-limits',
          ['group', 'keys', 'deferred', 'busiest keys'],
          status.rateLimits.groups.map((group) =>
            h(
              'tr',
              { 'data-group': group.group },
              h('td', {}, group.group),
              h('td', { class: 'num' }, group.keys),
              h('td', { class: 'num' }, group.deferred),
              h(
                'td',
                {},
                ...group.topKeys.map((key) =>
                  h(
                    'div',
                    { class: 'limit-key', 'data-key': key.key },
                    h('span', { class: 'mono' }, key.key),
                    ` ${key.used}/${key.max} per ${formatPeriod(key.perMs)}${key.deferred ? `, ${key.deferred} deferred` : ''}`,
                  ),
                ),
              ),
            ),
          ),
          'No step has a rate-limit key in use.',
        ),
        h('h3', {}, 'Breakers deferring work'),
        h(
          'p',
          { class: 'muted' },
          `Breakers live in each worker process; shown here are those whose deferrals hold steps of open cases (${fleet.scannedCases} open cases read${fleet.scanComplete ? '' : ', more not read'}). Each worker's /metrics has workfleet_breaker_state for all of them.`,
        ),
        table(
          'breakers',
          ['breaker', 'deferred steps', 'until', 'cases'],
          fleet.breakers.map((breaker) =>
            h(
              'tr',
              { 'data-breaker': breaker.breaker },
              h('td', {}, breaker.breaker, ' ', h('span', { class: 'badge state-failed' }, 'open')),
              h('td', { class: 'num' }, breaker.deferredSteps),
              h('td', {}, formatTime(breaker.until)),
              h('td', {}, ...breaker.cases.flatMap((id) => [h('a', { href: `#/cases/${encodeURIComponent(id)}`, class: 'mono' }, id.slice(0, 13)), ' '])),
            ),
          ),
          'No breaker is deferring steps.',
        ),
        h('h3', {}, `Stuck cases (open, no progress for ${formatDuration(status.stuck.afterMs)})`),
        table(
          'stuck',
          ['case', 'workflow', 'status', 'updated', 'reason'],
          status.stuck.cases.map((item) =>
            h(
              'tr',
              {},
              h('td', {}, h('a', { href: `#/cases/${encodeURIComponent(item.id)}`, class: 'mono' }, item.id)),
              h('td', {}, item.workflow),
              h('td', {}, h('span', { class: `badge state-${item.status}` }, item.status)),
              h('td', {}, formatTime(item.updatedAt)),
              h('td', {}, item.reason),
            ),
          ),
          'None.',
        ),
        status.stuck.more ? h('p', { class: 'muted' }, 'More stuck cases than shown.') : null,
        h('h3', {}, 'Redis'),
        h(
          'p',
          {},
          `maxmemory-policy ${status.redis.maxmemoryPolicy}${status.redis.maxmemoryPolicy === 'noeviction' ? '' : ' (should be noeviction: jobs may be evicted)'}, ${(status.redis.usedMemoryBytes / 1_048_576).toFixed(1)} MiB used`,
        ),
      );
    } catch (problem) {
      fill(error, describeError(problem));
    }
  };
  const poller = poll(load, REFRESH_MS);
  return () => poller.stop();
}
