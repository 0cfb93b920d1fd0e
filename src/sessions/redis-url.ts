/**
 * Store URLs for Redis deployments:
 *   redis://[user:pass@]host:port[/db]     rediss:// for TLS    one server
 *   redis-sentinel://[user:pass@]h1:p1,h2:p2/<master name>        Sentinel
 *   redis-cluster://[user:pass@]h1:p1,h2:p2                         Cluster
 */
import { ConfigValueError } from '../errors.js';
import { splitHostPort } from '../host-port.js';

export type RedisTarget =
  | { kind: 'single'; url: string }
  | { kind: 'sentinel'; sentinels: { host: string; port: number }[]; name: string; username?: string; password?: string }
  | { kind: 'cluster'; nodes: { host: string; port: number }[]; username?: string; password?: string };

function hosts(list: string, scheme: string): { host: string; port: number }[] {
  const out = list.split(',').map((hp) => {
    // Without a port (no colon after the host, a bare [v6] included): the scheme's default.
    const hasPort = hp.startsWith('[') ? hp.includes(']:') : hp.includes(':');
    const split = hasPort ? splitHostPort(hp) : { host: hp.replace(/^\[(.*)\]$/, '$1'), port: scheme === 'redis-sentinel' ? 26379 : 6379 };
    const host = split?.host ?? '';
    const port = split?.port ?? Number.NaN;
    // Brackets only ever wrap a whole IPv6 literal: anything else with one is no host.
    if (!host || /[[\]]/.test(host) || !Number.isInteger(port) || port < 1 || port > 65535)
      throw new ConfigValueError(`bad host:port "${hp}" in ${scheme} URL`);
    return { host, port };
  });
  if (out.length === 0) throw new ConfigValueError(`${scheme} URL names no host`);
  return out;
}

export function parseRedisUrl(url: string): RedisTarget {
  const m = /^(redis|rediss|redis-sentinel|redis-cluster):\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)(?:\/([^?#]*))?$/.exec(url);
  if (!m) throw new ConfigValueError(`not a Redis URL: ${url.replace(/\/\/[^@]*@/, '//***@')}`);
  const [, scheme = '', user, pass, hostList = '', path] = m;
  const auth = {
    ...(user ? { username: decodeURIComponent(user) } : {}),
    ...(pass !== undefined ? { password: decodeURIComponent(pass) } : {}),
  };
  if (scheme === 'redis' || scheme === 'rediss') return { kind: 'single', url };
  if (scheme === 'redis-sentinel') {
    if (!path) throw new ConfigValueError('redis-sentinel URL needs the master name as its path, e.g. redis-sentinel://h1:26379,h2:26379/mymaster');
    return { kind: 'sentinel', sentinels: hosts(hostList, scheme), name: decodeURIComponent(path), ...auth };
  }
  return { kind: 'cluster', nodes: hosts(hostList, scheme), ...auth };
}
