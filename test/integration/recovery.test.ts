/**
 * Issue 4: transparent recovery, against real Envoy 1.40, redis-server, SDK
 * pods and the SDK client. Pod records say what really happened on the pods.
 */
import { expect } from 'chai';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import { connectClient, type TestClient } from '../helpers/mcp-client.js';
import { eventually } from '../helpers/net.js';
import { initializeCounts, type Pod } from '../helpers/pod.js';
import { stackPerTest } from '../helpers/stack-fixture.js';
import type { StackOptions } from '../helpers/stack.js';

describe('transparent recovery (issue 4)', function () {
  this.timeout(120_000);
  const fx = stackPerTest();

  async function up(opts: StackOptions = {}): Promise<void> {
    await fx.start({ pods: 2, store: 'redis', ...opts });
  }
  async function client(): Promise<TestClient> {
    const c = await connectClient(fx.stack.mcpUrl);
    fx.clients.push(c);
    return c;
  }
  /** A connected client, the pod its session is pinned to, and the other pod. */
  async function pinnedClient(): Promise<{ c: TestClient; sid: string; home: Pod; other: Pod }> {
    const c = await client();
    const home = fx.stack.podByName((await c.whoami()).pod);
    return { c, sid: c.sessionId(), home, other: fx.stack.pods.find((p) => p !== home)! };
  }

  /** A tools/list of the session, raw (to read the status and error body the SDK client would turn into an exception). */
  function listTools(sid: string): Promise<Response> {
    return fetch(fx.stack.mcpUrl, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        'mcp-session-id': sid,
        'mcp-protocol-version': '2025-11-25',
      },
      body: '{"jsonrpc":"2.0","id":9,"method":"tools/list"}',
    });
  }

  /** The client never saw any session id but its own, on any response. */
  function onlyOwnIdSeen(c: TestClient, sid: string): void {
    const foreign = c.seen.filter((s) => s.sessionId !== null && s.sessionId !== sid);
    expect(foreign, 'responses carrying another session id').to.deep.equal([]);
  }

  it('recovers when the pod restarts in place: next tool call succeeds, same client id, one initialize + one initialized', async () => {
    await up();
    const { c, sid, home } = await pinnedClient();
    const before = await initializeCounts(fx.stack.pods.filter((p) => p !== home));
    await home.restartInPlace();
    const r = await c.echo('after restart');
    expect(r.text).to.equal('after restart');
    expect(c.sessionId()).to.equal(sid);
    const after = await initializeCounts(fx.stack.pods);
    // The restarted pod's counts start from zero; the other pod's from `before`.
    expect(after.initialize - before.initialize, 're-initializes').to.equal(1);
    expect(after.initialized - before.initialized, 'notifications/initialized').to.equal(1);
    // Later calls stay on the recovered pod, under the client's id.
    const again = await c.echo('again');
    expect(again.pod).to.equal(r.pod);
    onlyOwnIdSeen(c, sid);
    expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="recovered"}')).to.be.at.least(1);
  });

  it('recovers when the pod is rescheduled to a new address (old address refuses, EDS updated)', async () => {
    await up();
    const { c, sid, home, other } = await pinnedClient();
    const before = await initializeCounts([other]);
    const oldAddress = `${home.host}:${home.port}`;
    await home.moveTo('127.0.0.9');
    await fx.stack.envoy.setPods(fx.stack.pods.map((p) => p.address));
    const r = await c.echo('moved');
    expect(r.text).to.equal('moved');
    expect(c.sessionId()).to.equal(sid);
    const after = await initializeCounts(fx.stack.pods);
    expect(after.initialize - before.initialize).to.equal(1);
    expect(after.initialized - before.initialized).to.equal(1);
    // The pin names a pod that is there now (whichever the retry reached), not the address that refuses.
    const r2 = new Redis(fx.stack.redis!.url);
    const stored = await r2.hget(`${fx.stack.keyPrefix}{${sid}}`, 'pod');
    r2.disconnect();
    expect(fx.stack.pods.map((p) => `${p.host}:${p.port}`)).to.include(stored);
    expect(stored).to.not.equal(oldAddress);
    onlyOwnIdSeen(c, sid);
  });

  it("recovers when the pod crashed and discovery still lists it (its address refuses; Envoy's own 503 is no proof the pod holds the session)", async () => {
    await up();
    const { c, sid, other } = await pinnedClient();
    const before = await initializeCounts([other]);
    const home = fx.stack.podByName((await c.whoami()).pod);
    await home.kill();
    const r = await c.echo('after crash');
    expect(r).to.deep.equal({ pod: other.name, text: 'after crash' });
    expect(c.sessionId()).to.equal(sid);
    const after = await initializeCounts([other]);
    expect(after.initialize - before.initialize, 're-initializes').to.equal(1);
    onlyOwnIdSeen(c, sid);
  });

  // With 4 pods the retries of the 20 calls land on the three other pods: those
  // not on the pod the recovery chose are relayed there by mcp-pin.
  for (const [replicas, pinCacheMs, pods] of [
    [1, 0, 2],
    [2, 0, 2],
    [2, 5000, 2],
    [2, 0, 4],
  ] as const) {
    it(`runs exactly one re-initialize for 20 concurrent calls after the pod restarted (${pods} pods, ${replicas} mcp-pin replica${replicas > 1 ? 's' : ''}${pinCacheMs ? `, ${pinCacheMs} ms pin cache` : ''})`, async () => {
      await up({ pods, replicas, pinEnv: { MCP_PIN_PIN_CACHE_MS: String(pinCacheMs) } });
      const { c, sid, home } = await pinnedClient();
      const before = await initializeCounts(fx.stack.pods.filter((p) => p !== home));
      await home.restartInPlace();
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => c.echo(`c${i}`)));
      expect(answers.map((a) => a.text)).to.deep.equal(Array.from({ length: 20 }, (_, i) => `c${i}`));
      expect(new Set(answers.map((a) => a.pod)).size, 'all on one pod').to.equal(1);
      const after = await initializeCounts(fx.stack.pods);
      expect(after.initialize - before.initialize, 'initializes that reached the pods').to.equal(1);
      expect(c.sessionId()).to.equal(sid);
      onlyOwnIdSeen(c, sid);
      // Every call ran exactly once, on the pod that answered it (the pods' own records), whichever replica or relay carried it.
      const ran = async (): Promise<string[]> =>
        (
          await Promise.all(
            fx.stack.pods.map(async (p) => (await p.record()).requests.filter((r) => r.rpcMethod === 'tools/call' && r.status === 200).map(() => p.name)),
          )
        ).flat();
      await eventually(async () => (await ran()).length >= 20, 'the pods recorded 20 answered calls');
      expect(await ran(), 'each call ran once, on the recovered pod').to.deep.equal(Array.from({ length: 20 }, () => answers[0]!.pod));
    });
  }

  it('recovers from what Redis holds after mcp-pin restarted and then the pod restarted', async () => {
    await up();
    const { c, sid, home } = await pinnedClient();
    await fx.stack.pins[0]!.restart();
    await home.restartInPlace();
    expect((await c.echo('both restarted')).text).to.equal('both restarted');
    expect(c.sessionId()).to.equal(sid);
    onlyOwnIdSeen(c, sid);
  });

  it('does not recover a DELETE after the pod died: no re-init, the pin is gone', async () => {
    await up();
    const { sid, home, other } = await pinnedClient();
    await home.kill();
    const before = (await other.record()).initialize.length;
    const res = await fetch(fx.stack.mcpUrl, { method: 'DELETE', headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' } });
    expect(res.status).to.equal(503);
    await res.body?.cancel();
    expect((await other.record()).initialize.length, 'no re-initialize').to.equal(before);
    expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="session_deleted"}')).to.equal(1);
    // Gone: the id now takes the service route and the live pod answers 404.
    // Discovery drops the dead pod first, as Kubernetes does: while it is
    // still listed, the search's last retry can land on it and answer 503
    // (connection refused) instead (seen once in about a dozen runs).
    await fx.stack.envoy.setPods([other.address]);
    const next = await fetch(fx.stack.mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid },
      body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
    });
    expect(next.status).to.equal(404);
    await next.body?.cancel();
    expect((await other.record()).initialize.length).to.equal(before);
  });

  it('keeps the session when every pod fails the re-initialize for now (503): the client gets 503 "did not run, session kept", and the next call after the pods recover is served', async () => {
    await up();
    const c = await client();
    const sid = c.sessionId();
    const r = new Redis(fx.stack.redis!.url);
    const key = `${fx.stack.keyPrefix}{${sid}}`;
    try {
      const before = await r.hgetallBuffer(key);
      await Promise.all(fx.stack.pods.map((p) => p.restartInPlace({ POD_REFUSE_INIT: '1' })));
      const raw = await listTools(sid);
      expect(raw.status).to.equal(503);
      const body = (await raw.json()) as { error: { code: number; message: string } };
      expect(body.error.code).to.equal(-32603);
      expect(body.error.message).to.match(/did not run and the session is kept/);
      // A transient failure keeps the record and its initialize body.
      const after = await r.hgetallBuffer(key);
      expect(after.gen!.toString()).to.equal('1');
      expect(after.init!.equals(before.init!), 'initialize body kept').to.equal(true);
      // The pods come back able to initialize: the session is recovered on the next call.
      await Promise.all(fx.stack.pods.map((p) => p.restartInPlace()));
      expect((await c.echo('back')).text).to.equal('back');
      expect(c.sessionId()).to.equal(sid);
      expect(await r.hget(key, 'gen')).to.equal('2');
    } finally {
      r.disconnect();
    }
    expect(fx.stack.pins[0]!.proc.alive).to.equal(true);
  });

  it('answers 404 / -32001 and forgets the session when a pod refuses the stored initialize itself (4xx: it can never work), and stays healthy', async () => {
    await up();
    const c = await client();
    const sid = c.sessionId();
    await Promise.all(fx.stack.pods.map((p) => p.restartInPlace({ POD_REFUSE_INIT: '400' })));
    const raw = await listTools(sid);
    expect(raw.status).to.equal(404);
    expect(((await raw.json()) as { error: { code: number } }).error.code).to.equal(-32001);
    // The SDK client sees the same 404 and throws.
    const err = await c.echo('x').then(
      () => null,
      (e: unknown) => e as Error,
    );
    expect(err?.message).to.match(/404|Session not found/);
    const r = new Redis(fx.stack.redis!.url);
    // No pin left behind (only the brief memory that the id is unknown, from the SDK client's retry).
    expect(
      (await r.keys('*')).filter((k) => !k.endsWith(':unknown')),
      'no pin left behind',
    ).to.deep.equal([]);
    r.disconnect();
    expect((await fetch(`http://127.0.0.1:${fx.stack.pins[0]!.metricsPort}/healthz`)).status).to.equal(200);
    expect(fx.stack.pins[0]!.proc.alive).to.equal(true);
  });

  it('keeps an SSE GET stream: after its pod restarts, the client receives a notification from the new pod', async () => {
    await up();
    const c = await client();
    const sid = c.sessionId();
    const got: string[] = [];
    c.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      got.push(String(n.params.data));
    });
    const home = fx.stack.podByName((await c.whoami()).pod);
    // The standalone GET stream is open on the home pod.
    await eventually(async () => (await home.notifyAll()) > 0 && got.includes(`hello from ${home.name}`), 'first notification');
    await home.restartInPlace();
    // No POST from the client: only its own GET reconnects drive the recovery,
    // onto the other pod (Envoy's retry goes to another host). Only that pod
    // can send this line: it held no session of this client before.
    const other = fx.stack.pods.find((p) => p !== home)!;
    expect(got).to.not.include(`hello from ${other.name}`);
    await eventually(
      async () => {
        await other.notifyAll();
        return got.includes(`hello from ${other.name}`);
      },
      'a notification from the pod the session was recovered onto',
      20_000,
      250,
    );
    expect(c.sessionId()).to.equal(sid);
    // And the session works for calls too, on the same (new) pod.
    expect((await c.echo('after sse')).text).to.equal('after sse');
    onlyOwnIdSeen(c, sid);
  });
});
