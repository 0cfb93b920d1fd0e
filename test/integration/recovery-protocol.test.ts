/**
 * Issue 18: the recovery protocol's harms, each on real parts (Envoy 1.40,
 * redis-server, SDK pods and clients), asserted from the pods' own records
 * and the store. The same invariants are checked over generated
 * interleavings in test/protocol/.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { connectClient, type TestClient } from '../helpers/mcp-client.js';
import { eventually } from '../helpers/net.js';
import type { Pod } from '../helpers/pod.js';
import { stackPerTest } from '../helpers/stack-fixture.js';
import type { Stack } from '../helpers/stack.js';

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };

function textOf(result: unknown): string {
  return (result as { content: { text: string }[] }).content[0]!.text;
}

describe('recovery protocol on real parts (issue 18)', function () {
  this.timeout(120_000);
  const fx = stackPerTest();
  const { clients } = fx;
  let stack: Stack;
  async function client(): Promise<TestClient> {
    const c = await connectClient(stack.mcpUrl);
    clients.push(c);
    return c;
  }
  const urlAt = (path: string): string => new URL(path, stack.mcpUrl).toString();
  const callsOn = async (p: Pod, rpcMethod: string): Promise<number> => (await p.record()).requests.filter((r) => r.rpcMethod === rpcMethod).length;

  it("proves a loss at the path the session was initialized on: a request to a wrong path gets its pod's own 404, and the session is not re-initialized (harm 4)", async () => {
    stack = await fx.start({ pods: 2, podEnv: { POD_PATH: '/mcp' } });
    const c = await client();
    const sid = c.sessionId();
    const home = stack.podByName((await c.whoami()).pod);
    const res = await fetch(urlAt('/typo'), {
      method: 'POST',
      headers: { ...HEADERS, 'mcp-session-id': sid },
      body: '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}',
    });
    expect(res.status).to.equal(404);
    expect(await res.json(), "the pod's own answer").to.deep.equal({ error: 'no such route' });
    const inits = (await Promise.all(stack.pods.map(async (p) => (await p.record()).initialize.length))).reduce((a, b) => a + b);
    expect(inits, "no re-initialize (only the client's own)").to.equal(1);
    const r = new Redis(stack.redis!.url);
    try {
      expect(await r.hget(`${stack.keyPrefix}{${sid}}`, 'gen'), 'pin unchanged').to.equal('1');
    } finally {
      r.disconnect();
    }
    expect((await c.echo('still here')).pod).to.equal(home.name);
  });

  it('a pod cannot make its own session look unreachable: its x-mcp-pin-envoy-reply header never reaches mcp-pin, so the proof of loss asks it and it holds the session', async () => {
    stack = await fx.start({ pods: 2, podEnv: { POD_PATH: '/mcp', POD_FORGE_ENVOY_REPLY: '1' } });
    const c = await client();
    const sid = c.sessionId();
    const home = stack.podByName((await c.whoami()).pod);
    const res = await fetch(urlAt('/typo'), {
      method: 'POST',
      headers: { ...HEADERS, 'mcp-session-id': sid },
      body: '{"jsonrpc":"2.0","id":8,"method":"tools/list"}',
    });
    expect(res.status).to.equal(404);
    expect(res.headers.get('x-mcp-pin-envoy-reply'), 'stripped on the way to the client too').to.equal(null);
    const inits = (await Promise.all(stack.pods.map(async (p) => (await p.record()).initialize.length))).reduce((a, b) => a + b);
    expect(inits, 'not re-initialized').to.equal(1);
    expect((await c.echo('still here')).pod).to.equal(home.name);
  });

  it('sends concurrent requests of a live session that answered 404 back to their pod once each, with one proof per recovery (harm 3)', async () => {
    stack = await fx.start({ pods: 2, podEnv: { POD_PATH: '/mcp' } });
    const c = await client();
    const sid = c.sessionId();
    const home = stack.podByName((await c.whoami()).pod);
    const n = 10;
    const answers = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        fetch(urlAt('/typo'), {
          method: 'POST',
          headers: { ...HEADERS, 'mcp-session-id': sid },
          body: JSON.stringify({ jsonrpc: '2.0', id: 100 + i, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } }),
        }).then((r) => r.status),
      ),
    );
    expect(answers).to.deep.equal(Array.from({ length: n }, () => 404));
    // Each request: its first attempt, then one relay back after the proof; never a third time.
    expect((await callsOn(home, 'tools/call')) - 1, 'tools/call requests that reached the home pod (less whoami)').to.equal(2 * n);
    expect(await callsOn(stack.pods.find((p) => p !== home)!, 'tools/call'), 'none reached the other pod').to.equal(0);
    expect((await home.record()).initialize).to.have.length(1);
  });

  /**
   * 4 pods, the home one restarted, `n` concurrent calls: their retries land
   * on the other pods, and those not on the recovered one go there: relayed
   * by mcp-pin if the request says Envoy started it again already (its
   * x-envoy-original-url: Envoy follows one redirect per request), else
   * redirected (Envoy starts it again, pinned to that pod).
   */
  async function movedRound(
    c: TestClient,
    call: (i: number) => Promise<unknown>,
    n: number,
    outcome: 'relayed' | 'redirected' = 'relayed',
  ): Promise<{ results: unknown[]; moved: number }> {
    const home = stack.podByName((await c.whoami()).pod);
    const sample = `mcp_pin_requests_total{outcome="${outcome}"}`;
    const before = await stack.pins[0]!.metric(sample);
    await home.restartInPlace();
    const results = await Promise.all(Array.from({ length: n }, (_, i) => call(i)));
    return { results, moved: (await stack.pins[0]!.metric(sample)) - before };
  }
  const relayedRound = async (c: TestClient, call: (i: number) => Promise<unknown>, n: number): Promise<{ results: unknown[]; relayed: number }> => {
    const { results, moved } = await movedRound(c, call, n, 'relayed');
    return { results, relayed: moved };
  };
  /**
   * Pods whose old MCP path answers 308 to /mcp (a route that moved), and a
   * client that still uses it: Envoy follows that redirect itself (once per
   * request), so a retry of the request it started again cannot be
   * redirected by mcp-pin: it is relayed.
   */
  const MOVED_ROUTE = { POD_PATH: '/mcp', POD_REDIRECT_FROM: '/old' };
  async function clientOfMovedRoute(): Promise<TestClient> {
    const c = await connectClient(urlAt('/old'));
    clients.push(c);
    return c;
  }

  it('redirects the retries that land beside the recovered pod: Envoy starts them again there, every call answered by that pod, each run once, and the client keeps its own session id (also for a session recovered before)', async () => {
    stack = await fx.start({ pods: 4 });
    const c = await client();
    const sid = c.sessionId();
    let redirectedRounds = 0;
    // Round 1 recovers a session under its own id; later rounds one whose backend id differs from the client's.
    for (let round = 0; round < 6 && redirectedRounds < 2; round++) {
      const { results, moved } = await movedRound(c, (i) => c.client.callTool({ name: 'echo', arguments: { text: `call ${i}` } }), 6, 'redirected');
      const answers = results.map((r) => JSON.parse(textOf(r)) as { pod: string; text: string });
      expect(answers.map((a) => a.text)).to.deep.equal(Array.from({ length: 6 }, (_, i) => `call ${i}`));
      expect(new Set(answers.map((a) => a.pod)).size, 'all answered by the recovered pod').to.equal(1);
      expect(c.sessionId()).to.equal(sid);
      for (const seen of c.seen) if (seen.sessionId !== null) expect(seen.sessionId, 'only its own session id').to.equal(sid);
      expect(
        c.seen.map((x) => x.status),
        'Envoy followed the redirects itself',
      ).to.not.include(308);
      if (moved > 0) redirectedRounds++;
    }
    expect(redirectedRounds, "rounds with a redirected retry (where retries land is Envoy's choice)").to.be.greaterThan(1);
    const calls = (
      await Promise.all(stack.pods.map(async (p) => (await p.record()).requests.filter((r) => r.rpcMethod === 'tools/call' && r.status === 200).length))
    ).reduce((a, b) => a + b);
    expect(calls, 'each call ran once (the pods restarted lose their records: at most this many)').to.be.at.most(6 * 6 + 6);
  });

  it('redirects a GET whose retry lands beside the recovered pod: a live stream on that pod', async () => {
    // Slow re-initializes (500 ms): a GET sent while a call recovers the session still goes to the old pod first.
    stack = await fx.start({ pods: 4, podEnv: { POD_INIT_DELAY_MS: '500' } });
    // Only this test's GET stream may be open (a session has one): the SDK client's own is closed.
    const sdk = await connectClient(stack.mcpUrl);
    const sid = sdk.sessionId();
    let home = stack.podByName((await sdk.whoami()).pod);
    await sdk.close();
    const post = async (id: number): Promise<string> => {
      const res = await fetch(stack.mcpUrl, {
        method: 'POST',
        headers: { ...HEADERS, 'mcp-session-id': sid },
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'whoami', arguments: {} } }),
      });
      const text = await res.text();
      return (JSON.parse(/"text":"(.*?)"}]/.exec(text)![1]!.replace(/\\"/g, '"')) as { pod: string }).pod;
    };
    const redirectedGets = (): number =>
      stack.pins[0]!.proc.output.split('\n').filter((l) => l.includes("redirecting to the session's pod") && l.includes('"method":"GET"')).length;
    for (let round = 0; round < 10; round++) {
      await home.restartInPlace();
      const before = redirectedGets();
      // A call starts the recovery; the GET's retry then lands on the pod it is under way on (it waits and is sent) or beside it (redirected).
      const call = post(round);
      await new Promise((r) => setTimeout(r, 100));
      const get = new AbortController();
      const res = await fetch(stack.mcpUrl, {
        headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
        signal: get.signal,
      });
      const where = stack.podByName(await call);
      home = where;
      try {
        expect(res.status).to.equal(200);
        expect(res.headers.get('content-type')).to.match(/text\/event-stream/);
        expect(res.headers.get('mcp-session-id')).to.equal(sid);
        if (redirectedGets() === before) continue;
        // Live on the recovered pod: its notification arrives on this stream.
        const reader = res.body!.getReader();
        let text = '';
        await eventually(async () => {
          await where.notifyAll();
          const chunk = await Promise.race([reader.read(), new Promise<null>((r) => setTimeout(() => r(null), 200))]);
          if (chunk && !chunk.done) text += new TextDecoder().decode(chunk.value);
          return text.includes(`hello from ${where.name}`);
        }, 'a notification from the recovered pod on the redirected stream');
        return;
      } finally {
        get.abort();
      }
    }
    throw new Error('no round redirected the GET: the scenario did not happen');
  });

  it("relays a request Envoy already started again (it followed a pod's own 308), and keeps Envoy waiting while a relayed call slower than its message timeout runs: every call answered by its pod, each run once (harm 2)", async () => {
    stack = await fx.start({ pods: 4, podEnv: MOVED_ROUTE });
    const c = await clientOfMovedRoute();
    // Until the round includes a relay (where each retry lands is Envoy's choice).
    for (let round = 0; round < 4; round++) {
      const { results, relayed } = await relayedRound(c, (i) => c.client.callTool({ name: 'slow', arguments: { ms: 1500 + i } }), 6);
      const pods = results.map((r) => (JSON.parse(textOf(r)) as { pod: string }).pod);
      expect(new Set(pods).size, 'all answered by the recovered pod').to.equal(1);
      const where = stack.podByName(pods[0]!);
      await eventually(
        async () => (await where.record()).requests.filter((r) => r.rpcMethod === 'tools/call' && r.status === 200).length >= 6,
        'the pod recorded its answers',
      );
      const slow = (
        await Promise.all(stack.pods.map(async (p) => (await p.record()).requests.filter((r) => r.rpcMethod === 'tools/call' && r.status === 200).length))
      ).reduce((a, b) => a + b);
      expect(slow, 'each slow call ran once').to.equal(6);
      if (relayed > 0) return;
    }
    throw new Error('no round relayed a call: the scenario did not happen');
  });

  it('relays a 10 MiB answer whole (a request Envoy already started again)', async () => {
    stack = await fx.start({ pods: 4, podEnv: MOVED_ROUTE });
    const c = await clientOfMovedRoute();
    const size = 10 * 1024 * 1024;
    for (let round = 0; round < 4; round++) {
      const { results, relayed } = await relayedRound(c, () => c.client.callTool({ name: 'big', arguments: { size } }), 3);
      for (const r of results) expect(textOf(r).length).to.equal(size);
      if (relayed > 0) return;
    }
    throw new Error('no round relayed a call: the scenario did not happen');
  });

  it('a DELETE through a replica whose cached pin is stale reaches the pod that holds the session now, and leaves no newer pin behind', async () => {
    stack = await fx.start({ pods: 2, pinEnv: { MCP_PIN_PIN_CACHE_MS: '30000' } });
    const c = await client();
    const sid = c.sessionId();
    const home = stack.podByName((await c.whoami()).pod);
    const other = stack.pods.find((p) => p !== home)!;
    // Another replica recovered the session onto the other pod meanwhile: a
    // real backend session there, and a newer pin in the store (this
    // replica's cache still names the home pod).
    const init = await fetch(`http://${other.host}:${other.port}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
      }),
    });
    const backend = init.headers.get('mcp-session-id')!;
    await init.body?.cancel();
    const r = new Redis(stack.redis!.url);
    try {
      await r.hset(`${stack.keyPrefix}{${sid}}`, 'pod', `${other.host}:${other.port}`, 'bsid', backend, 'gen', '2');
      const del = await fetch(stack.mcpUrl, { method: 'DELETE', headers: { ...HEADERS, 'mcp-session-id': sid } });
      expect(del.status).to.equal(200);
      expect(del.headers.get('mcp-session-id')).to.be.oneOf([null, sid]);
      expect((await other.record()).deleted, 'ended where it lives').to.deep.equal([backend]);
      expect((await home.record()).deleted, 'the stale pod was not asked').to.deep.equal([]);
      expect(await r.exists(`${stack.keyPrefix}{${sid}}`), 'forgotten').to.equal(0);
    } finally {
      r.disconnect();
    }
  });
});
