/**
 * Issue 20 item 8: `mcp-pin sessions get/list/drop` as an operator runs it
 * (the installed command, a process of its own) against redis-server and a
 * Redis Cluster of the test's own, and against a session a real SDK client
 * opened through Envoy.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { startRedis, startRedisCluster, type ProcsHandle, type RedisHandle } from '../helpers/redis.js';
import { stackPerTest } from '../helpers/stack-fixture.js';
import { Redis } from 'ioredis';
import { RedisStore } from '../../src/sessions/redis-store.js';

const MCP_PIN = new URL('../../bin/mcp-pin.js', import.meta.url).pathname;

function cli(env: Record<string, string>, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [MCP_PIN, 'sessions', ...args], { env: { ...process.env, ...env }, timeout: 30_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('mcp-pin sessions on Redis (issue 20)', function () {
  const fx = stackPerTest();
  this.timeout(90_000);

  for (const kind of ['redis', 'redis-cluster'] as const) {
    describe(kind, () => {
      let redis: RedisHandle | ProcsHandle;
      let store: RedisStore;
      const env: Record<string, string> = {};
      before(async () => {
        redis = kind === 'redis' ? await startRedis() : await startRedisCluster();
        env.MCP_PIN_STORE_URL = redis.url;
        env.MCP_PIN_KEY_PREFIX = 'cli-test:';
        store = new RedisStore({ url: redis.url, keyPrefix: 'cli-test:', sessionTtlMs: 3_600_000, storeTimeoutMs: 2000 });
        await store.connect(5000);
        // 250 sessions over 3 pods (a Cluster spreads them over its 3 masters), and one lock key, which is no session.
        for (let i = 0; i < 250; i++) await store.create(`sess-${i}`, { pod: `10.0.0.${i % 3}:8080`, backendSessionId: `b-${i}`, initBody: Buffer.from('{}') });
        await store.tryLock('sess-1', 'token', 60_000);
      });
      after(async () => {
        await store.close();
        await ('dispose' in redis ? redis.dispose() : redis.stop());
      });

      it('lists every session of a pod exactly once over pages (SCAN cursor), none of another pod', async () => {
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const r = await cli(env, 'list', '--pod', '10.0.0.1:8080', '--limit', '20', '--json', ...(cursor ? ['--cursor', cursor] : []));
          expect(r.code, r.stderr).to.equal(0);
          const page = JSON.parse(r.stdout) as { sessions: { clientSessionId: string; pod: string }[]; cursor: string | null };
          expect(page.sessions.every((s) => s.pod === '10.0.0.1:8080')).to.equal(true);
          seen.push(...page.sessions.map((s) => s.clientSessionId));
          cursor = page.cursor;
          pages++;
        } while (cursor !== null && pages < 100);
        const want = Array.from({ length: 250 }, (_, i) => i)
          .filter((i) => i % 3 === 1)
          .map((i) => `sess-${i}`);
        expect([...seen].sort(), 'each session of the pod once').to.deep.equal([...want].sort());
        expect(pages, 'pages').to.be.greaterThan(1);
      });

      it('gets one session (pod, backend id, generation, TTL) and drops it', async () => {
        const g = await cli(env, 'get', 'sess-7', '--json');
        expect(g.code, g.stderr).to.equal(0);
        const info = JSON.parse(g.stdout) as { pod: string; backendSessionId: string; generation: number; ttlMs: number; recoverable: boolean };
        expect(info).to.include({ pod: '10.0.0.1:8080', backendSessionId: 'b-7', generation: 1, recoverable: true });
        expect(info.ttlMs).to.be.within(3_500_000, 3_600_000);
        // Its pod knows it by another id (b-7): dropping it would end it, so only with --force.
        const refused = await cli(env, 'drop', 'sess-7');
        expect(refused.code).to.equal(4);
        expect(refused.stderr).to.contain('not dropped: it was recovered');
        expect(await store.inspect('sess-7')).to.not.equal(null);
        const d = await cli(env, 'drop', 'sess-7', '--force');
        expect(d.code, d.stderr).to.equal(0);
        expect(d.stdout).to.contain('dropped sess-7 (was pinned to 10.0.0.1:8080');
        expect(await store.inspect('sess-7')).to.equal(null);
        expect((await cli(env, 'get', 'sess-7')).code).to.equal(1);
      });
    });
  }

  it('answers 3 with the store error when Redis does not answer', async () => {
    const r = await cli({ MCP_PIN_STORE_URL: 'redis://127.0.0.1:1' }, 'get', 'x');
    expect(r.code).to.equal(3);
    expect(r.stderr).to.match(/MCP_PIN_STORE_(UNAVAILABLE|TIMEOUT)/);
  });

  it('shows where a real session is pinned, the pod the client reaches', async () => {
    const stack = await fx.start({ pods: 2 });
    const c = await fx.client();
    const pod = stack.podByName((await c.whoami()).pod);
    const r = await cli({ MCP_PIN_STORE_URL: stack.storeUrl, MCP_PIN_KEY_PREFIX: stack.keyPrefix }, 'get', c.sessionId());
    expect(r.code, r.stderr).to.equal(0);
    expect(r.stdout).to.contain(`pod          ${pod.host}:${pod.port}`);
    const l = await cli({ MCP_PIN_STORE_URL: stack.storeUrl, MCP_PIN_KEY_PREFIX: stack.keyPrefix }, 'list', '--pod', `${pod.host}:${pod.port}`);
    expect(l.stdout).to.contain(c.sessionId());
  });

  it('never ends a live session by surprise: drop refuses a recovered session, and a dropped one is found again (issue 27, item 6)', async () => {
    const stack = await fx.start({ pods: 2, pinEnv: { MCP_PIN_PIN_CACHE_MS: '0' } });
    const env = { MCP_PIN_STORE_URL: stack.storeUrl, MCP_PIN_KEY_PREFIX: stack.keyPrefix };
    const c = await fx.client();
    const home = stack.podByName((await c.whoami()).pod);
    // Recovered: its pod knows it by another id. Refused, and it lives on.
    await home.restartInPlace();
    await c.echo('recovered');
    const refused = await cli(env, 'drop', c.sessionId());
    expect(refused.code).to.equal(4);
    expect(refused.stderr).to.contain('not dropped: it was recovered');
    expect((await c.echo('still here')).text).to.equal('still here');
    // A session found again by a search (adopted after the store lost it, no initialize kept): dropped, found again.
    const d = await fx.client();
    const where = (await d.whoami()).pod;
    const redis = new Redis(stack.redis!.url);
    await redis.del(`${stack.keyPrefix}{${d.sessionId()}}`);
    redis.disconnect();
    expect((await d.echo('adopted')).pod).to.equal(where);
    const dropped = await cli(env, 'drop', d.sessionId());
    expect(dropped.code, dropped.stderr).to.equal(0);
    expect((await d.echo('found again')).pod).to.equal(where);
    expect((await cli(env, 'get', d.sessionId())).code, 'pinned again').to.equal(0);
  });
});
