/**
 * Session-less traffic passes Envoy without mcp-pin (issue 11, item 3):
 * requests of MCP revision 2026-07-28 or later, and 2025 requests without a
 * session id that carry MCP-Protocol-Version, take a route on which ext_proc
 * (and the body buffer) are disabled. Counted from mcp-pin's own metric of
 * the ext_proc streams Envoy opened. Real Envoy, v1 and v2 SDK clients and
 * pods.
 */
import { expect } from 'chai';
import { connectClient, connectModernClient, type TestClient } from '../helpers/mcp-client.js';
import { stackPerTest } from '../helpers/stack-fixture.js';

describe('session-less traffic skips mcp-pin', function () {
  this.timeout(60_000);
  const fx = stackPerTest();
  const streams = (): Promise<number> => fx.stack.pins[0]!.metric('mcp_pin_streams_total');

  it('a 2026-07-28 client (v2 SDK) on session-less pods: every request answered, not one ext_proc stream', async () => {
    await fx.start({ pods: 2, store: 'memory', podEnv: { POD_MODERN: '1' } });
    const before = await streams();
    const c = await connectModernClient(fx.stack.mcpUrl);
    fx.defer(c.close);
    const pods = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = await c.echo(`m${i}`);
      expect(r.text).to.equal(`m${i}`);
      pods.add(r.pod);
    }
    await c.client.listTools();
    expect(c.sent.length).to.be.at.least(8);
    expect(
      c.sent.every((s) => s.protocolVersion === '2026-07-28'),
      JSON.stringify(c.sent),
    ).to.equal(true);
    expect(await streams(), 'ext_proc streams for 2026-07-28 traffic').to.equal(before);
    // Load-balanced by Envoy like any session-less traffic.
    expect([...pods].sort()).to.deep.equal(['pod1', 'pod2']);
  });

  it('a 2025 client (v1 SDK) on a stateless server: only its initialize reaches mcp-pin', async () => {
    await fx.start({ pods: 2, store: 'memory', podEnv: { POD_MODERN: '1' } });
    const before = await streams();
    const c: TestClient = await connectClient(fx.stack.mcpUrl);
    fx.defer(c.close);
    for (let i = 0; i < 6; i++) expect((await c.echo(`l${i}`)).text).to.equal(`l${i}`);
    const seen = (await Promise.all(fx.stack.pods.map((p) => p.record()))).flatMap((r) => r.requests);
    const withVersion = seen.filter((r) => r.protocolVersion !== undefined);
    expect(withVersion.length, 'requests after initialize carry MCP-Protocol-Version').to.be.at.least(7);
    expect(seen.filter((r) => r.rpcMethod === 'initialize').every((r) => r.protocolVersion === undefined)).to.equal(true);
    expect(await streams(), 'ext_proc streams: the initialize only').to.equal(before + 1);
    expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="initialize_recorded"}')).to.equal(0);
  });

  it('an initialize that carries MCP-Protocol-Version skips mcp-pin; its session is adopted on its first follow-up', async () => {
    await fx.start({ pods: 2, store: 'memory' });
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' };
    const before = await streams();
    const init = await fetch(fx.stack.mcpUrl, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'versioned-init', version: '1' } },
      }),
    });
    const sid = init.headers.get('mcp-session-id')!;
    await init.text();
    expect(init.status).to.equal(200);
    expect(await streams(), 'the initialize went past mcp-pin').to.equal(before);
    expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="initialize_recorded"}')).to.equal(0);
    const call = async (): Promise<number> => {
      const r = await fetch(fx.stack.mcpUrl, {
        method: 'POST',
        headers: { ...headers, 'mcp-session-id': sid },
        body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
      });
      await r.text();
      return r.status;
    };
    for (let i = 0; i < 4; i++) expect(await call()).to.equal(200);
    expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="adopted"}'), 'found by the session search, then pinned').to.equal(1);
    expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="pinned"}')).to.equal(3);
  });

  it('a 2026-07-28 request that still carries a (stale) session id reaches the pod without it: never a 404 "session not found"', async () => {
    await fx.start({ pods: 2, store: 'memory' });
    // A live session on a 2025 pod: its id, sent again by a client that now
    // speaks 2026-07-28. (Raw requests: an SDK client would open its GET
    // stream at a moment of its own, an ext_proc stream this test would count.)
    const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    const init = await fetch(fx.stack.mcpUrl, {
      method: 'POST',
      headers: base,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 0,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'stale-id', version: '1' } },
      }),
    });
    await init.text();
    const sid = init.headers.get('mcp-session-id')!;
    expect(init.status).to.equal(200);
    const before = await streams();
    for (const id of [sid, 'some-session-no-pod-holds']) {
      const r = await fetch(fx.stack.mcpUrl, {
        method: 'POST',
        headers: { ...base, 'mcp-protocol-version': '2026-07-28', 'mcp-session-id': id },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
      });
      await r.text();
      expect(r.status, id).to.not.equal(404);
    }
    const seen = (await Promise.all(fx.stack.pods.map((p) => p.record()))).flatMap((r) => r.requests).filter((r) => r.protocolVersion === '2026-07-28');
    expect(seen).to.have.length(2);
    expect(
      seen.map((r) => r.sessionId),
      'the id never reached a pod',
    ).to.deep.equal([null, null]);
    expect(await streams(), 'not one ext_proc stream').to.equal(before);
  });

  it('a v2 client in auto mode still gets a pinned session from a 2025 stateful server', async () => {
    await fx.start({ pods: 2, store: 'memory' });
    const c = await connectModernClient(fx.stack.mcpUrl);
    fx.defer(c.close);
    // The 2026-07-28 probe went past mcp-pin to a 2025 server, which refused it; the client fell back to initialize.
    expect(c.sent[0]!.protocolVersion).to.equal('2026-07-28');
    const homes = new Set<string>();
    for (let i = 0; i < 6; i++) homes.add((await c.echo(`p${i}`)).pod);
    expect(homes.size, 'every call on the pod that answered initialize').to.equal(1);
    expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="initialize_recorded"}')).to.equal(1);
    expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="pinned"}')).to.be.at.least(6);
  });
});
