/** A redis-server of the test's own, on a free port, in its own directory. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedProcess } from './process.js';
import { eventually, freePort } from './net.js';
import { Redis } from 'ioredis';

export interface RedisHandle {
  url: string;
  port: number;
  proc: ManagedProcess;
  /** Stops and starts again on the same port and directory (AOF kept if on). */
  restart(): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startRedis(opts: { appendonly?: boolean } = {}): Promise<RedisHandle> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'mcp-pin-redis-'));
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--dir', dir, '--appendonly', opts.appendonly ? 'yes' : 'no', '--appendfsync', 'everysec', '--enable-debug-command', 'local'];
  const proc = new ManagedProcess(`redis:${port}`, 'redis-server', args);
  const url = `redis://127.0.0.1:${port}`;
  const waitReady = async (): Promise<void> => {
    await eventually(async () => {
      const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      r.on('error', () => {});
      try {
        await r.connect();
        return (await r.ping()) === 'PONG';
      } finally {
        r.disconnect();
      }
    }, `redis on ${port}`);
  };
  const handle: RedisHandle = {
    url,
    port,
    proc,
    async start() {
      proc.start();
      await waitReady();
    },
    async stop() {
      await proc.stop();
    },
    async restart() {
      await proc.stop();
      proc.start();
      await waitReady();
    },
  };
  await handle.start();
  return handle;
}
