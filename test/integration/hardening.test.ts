/**
 * Issue 7: no open proxy, odd session ids, bodies, Redis faults and data
 * loss, against real Envoy, redis-server, SDK pods and the SDK client.
 */
import { expect } from 'chai';
import { createServer, request, type Server } from 'node:http';
import { Redis } from 'ioredis';
import { connectClient, type TestClient } from '../helpers/mcp-client.js';
import { eventually } from '../helpers/net.js';
import { stackPerTest } from '../helpers/stack-fixture.js';

const MCP = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
/** What an initialize carries: no session id and no MCP-Protocol-Version, so it goes through mcp-pin. */
/** Fail-fast and store-checking tests: every request reads the store (the default 1 s pin cache would answer for it). */
const NO_PIN_CACHE = { MCP_PIN_PIN_CACHE_MS: '0' };
const INIT = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
/** The pods live on 127.0.0.2-127.0.0.15; Redis, Envoy's admin and the canaries do not. */
const POD_NETWORKS = '127.0.0.2/31,127.0.0.4/30,127.0.0.8/29';

/** An HTTP server that counts every request reaching it: a target a forged pin must never hit. */
async function canary(host: string): Promise<{ server: Server; hits: () => number; address: string }> {
  let hits = 0;
  const server = createServer((_req, res) => {
    hits++;
    res.end('canary');
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const a = server.address();
  return { server, hits: () => hits, address: `${host}:${typeof a === 'object' && a ? a.port : 0}` };
}

describe('hardening (issue 7)', function () {
  this.timeout(120_000);
  const fx = stackPerTest();
  const servers: Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });
  async function client(headers?: Record<string, string>): Promise<TestClient> {
    const c = await connectClient(fx.stack.mcpUrl, headers ? { headers } : {});
    fx.clients.push(c);
    return c;
  }

  describe('no open proxy', () => {
    beforeEach(async () => {
      // Every request reads the store here (no pin cache), so a poisoned entry is seen at once.
      await fx.start({ pods: 2, pinEnv: { MCP_PIN_PIN_ALLOW: POD_NETWORKS, ...NO_PIN_CACHE } });
    });

    it('never lets a forged pin header reach Redis, Envoy admin or an address outside the allowlist', async () => {
      const loop = await canary('127.0.0.1');
      const outside = await canary('127.0.0.20');
      servers.push(loop.server, outside.server);
      const targets = [`127.0.0.1:${fx.stack.redis!.port}`, new URL(fx.stack.envoy.adminUrl).host, loop.address, outside.address];
      for (const target of targets) {
        // Without a session (initialize), and with one.
        const c = await client({ 'x-mcp-pin-dst': target });
        const who = await c.whoami();
        expect(['pod1', 'pod2'], target).to.include(who.pod);
        for (let i = 0; i < 3; i++) expect((await c.echo(`${target} ${i}`)).pod).to.equal(who.pod);
        for (const method of ['GET', 'DELETE', 'POST']) {
          const res = await fetch(fx.stack.mcpUrl, {
            method,
            headers: { ...MCP, 'x-mcp-pin-dst': target },
            ...(method === 'POST' ? { body: '{"jsonrpc":"2.0","id":1,"method":"ping"}' } : {}),
          });
          expect(await res.text(), `${method} ${target}`).to.not.equal('canary');
        }
      }
      expect(loop.hits() + outside.hits(), 'requests that reached a forged target').to.equal(0);
    });

    it('lets only mcp-pin use the internal listener, and even there a pin reaches only the pods', async () => {
      const loop = await canary('127.0.0.1');
      servers.push(loop.server);
      const internal = new URL(fx.stack.envoy.internalUrl);
      const post = (localAddress: string, target: string): Promise<{ status: number; body: string }> =>
        new Promise((resolve, reject) => {
          const req = request(
            { host: internal.hostname, port: internal.port, path: '/mcp', method: 'POST', localAddress, headers: { ...MCP, 'x-mcp-pin-dst': target } },
            (res) => {
              let body = '';
              res.setEncoding('utf8');
              res.on('data', (c: string) => (body += c));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
            },
          );
          req.on('error', reject);
          req.end('{"jsonrpc":"2.0","id":1,"method":"ping"}');
        });
      // From a pod's address (say, untrusted tool code on an MCP server): refused by Envoy.
      for (const target of [loop.address, `${fx.stack.pods[1]!.host}:${fx.stack.pods[1]!.port}`]) {
        const r = await post(fx.stack.pods[0]!.host, target);
        expect(r.status, target).to.equal(403);
      }
      // From mcp-pin's address, aimed outside the pods: Envoy sends it to a pod instead (override_host).
      const r = await post('127.0.0.1', loop.address);
      expect(r.body).to.not.equal('canary');
      expect(loop.hits(), 'requests that reached the canary').to.equal(0);
    });

    it('drops a poisoned store entry (aimed at Redis, the admin port, outside addresses) and finds the real pod again', async () => {
      const outside = await canary('127.0.0.20');
      servers.push(outside.server);
      const c = await client();
      const home = (await c.whoami()).pod;
      const redis = new Redis(fx.stack.redis!.url);
      const [key] = await redis.keys('*');
      try {
        for (const poison of [`127.0.0.1:${fx.stack.redis!.port}`, new URL(fx.stack.envoy.adminUrl).host, outside.address]) {
          await redis.hset(key!, 'pod', poison);
          expect((await c.echo(poison)).pod, `after poisoning with ${poison}`).to.equal(home);
          const pod = await redis.hget(key!, 'pod');
          expect(pod, 're-adopted from what Envoy reported').to.match(/^127\.0\.0\.(2|3):\d+$/);
        }
      } finally {
        redis.disconnect();
      }
      expect(outside.hits()).to.equal(0);
      expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="rejected_pin"}')).to.equal(3);
      expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="adopted"}')).to.equal(3);
    });
  });

  describe('input', () => {
    beforeEach(async () => {
      await fx.start({ pods: 2, pinEnv: { MCP_PIN_MAX_INIT_BODY_BYTES: '512' } });
    });

    it('answers odd, invalid and guessed session ids 404 without a session record: invalid ones reach no pod, an unknown one is searched for once and then remembered (for every replica, briefly)', async () => {
      const redis = new Redis(fx.stack.redis!.url);
      const keysBefore = new Set(await redis.keys('*'));
      // Over --max-session-id-length (256) or with characters outside visible ASCII: no pod could hold them.
      const invalid = ['k'.repeat(300), 'x'.repeat(5000), '" OR 1=1 --'];
      const unknown = ['{x}', 'a}b{', '*', '..%2f..', 'guessed-0000'];
      const send = async (sid: string): Promise<void> => {
        const res = await fetch(fx.stack.mcpUrl, {
          method: 'POST',
          headers: { ...MCP, 'mcp-session-id': sid },
          body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
        });
        expect(res.status, sid.slice(0, 20)).to.equal(404);
        expect(((await res.json()) as { error: { code: number } }).error.code, sid.slice(0, 20)).to.be.oneOf([-32001, -32600]);
      };
      // What the pods themselves saw of each id.
      const onPods = async (sid: string): Promise<number> =>
        (await Promise.all(fx.stack.pods.map((p) => p.record()))).flatMap((r) => r.requests).filter((r) => r.sessionId === sid).length;
      for (const sid of invalid) {
        for (let i = 0; i < 3; i++) await send(sid);
        expect(await onPods(sid), sid.slice(0, 20)).to.equal(0);
      }
      for (const sid of unknown) {
        await send(sid);
        const searched = await onPods(sid);
        expect(searched, `${sid}: the first time, the pods are asked`).to.be.at.least(1);
        for (let i = 0; i < 3; i++) await send(sid);
        expect(await onPods(sid), `${sid}: repeats reach no pod`).to.equal(searched);
      }
      expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="invalid_session_id"}')).to.equal(9);
      expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="unknown_session_remembered"}')).to.equal(15);
      // No session record: the only keys are the store's memory of the unknown ids (for every
      // replica), each expiring within --unknown-session-cache-ms (5 s).
      const added = (await redis.keys('*')).filter((k) => !keysBefore.has(k));
      expect(
        added.every((k) => k.endsWith(':unknown')),
        added.join(', '),
      ).to.equal(true);
      expect(added).to.have.length(unknown.length);
      for (const k of added) expect(await redis.pttl(k), k).to.be.within(1, 5000);
      redis.disconnect();
      expect(fx.stack.pins[0]!.proc.alive).to.equal(true);
    });

    it('answers an oversized request with Envoy 413 and passes malformed, batched and non-JSON bodies through', async () => {
      const pad = 'x'.repeat(2 * 1024 * 1024);
      const big = await fetch(fx.stack.mcpUrl, {
        method: 'POST',
        headers: INIT,
        body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { pad } }),
      });
      expect(big.status).to.equal(413);
      expect(((await big.json()) as { error: { code: number } }).error.code, "a JSON-RPC body from Envoy's local reply mapping").to.equal(-32603);
      const cases: [string, Record<string, string>][] = [
        ['{"jsonrpc":"2.0", this is not json', INIT],
        ['[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"ping"}]', INIT],
        ['[]', INIT],
        ['null', INIT],
        ['initialize', { ...INIT, 'content-type': 'text/plain' }],
        // Session-less (a protocol version, no session id): not buffered by Envoy, the pod's answer whatever the size.
        [JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: { pad } }), MCP],
        ['{"jsonrpc":"2.0", this is not json', MCP],
      ];
      for (const [body, headers] of cases) {
        const viaProxy = await fetch(fx.stack.mcpUrl, { method: 'POST', headers, body });
        const direct = await fetch(`http://${fx.stack.pods[0]!.host}:${fx.stack.pods[0]!.port}/mcp`, { method: 'POST', headers, body });
        expect(viaProxy.status, body).to.equal(direct.status);
        expect(await viaProxy.text(), body).to.equal(await direct.text());
      }
      expect(fx.stack.pins[0]!.proc.alive).to.equal(true);
    });

    it('pins a session whose initialize is over the stored-body limit; it works, but cannot be recovered', async () => {
      const c = await connectClient(fx.stack.mcpUrl, { name: `big-client-${'x'.repeat(800)}` });
      fx.clients.push(c);
      const home = fx.stack.podByName((await c.whoami()).pod);
      for (let i = 0; i < 3; i++) expect((await c.echo(String(i))).pod).to.equal(home.name);
      await home.restartInPlace();
      const err = await c.echo('after').then(
        () => null,
        (e: Error) => e,
      );
      expect(err?.message).to.match(/404|Session not found/);
    });
  });

  describe('Redis faults', () => {
    it('fails fast with a JSON-RPC error while Redis is down, shows it in health, and resumes with every pin (AOF) when it is back', async () => {
      await fx.start({ pods: 2, redisAppendOnly: true, pinEnv: NO_PIN_CACHE });
      const cs = await Promise.all(Array.from({ length: 4 }, () => client()));
      const homes = await Promise.all(cs.map(async (c) => (await c.whoami()).pod));
      // (The test Redis fsyncs every write: what mcp-pin wrote is on disk now.)
      await fx.stack.redis!.stop();
      const t0 = Date.now();
      const res = await fetch(fx.stack.mcpUrl, {
        method: 'POST',
        headers: { ...MCP, 'mcp-session-id': cs[0]!.sessionId() },
        body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
      });
      const took = Date.now() - t0;
      expect(res.status).to.equal(503);
      expect(((await res.json()) as { error: { code: number; message: string } }).error.message).to.match(/session store unavailable/);
      expect(took, 'bounded by the store timeout').to.be.lessThan(1000);
      await eventually(async () => (await fetch(`http://127.0.0.1:${fx.stack.pins[0]!.metricsPort}/healthz`)).status === 503, 'NOT_SERVING');
      const initsBefore = (await Promise.all(fx.stack.pods.map(async (p) => (await p.record()).initialize.length))).reduce((a, b) => a + b);
      await fx.stack.redis!.start();
      await eventually(async () => (await fetch(`http://127.0.0.1:${fx.stack.pins[0]!.metricsPort}/healthz`)).status === 200, 'SERVING again', 10_000);
      const answers = await Promise.all(cs.map((c, i) => c.echo(`back ${i}`)));
      for (const [i, a] of answers.entries()) expect(a.pod, `client ${i}`).to.equal(homes[i]);
      const initsAfter = (await Promise.all(fx.stack.pods.map(async (p) => (await p.record()).initialize.length))).reduce((a, b) => a + b);
      expect(initsAfter, 'no session had to be re-initialized').to.equal(initsBefore);
      expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="adopted"}'), 'pins came back from the AOF, not by adoption').to.equal(0);
    });

    it('keeps routing pinned sessions from the pin cache while Redis is down, and fails fast for the rest', async () => {
      await fx.start({ pods: 2, pinEnv: { MCP_PIN_PIN_CACHE_MS: '60000' } });
      const cached = await client();
      const home = (await cached.whoami()).pod;
      await fx.stack.redis!.stop();
      // The cached pin still routes (no store round trip), to the same pod.
      for (let i = 0; i < 3; i++) expect((await cached.echo(`down ${i}`)).pod).to.equal(home);
      // A session id this replica has not cached needs the store: 503 at once.
      const res = await fetch(fx.stack.mcpUrl, {
        method: 'POST',
        headers: { ...MCP, 'mcp-session-id': 'never-cached-session' },
        body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
      });
      expect(res.status).to.equal(503);
      await res.body?.cancel();
    });

    it('fails fast when Redis is slow (CLIENT PAUSE), then serves again', async () => {
      await fx.start({ pods: 2, pinEnv: NO_PIN_CACHE });
      const c = await client();
      const admin = new Redis(fx.stack.redis!.url);
      try {
        // Scripts (mcp-pin's lookups) wait from the moment this returns.
        await admin.call('CLIENT', 'PAUSE', '5000', 'WRITE');
        const t0 = Date.now();
        const res = await fetch(fx.stack.mcpUrl, {
          method: 'POST',
          headers: { ...MCP, 'mcp-session-id': c.sessionId() },
          body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
        });
        expect(res.status).to.equal(503);
        await res.arrayBuffer();
        expect(Date.now() - t0).to.be.lessThan(1000);
        await admin.call('CLIENT', 'UNPAUSE');
      } finally {
        admin.disconnect();
      }
      expect((await c.echo('after')).text).to.equal('after');
    });

    it('adopts sessions back after Redis lost its data: no client error, each on its own pod; a session no pod holds gets 404', async () => {
      await fx.start({ pods: 2, pinEnv: NO_PIN_CACHE });
      const cs = await Promise.all(Array.from({ length: 6 }, () => client()));
      const homes = await Promise.all(cs.map(async (c) => (await c.whoami()).pod));
      expect(new Set(homes).size).to.equal(2);
      const admin = new Redis(fx.stack.redis!.url);
      await admin.flushall();
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all(cs.map((c, i) => c.echo(`${round}/${i}`)));
        for (const [i, a] of answers.entries()) expect(a.pod, `client ${i} round ${round}`).to.equal(homes[i]);
      }
      expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="adopted"}')).to.equal(6);
      expect((await admin.keys('*')).length).to.equal(6);
      admin.disconnect();
      // Adopted pins route directly again: later calls are pinned, not searched.
      const pinnedBefore = await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="pinned"}');
      await cs[0]!.echo('pinned again');
      expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="pinned"}')).to.be.greaterThan(pinnedBefore);
      const gone = await fetch(fx.stack.mcpUrl, {
        method: 'POST',
        headers: { ...MCP, 'mcp-session-id': 'no-pod-has-this' },
        body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
      });
      expect(gone.status).to.equal(404);
      await gone.arrayBuffer();
    });
  });
});
