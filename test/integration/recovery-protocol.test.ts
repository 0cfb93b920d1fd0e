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
import { startStack, type Stack } from '../helpers/stack.js';

const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };

function textOf(result: unknown): string {
  return (result as { content: { text: string }[] }).content[0]!.text;
}

describe('recovery protocol on real parts (issue 18)', function () {
  this.timeout(120_000);
  let stack: Stack;
  const clients: TestClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await stack?.stop();
  });
  async function client(): Promise<TestClient> {
    const c = await connectClient(stack.mcpUrl);
    clients.push(c);
    return c;
  }
  const urlAt = (path: string): string => new URL(path, stack.mcpUrl).toString();
  const callsOn = async (p: Pod, rpcMethod: string): Promise<number> => (await p.record()).requests.filter((r) => r.rpcMethod === rpcMethod).length;

  it('proves a loss at the path the session was initialized on: a request to a wrong path gets its pod\'s own 404, and the session is not re-initialized (harm 4)', async () => {
    stack = await startStack({ pods: 2, podEnv: { POD_PATH: '/mcp' } });
    const c = await client();
    const sid = c.sessionId();
    const home = stack.podByName((await c.whoami()).pod);
    const res = await fetch(urlAt('/typo'), { method: 'POST', headers: { ...HEADERS, 'mcp-session-id': sid }, body: '{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}' });
    expect(res.status).to.equal(404);
    expect(await res.json(), "the pod's own answer").to.deep.equal({ error: 'no such route' });
    const inits = (await Promise.all(stack.pods.map(async (p) => (await p.record()).initialize.length))).reduce((a, b) => a + b);
    expect(inits, 'no re-initialize (only the client\'s own)').to.equal(1);
    const r = new Redis(stack.redis!.url);
    try {
      expect(await r.hget(`${stack.keyPrefix}{${sid}}`, 'gen'), 'pin unchanged').to.equal('1');
    } finally {
      r.disconnect();
    }
    expect((await c.echo('still here')).pod).to.equal(home.name);
  });

  it('a pod cannot make its own session look unreachable: its x-mcp-pin-envoy-reply header never reaches mcp-pin, so the proof of loss asks it and it holds the session', async () => {
    stack = await startStack({ pods: 2, podEnv: { POD_PATH: '/mcp', POD_FORGE_ENVOY_REPLY: '1' } });
    const c = await client();
    const sid = c.sessionId();
    const home = stack.podByName((await c.whoami()).pod);
    const res = await fetch(urlAt('/typo'), { method: 'POST', headers: { ...HEADERS, 'mcp-session-id': sid }, body: '{"jsonrpc":"2.0","id":8,"method":"tools/list"}' });
    expect(res.status).to.equal(404);
    expect(res.headers.get('x-mcp-pin-envoy-reply'), 'stripped on the way to the client too').to.equal(null);
    const inits = (await Promise.all(stack.pods.map(async (p) => (await p.record()).initialize.length))).reduce((a, b) => a + b);
    expect(inits, 'not re-initialized').to.equal(1);
    expect((await c.echo('still here')).pod).to.equal(home.name);
  });

  it('sends concurrent requests of a live session that answered 404 back to their pod once each, with one proof per recovery (harm 3)', async () => {
    stack = await startStack({ pods: 2, podEnv: { POD_PATH: '/mcp' } });
    const c = await client();
    const sid = c.sessionId();
    const home = stack.podByName((await c.whoami()).pod);
    const n = 10;
    const answers = await Promise.all(
      Array.from({ length: n }, (_, i) =>
        fetch(urlAt('/typo'), { method: 'POST', headers: { ...HEADERS, 'mcp-session-id': sid }, body: JSON.stringify({ jsonrpc: '2.0', id: 100 + i, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } }) }).then((r) => r.status),
      ),
    );
    expect(answers).to.deep.equal(Array.from({ length: n }, () => 404));
    // Each request: its first attempt, then one relay back after the proof; never a third time.
    expect(await callsOn(home, 'tools/call') - 1, 'tools/call requests that reached the home pod (less whoami)').to.equal(2 * n);
    expect(await callsOn(stack.pods.find((p) => p !== home)!, 'tools/call'), 'none reached the other pod').to.equal(0);
    expect((await home.record()).initialize).to.have.length(1);
  });

  /** 4 pods, the home one restarted, `n` concurrent calls: their retries land on the other pods, and those not on the recovered one are relayed there. */
  async function relayedRound(c: TestClient, call: (i: number) => Promise<unknown>, n: number): Promise<{ results: unknown[]; relayed: number }> {
    const home = stack.podByName((await c.whoami()).pod);
    const before = await stack.pins[0]!.metric('mcp_pin_requests_total{outcome="relayed"}');
    await home.restartInPlace();
    const results = await Promise.all(Array.from({ length: n }, (_, i) => call(i)));
    return { results, relayed: (await stack.pins[0]!.metric('mcp_pin_requests_total{outcome="relayed"}')) - before };
  }

  it('keeps Envoy waiting while a relayed call slower than its message timeout runs: every call answered by its pod, each run once (harm 2)', async () => {
    stack = await startStack({ pods: 4 });
    const c = await client();
    // Until the round includes a relay (where each retry lands is Envoy's choice).
    for (let round = 0; round < 4; round++) {
      const { results, relayed } = await relayedRound(c, (i) => c.client.callTool({ name: 'slow', arguments: { ms: 1500 + i } }), 6);
      const pods = results.map((r) => (JSON.parse(textOf(r)) as { pod: string }).pod);
      expect(new Set(pods).size, 'all answered by the recovered pod').to.equal(1);
      const where = stack.podByName(pods[0]!);
      await eventually(async () => (await where.record()).requests.filter((r) => r.rpcMethod === 'tools/call' && r.status === 200).length >= 6, 'the pod recorded its answers');
      const slow = (await Promise.all(stack.pods.map(async (p) => (await p.record()).requests.filter((r) => r.rpcMethod === 'tools/call' && r.status === 200).length))).reduce((a, b) => a + b);
      expect(slow, 'each slow call ran once').to.equal(6);
      if (relayed > 0) return;
    }
    throw new Error('no round relayed a call: the scenario did not happen');
  });

  it('relays a 10 MiB answer whole', async () => {
    stack = await startStack({ pods: 4 });
    const c = await client();
    const size = 10 * 1024 * 1024;
    for (let round = 0; round < 4; round++) {
      const { results, relayed } = await relayedRound(c, () => c.client.callTool({ name: 'big', arguments: { size } }), 3);
      for (const r of results) expect(textOf(r).length).to.equal(size);
      if (relayed > 0) return;
    }
    throw new Error('no round relayed a call: the scenario did not happen');
  });

  it('a DELETE through a replica whose cached pin is stale reaches the pod that holds the session now, and leaves no newer pin behind', async () => {
    stack = await startStack({ pods: 2, pinEnv: { MCP_PIN_PIN_CACHE_MS: '30000' } });
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
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } } }),
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
