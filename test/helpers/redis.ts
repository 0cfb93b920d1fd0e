/** A redis-server of the test's own, on a free port, in its own directory. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedProcess } from './process.js';
import { canBind, eventually, freePort } from './net.js';
import { Redis } from 'ioredis';

export interface RedisHandle {
  url: string;
  port: number;
  proc: ManagedProcess;
  /** Its data directory (AOF), removed by dispose(). */
  dir: string;
  /** Stops and starts again on the same port and directory (AOF kept if on). */
  restart(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
  /** Stops it for good and removes its directory. */
  dispose(): Promise<void>;
}

/**
 * redis-server cannot bind port 0 and report the port, so a free port is
 * picked first; if another process took it meanwhile (the server exits with
 * "Address already in use"), it starts again on another.
 */
export async function startRedis(opts: { appendonly?: boolean } = {}): Promise<RedisHandle> {
  for (let attempt = 1; ; attempt++) {
    const handle = redisOn(await freePort(), opts);
    try {
      await handle.start();
      return handle;
    } catch (err) {
      await handle.stop();
      if (attempt >= 5 || !handle.proc.output.includes('Address already in use')) throw err;
    }
  }
}

function redisOn(port: number, opts: { appendonly?: boolean }): RedisHandle {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-pin-redis-'));
  // appendfsync always: a write the test saw acknowledged is on disk, so a
  // restart test needs no wait for the once-a-second fsync.
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--dir',
    dir,
    '--appendonly',
    opts.appendonly ? 'yes' : 'no',
    '--appendfsync',
    'always',
    '--enable-debug-command',
    'local',
  ];
  const proc = new ManagedProcess(`redis:${port}`, 'redis-server', args);
  const url = `redis://127.0.0.1:${port}`;
  const waitReady = (): Promise<void> => redisReady(port, { timeoutMs: 10_000, everyMs: 50, alive: () => proc.alive });
  return {
    url,
    port,
    proc,
    dir,
    async start() {
      proc.start();
      await waitReady();
    },
    async stop() {
      await proc.stop();
    },
    async dispose() {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    async restart() {
      await proc.stop();
      proc.start();
      await waitReady();
    },
  };
}

interface ReadyOptions {
  /** What "ready" means (default: PING answers PONG). */
  check?: (r: Redis) => Promise<boolean>;
  timeoutMs?: number;
  everyMs?: number;
  /** False once the server exited: stop waiting at once. */
  alive?: () => boolean;
  host?: string;
}

/** Waits until the server answers check; gives up at once if it exited (alive false). */
async function redisReady(port: number, opts: ReadyOptions = {}): Promise<void> {
  const { check = async (r: Redis) => (await r.ping()) === 'PONG', timeoutMs = 20_000, everyMs = 100, alive = () => true, host = '127.0.0.1' } = opts;
  await eventually(
    async () => {
      if (!alive()) return 'exited';
      const r = new Redis({ port, host, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => {});
      try {
        await r.connect();
        return (await check(r)) ? 'ready' : false;
      } finally {
        r.disconnect();
      }
    },
    `redis on ${host}:${port}`,
    timeoutMs,
    everyMs,
  ).then((state) => {
    if (state === 'exited') throw new Error(`redis-server on ${host}:${port} exited before it was ready`);
  });
}

export interface ProcsHandle {
  url: string;
  procs: ManagedProcess[];
  stop(): Promise<void>;
}

/** A port free on every one of hosts, with its cluster bus port (port + 10000). */
async function portFreeOn(hosts: string[]): Promise<number> {
  for (let tries = 0; tries < 50; tries++) {
    const p = await freePort(hosts[0]);
    if (p + 10_000 > 65_535) continue;
    const free = await Promise.all(hosts.flatMap((h) => [canBind(h, p), canBind(h, p + 10_000)]));
    if (free.every(Boolean)) return p;
  }
  throw new Error(`no port free on ${hosts.join(', ')} (and its bus port)`);
}

/**
 * A real three-master Redis Cluster of the test's own (cluster-enabled
 * servers + redis-cli --cluster create). Two masters share a port on
 * addresses of their own (as pods in Kubernetes), two share an address on
 * ports of their own (as several servers on one machine): both parts of a
 * node's address decide where it sorts.
 */
export async function startRedisCluster(): Promise<ProcsHandle> {
  const shared = await portFreeOn(['127.0.0.2', '127.0.0.3']);
  let other = await portFreeOn(['127.0.0.3']);
  while (other === shared) other = await portFreeOn(['127.0.0.3']);
  const nodes = [
    { host: '127.0.0.2', port: shared },
    { host: '127.0.0.3', port: shared },
    { host: '127.0.0.3', port: other },
  ];
  const procs = nodes.map(({ host, port }) => {
    const dir = mkdtempSync(join(tmpdir(), 'mcp-pin-cluster-'));
    return new ManagedProcess(`redis-cluster:${host}:${port}`, 'redis-server', [
      '--port',
      String(port),
      '--bind',
      host,
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      join(dir, 'nodes.conf'),
      '--cluster-node-timeout',
      '2000',
      // Its peers see loopback connections come from 127.0.0.1: the address to gossip is said outright.
      '--cluster-announce-ip',
      host,
    ]).start();
  });
  for (const n of nodes) await redisReady(n.port, { host: n.host });
  const create = new ManagedProcess('redis-cli --cluster create', 'redis-cli', [
    '--cluster',
    'create',
    ...nodes.map((n) => `${n.host}:${n.port}`),
    '--cluster-replicas',
    '0',
    '--cluster-yes',
  ]).start();
  const code = await create.waitExit(30_000);
  if (code !== 0) throw new Error(`cluster create failed:\n${create.output}`);
  for (const n of nodes) await redisReady(n.port, { host: n.host, check: async (r) => String(await r.call('CLUSTER', 'INFO')).includes('cluster_state:ok') });
  return {
    url: `redis-cluster://${nodes.map((n) => `${n.host}:${n.port}`).join(',')}`,
    procs,
    stop: async () => {
      await Promise.all(procs.map((p) => p.stop()));
    },
  };
}

/** A master and one Sentinel watching it (redis-server --sentinel), of the test's own. */
export async function startRedisSentinel(): Promise<ProcsHandle> {
  const master = await startRedis();
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mcp-pin-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor mcppin 127.0.0.1 ${master.port} 1`,
      'sentinel down-after-milliseconds mcppin 2000',
      '',
    ].join('\n'),
  );
  const sentinel = new ManagedProcess(`sentinel:${port}`, 'redis-server', [conf, '--sentinel']).start();
  await redisReady(port, { check: async (r) => Array.isArray(await r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mcppin')) });
  return {
    url: `redis-sentinel://127.0.0.1:${port}/mcppin`,
    procs: [master.proc, sentinel],
    stop: async () => {
      await sentinel.stop();
      await master.stop();
    },
  };
}
