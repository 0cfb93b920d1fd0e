/**
 * Issue 20 item 5: a session mcp-pin has no pin for is searched for on the
 * pods, each pod at most once, whatever the pod count (no re-render), as the
 * pods' own request records show; invalid ids reach no pod; an id found
 * nowhere is remembered. Real Envoy 1.40, redis-server, SDK pods and clients.
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { connectClient } from '../helpers/mcp-client.js';
import type { Pod } from '../helpers/pod.js';
import { stackPerTest } from '../helpers/stack-fixture.js';
import type { Stack } from '../helpers/stack.js';

const MCP = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };

/** Requests carrying `sid` each pod saw, by pod name. */
async function seenBy(pods: Pod[], sid: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of pods) out[p.name] = (await p.record()).requests.filter((r) => r.sessionId === sid).length;
  return out;
}

describe('session search: each pod at most once (issue 20)', function () {
  this.timeout(120_000);
  const fx = stackPerTest();
  const { clients } = fx;
  let stack: Stack;

  for (const pods of [2, 6]) {
    it(`asks each of ${pods} pods exactly once for an id no pod holds, then remembers it; invalid ids reach none`, async () => {
      stack = await fx.start({ pods });
      for (const sid of ['never-issued-1', 'never-issued-2']) {
        const res = await fetch(stack.mcpUrl, {
          method: 'POST',
          headers: { ...MCP, 'mcp-session-id': sid },
          body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
        });
        expect(res.status).to.equal(404);
        expect(((await res.json()) as { error: { code: number } }).error.code).to.equal(-32001);
        const once = Object.fromEntries(stack.pods.map((p) => [p.name, 1]));
        expect(await seenBy(stack.pods, sid), 'requests with the id on each pod').to.deep.equal(once);
        // Again: remembered, no pod asked.
        const again = await fetch(stack.mcpUrl, {
          method: 'POST',
          headers: { ...MCP, 'mcp-session-id': sid },
          body: '{"jsonrpc":"2.0","id":2,"method":"tools/list"}',
        });
        expect(again.status).to.equal(404);
        await again.arrayBuffer();
        expect(await seenBy(stack.pods, sid), 'after a repeat').to.deep.equal(once);
      }
      // A DELETE of an unknown id is searched the same way, once per pod.
      const del = await fetch(stack.mcpUrl, { method: 'DELETE', headers: { ...MCP, 'mcp-session-id': 'never-issued-3' } });
      expect(del.status).to.equal(404);
      expect(await seenBy(stack.pods, 'never-issued-3')).to.deep.equal(Object.fromEntries(stack.pods.map((p) => [p.name, 1])));
      for (const sid of ['k'.repeat(300), 'has space']) {
        const res = await fetch(stack.mcpUrl, {
          method: 'POST',
          headers: { ...MCP, 'mcp-session-id': sid },
          body: '{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
        });
        expect(res.status).to.equal(404);
        await res.arrayBuffer();
        expect(
          Object.values(await seenBy(stack.pods, sid)).reduce((a, b) => a + b, 0),
          'invalid ids on the pods',
        ).to.equal(0);
      }
      expect(await stack.pins[0]!.metric('mcp_pin_requests_total{outcome="search_ended"}')).to.equal(3);
    });
  }

  it('asks each pod once for a made-up id across replicas too: one pass per id per --unknown-session-cache-ms (issue 27, item 7)', async () => {
    stack = await fx.start({ pods: 3, replicas: 2 });
    const sid = 'made-up-across-replicas';
    for (let i = 0; i < 8; i++) {
      const res = await fetch(stack.mcpUrl, {
        method: 'POST',
        headers: { ...MCP, 'mcp-session-id': sid },
        body: `{"jsonrpc":"2.0","id":${i},"method":"tools/list"}`,
      });
      expect(res.status).to.equal(404);
      await res.arrayBuffer();
    }
    expect(await seenBy(stack.pods, sid), 'requests with the id on each pod').to.deep.equal(Object.fromEntries(stack.pods.map((p) => [p.name, 1])));
    // Both replicas answered repeats themselves (Envoy spreads the streams over them).
    const remembered = await Promise.all(stack.pins.map((p) => p.metric('mcp_pin_requests_total{outcome="unknown_session_remembered"}')));
    expect(remembered.reduce((a, b) => a + b, 0)).to.equal(7);
    expect(
      remembered.every((n) => n > 0),
      `each replica answered some: ${remembered.join(', ')}`,
    ).to.equal(true);
  });

  it('finds every session on 6 pods after the store lost its pins (more pods than the old fixed 5 attempts), asking no pod twice', async () => {
    stack = await fx.start({ pods: 6, pinEnv: { MCP_PIN_PIN_CACHE_MS: '0' } });
    for (let i = 0; i < 12; i++) clients.push(await connectClient(stack.mcpUrl));
    const homes = await Promise.all(clients.map(async (c) => (await c.whoami()).pod));
    expect(new Set(homes).size, 'sessions on every pod').to.equal(6);
    const redis = new Redis(stack.redis!.url);
    await redis.flushall();
    redis.disconnect();
    const before = await Promise.all(clients.map((c) => seenBy(stack.pods, c.sessionId())));
    const answers = await Promise.all(clients.map((c, i) => c.echo(`after flush ${i}`)));
    expect(
      answers.map((a) => a.pod),
      'each session found on its own pod',
    ).to.deep.equal(homes);
    for (const [i, c] of clients.entries()) {
      const after = await seenBy(stack.pods, c.sessionId());
      for (const p of stack.pods) {
        const asked = after[p.name]! - before[i]![p.name]!;
        expect(asked, `client ${i}: requests on ${p.name} for the search`).to.be.at.most(1);
      }
    }
    expect(await stack.pins[0]!.metric('mcp_pin_requests_total{outcome="adopted"}')).to.equal(12);
  });
});
