/**
 * deploy/overlays/redis-sentinel (issue 30 item 4): the script each member
 * of its StatefulSet runs (redis-ha.sh), really run: three Redis servers and
 * three Sentinels on 127.0.0.31-33 (each "pod" its own address, the ports
 * the overlay uses), and mcp-pin's RedisStore on the overlay's store URL
 * shape. A first start elects member 0; after its Redis is killed the
 * Sentinels fail over and the store keeps every pin and takes new ones; the
 * member that comes back follows the new master instead of starting a second one.
 */
import { expect } from 'chai';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/sessions/redis-store.js';
import { eventually } from '../helpers/net.js';
import { ManagedProcess } from '../helpers/process.js';
import { registerForReport } from '../helpers/root-hooks.js';

const SCRIPT = new URL('../../deploy/overlays/redis-sentinel/redis-ha.sh', import.meta.url).pathname;
const HOSTS = ['127.0.0.31', '127.0.0.32', '127.0.0.33'];
const PASSWORD = 'test-password';
const MASTER = 'mcppin';

describe('the Redis Sentinel example (deploy/overlays/redis-sentinel)', function () {
  this.timeout(120_000);
  const dir = mkdtempSync(join(tmpdir(), 'mcp-pin-redis-ha-'));
  const procs = new Map<string, ManagedProcess>();
  const unregister = registerForReport(() => [...procs.values()]);
  let store: RedisStore | undefined;
  after(async () => {
    unregister();
    await store?.close();
    await Promise.all([...procs.values()].map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  });

  const start = (role: 'redis' | 'sentinel', i: number): ManagedProcess => {
    const data = join(dir, `${role}-${i}`);
    mkdirSync(data, { recursive: true });
    const p = new ManagedProcess(`${role}-${i}`, 'sh', [SCRIPT, role], {
      SELF_HOST: HOSTS[i]!,
      FIRST_HOST: HOSTS[0]!,
      SENTINEL_HOSTS: HOSTS.join(' '),
      MASTER_NAME: MASTER,
      REDIS_PASSWORD: PASSWORD,
      BIND: HOSTS[i]!,
      DATA_DIR: data,
      DOWN_AFTER_MS: '1000',
    }).start();
    procs.set(`${role}-${i}`, p);
    return p;
  };
  const client = (host: string, port: number): Redis => {
    const r = new Redis({ host, port, password: port === 6379 ? PASSWORD : undefined, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    r.on('error', () => {});
    return r;
  };
  const ask = async <T>(host: string, port: number, fn: (r: Redis) => Promise<T>): Promise<T> => {
    const r = client(host, port);
    try {
      await r.connect();
      return await fn(r);
    } finally {
      r.disconnect();
    }
  };
  const masterNow = (): Promise<string | undefined> =>
    ask(HOSTS[1]!, 26379, async (r) => ((await r.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER)) as string[] | null)?.[0]).catch(() => undefined);
  const role = (host: string): Promise<string> => ask(host, 6379, async (r) => ((await r.call('ROLE')) as string[])[0]!);

  it('elects member 0 at first, fails over when it dies, keeps every pin, and the member that returns follows the new master', async () => {
    for (const i of [0, 1, 2]) start('redis', i);
    for (const i of [0, 1, 2]) start('sentinel', i);
    // First start: member 0 leads, both others replicate it, every Sentinel knows the others (a quorum of 2 can act).
    await eventually(
      async () => {
        const [replicas, ...peers] = await Promise.all([
          ask(HOSTS[0]!, 26379, (r) => r.call('SENTINEL', 'REPLICAS', MASTER) as Promise<unknown[]>),
          ...HOSTS.map((h) => ask(h, 26379, (r) => r.call('SENTINEL', 'SENTINELS', MASTER) as Promise<unknown[]>)),
        ]);
        return (await masterNow()) === HOSTS[0] && replicas.length === 2 && peers.every((p) => p.length === 2);
      },
      'member 0 master with 2 replicas, 3 Sentinels that know each other',
      30_000,
      200,
    );
    expect(await role(HOSTS[1]!)).to.equal('slave');

    // mcp-pin's store on the overlay's URL shape: every Sentinel listed, the password for the Redis servers.
    store = new RedisStore({
      url: `redis-sentinel://:${PASSWORD}@${HOSTS.map((h) => `${h}:26379`).join(',')}/${MASTER}`,
      keyPrefix: 'ha:',
      sessionTtlMs: 600_000,
      storeTimeoutMs: 1000,
    });
    await store.connect();
    for (let i = 0; i < 20; i++)
      expect(await store.create(`before-${i}`, { pod: '10.0.0.1:8080', backendSessionId: `before-${i}`, initBody: null })).to.equal(true);
    // Replicated to both before the master goes (replication is asynchronous).
    expect(await ask(HOSTS[0]!, 6379, (r) => r.call('WAIT', '2', '5000'))).to.equal(2);

    await procs.get('redis-0')!.kill();
    await eventually(async () => ((await masterNow()) ?? HOSTS[0]) !== HOSTS[0], 'the Sentinels failed over', 30_000, 200);
    const promoted = (await masterNow())!;
    expect(HOSTS.slice(1)).to.include(promoted);
    // The store follows: old pins are there, new ones are taken (retrying while it reconnects).
    await eventually(
      async () => (await store!.create('after-0', { pod: '10.0.0.2:8080', backendSessionId: 'after-0', initBody: null }).catch(() => false)) === true,
      'a new pin on the new master',
      20_000,
      200,
    );
    for (let i = 0; i < 20; i++) expect((await store.lookup(`before-${i}`))?.pod, `before-${i}`).to.equal('10.0.0.1:8080');

    // Member 0 comes back (as a pod restarts, its data kept): it asks the Sentinels and follows the new master.
    // Its very first answer already says replica: it never ran as a second master (the
    // Sentinels would demote one a moment later, after it had taken writes that are then lost).
    start('redis', 0);
    const firstRole = await eventually(async () => role(HOSTS[0]!).catch(() => undefined), 'member 0 answers again', 20_000, 20);
    expect(firstRole, 'member 0 at its first answer').to.equal('slave');
    expect(await masterNow()).to.equal(promoted);
    expect((await store.lookup('after-0'))?.pod).to.equal('10.0.0.2:8080');
  });
});
