/** Redis Cluster URLs, apart from ioredis so that the settings' checks can use them without loading it. */

/** The seed nodes and credentials a `redis+cluster://` (or `rediss+cluster://`) URL names. */
export interface ClusterAddress {
  nodes: Array<{ host: string; port: number }>;
  tls: boolean;
  username?: string;
  password?: string;
}

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#@]+)\/?$/;

/**
 * Parses `redis+cluster://[user:password@]host:port,host:port,…`: any reachable node of the
 * cluster is enough, the client learns the others (and which master holds which slot) from it.
 * `rediss+cluster://` connects with TLS. Undefined for any URL that is not of this form.
 */
export function parseClusterUrl(url: string): ClusterAddress | undefined {
  const match = CLUSTER_URL.exec(url);
  if (!match) return undefined;
  const [, scheme, username, password, hosts = ''] = match;
  const nodes: ClusterAddress['nodes'] = [];
  for (const entry of hosts.split(',')) {
    const address = /^([A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(entry);
    if (!address?.[1]) return undefined;
    const port = Number(address[2] ?? 6379);
    if (port < 1 || port > 65_535) return undefined;
    nodes.push({ host: address[1], port });
  }
  return {
    nodes,
    tls: scheme === 'rediss',
    ...(username ? { username: decodeURIComponent(username) } : {}),
    ...(password ? { password: decodeURIComponent(password) } : {}),
  };
}

/** Whether `url` names a Redis Cluster (`redis+cluster://` or `rediss+cluster://`). */
export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//.test(url);
}
