import { type Command, InvalidArgumentError } from 'commander';
import { ErrorCode, httpStatusOf } from '../../lib/core/error-codes.js';
import { ApiError } from '../client.js';
import { fleetConfig } from '../context.js';
import { color } from '../render.js';

/** API key management, on the database directly so that it can create the first admin key. */
export function keyCommands(program: Command): void {
  const keys = program.command('keys').description("manage API keys (works on the database directly, so it can create the first admin key; uses MONGO_URL, else a running dev fleet's)");

  async function withKeys<T>(work: (service: import('../../lib/engine/keys.js').KeyService) => Promise<T>): Promise<T> {
    const { MongoStore } = await import('../../lib/adapters/mongo/store.js');
    const { KeyService } = await import('../../lib/engine/keys.js');
    const { systemClock } = await import('../../lib/ports/clock.js');
    const { reachStore } = await import('../../lib/runtime/reach.js');
    const { url } = fleetConfig().mongo;
    const store = new MongoStore({ url });
    await reachStore(store, url);
    try {
      return await work(new KeyService(store, systemClock));
    } finally {
      await store.close();
    }
  }

  keys
    .command('create')
    .description('create a key and print it once')
    .requiredOption('--name <name>', 'who or what uses the key')
    .requiredOption('--role <role...>', 'admin, operator, producer or viewer (repeatable)')
    .option('--expires-in <duration>', 'e.g. 90d; never expires when omitted')
    .option('--json', 'print as JSON')
    .action(async (options: { name: string; role: string[]; expiresIn?: string; json?: boolean }) => {
      const { ROLES } = await import('../../lib/core/auth.js');
      const { parseDuration } = await import('../../lib/core/duration.js');
      const roles = options.role.flatMap((role) => role.split(','));
      const unknown = roles.filter((role) => !(ROLES as readonly string[]).includes(role));
      if (unknown.length > 0) throw new InvalidArgumentError(`unknown role ${unknown.join(', ')}: use ${ROLES.join(', ')}`);
      const expiresInMs = options.expiresIn === undefined ? undefined : parseDuration(options.expiresIn);
      if (options.expiresIn !== undefined && expiresInMs === undefined) throw new InvalidArgumentError(`--expires-in ${options.expiresIn} is not a duration like 90d`);
      const created = await withKeys((service) => service.create({ name: options.name, roles: roles as Array<(typeof ROLES)[number]>, ...(expiresInMs === undefined ? {} : { expiresInMs }) }));
      if (options.json) return console.log(JSON.stringify({ ...created.summary, key: created.key }));
      console.log(created.key);
      process.stderr.write(`key ${created.summary.id} (${created.summary.roles.join(', ')}) created; it is shown only this once\n`);
    });

  keys
    .command('list')
    .description('list keys (never their secrets)')
    .option('--json', 'print as JSON')
    .action(async (options: { json?: boolean }) => {
      const list = await withKeys((service) => service.list());
      if (options.json) return console.log(JSON.stringify(list, null, 2));
      for (const key of list) {
        const state = key.revokedAt ? color.red('revoked') : key.expiresAt && key.expiresAt < Date.now() ? color.yellow('expired') : color.green('active');
        console.log(`${key.id}  ${state.padEnd(7)}  ${key.roles.join(',').padEnd(18)} ${key.name}  ${color.dim(new Date(key.createdAt).toISOString())}`);
      }
    });

  keys
    .command('revoke')
    .description('revoke a key; every API process stops accepting it at once (within 10 s if Redis is away)')
    .argument('<id>')
    .action(async (id: string) => {
      if (!(await withKeys((service) => service.revoke(id)))) throw new ApiError(httpStatusOf(ErrorCode.keyNotFound), ErrorCode.keyNotFound, `no key ${id}`);
      // The API processes cache keys for 10 s; the notice on Redis makes each forget this one now.
      const { announceRevocation } = await import('../../lib/adapters/redis/key-revocations.js');
      const { redis } = fleetConfig();
      if (await announceRevocation(redis.url, redis.prefix, id)) console.log(`key ${id} revoked; every API process refuses it now`);
      else console.log(`key ${id} revoked; Redis did not take the notice, so API processes refuse it within 10 s`);
    });
}
