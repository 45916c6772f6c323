import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cluster } from 'ioredis';
import { startRedisCluster, type RedisCluster } from '../../lib/local-servers/redis-cluster.js';

/** The test cluster helper itself: 3 masters with a replica each, and a master lost and found again. */
describe('startRedisCluster', () => {
  let cluster: RedisCluster;
  beforeAll(async () => {
    cluster = await startRedisCluster();
  });
  afterAll(async () => {
    await cluster?.stop();
  });

  it('starts three masters that share the 16384 slots, each with a replica', async () => {
    const masters = await cluster.masters();
    expect(masters).toHaveLength(3);
    expect(masters.flatMap((master) => master.slots).reduce((sum, [from, to]) => sum + to - from + 1, 0)).toBe(16_384);
    expect(cluster.nodes).toHaveLength(6);
    expect(cluster.url).toMatch(/^redis\+cluster:\/\/(127\.0\.0\.1:\d+,){5}127\.0\.0\.1:\d+$/);
  });

  it('hands a killed master to its replica, and takes the old master back as a node', async () => {
    const client = new Cluster(
      cluster.nodes.map((node) => ({ host: '127.0.0.1', port: node.port })),
      { redisOptions: { maxRetriesPerRequest: 1 } },
    );
    client.on('error', () => undefined);
    try {
      await client.set('{chaos}:before', 'kept');
      const master = await cluster.masterOf('{chaos}:before');
      await cluster.kill(master);
      // Within the node timeout (2 s) and an election: poll the cluster, not the clock.
      await cluster.waitHealthy(20_000);
      const successor = await cluster.masterOf('{chaos}:before');
      expect(successor.port).not.toBe(master.port);
      await cluster.restart(master);
      await cluster.waitHealthy(20_000);
      expect((await cluster.masters()).map((entry) => entry.node.port)).not.toContain(master.port);
      expect(cluster.nodes.filter((node) => node.child.process.exitCode === null)).toHaveLength(6);
    } finally {
      client.disconnect();
    }
  });
});
