/**
 * A session lives at one MCP path (issue 27, items 4 and 5). A request of the
 * session at another path is answered by the pod's router, not its MCP
 * transport: the client gets that answer, and nothing stored changes, for a
 * session under its own id, a recovered one (rewritten ids), and one adopted
 * after the store lost it. Real Envoy 1.40, redis-server, SDK pods that
 * serve MCP at /mcp only (anything else: their router's 404).
 */
import { expect } from 'chai';
import { Redis } from 'ioredis';
import { initializeCounts } from '../helpers/pod.js';
import { stackPerTest } from '../helpers/stack-fixture.js';
import type { Stack } from '../helpers/stack.js';
import type { TestClient } from '../helpers/mcp-client.js';

const ROUTER_404 = '{"error":"no such route"}';

/** A request of session `sid` at `path` with `method`, as a client that mistyped its URL would send it. */
async function offPath(stack: Stack, sid: string, method: string, path = '/typo'): Promise<{ status: number; body: string }> {
  const res = await fetch(`${new URL(stack.mcpUrl).origin}${path}`, {
    method,
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
    ...(method === 'POST' ? { body: '{"jsonrpc":"2.0","id":9,"method":"tools/list"}' } : {}),
  });
  return { status: res.status, body: await res.text() };
}

describe("a session's MCP path: wrong paths change nothing, adopted sessions keep theirs (issue 27)", function () {
  this.timeout(120_000);
  const f = stackPerTest();

  const record = async (redis: Redis, stack: Stack, c: TestClient): Promise<Record<string, string>> => {
    const r = await redis.hgetall(`${stack.keyPrefix}{${c.sessionId()}}`);
    return { pod: r.pod!, bsid: r.bsid!, gen: r.gen!, path: r.path! };
  };

  it("answers POST, GET and DELETE off the MCP path with the pod's own 404 and keeps the session, under its own id and after a recovery", async () => {
    const stack = await f.start({ pods: 2, podEnv: { POD_PATH: '/mcp' } });
    const redis = new Redis(stack.redis!.url);
    try {
      const c = await f.client();
      const home = stack.podByName((await c.whoami()).pod);
      for (const phase of ['own id', 'recovered']) {
        if (phase === 'recovered') {
          await home.restartInPlace();
          expect((await c.echo('recovered')).text).to.equal('recovered');
        }
        const before = await record(redis, stack, c);
        const inits = await initializeCounts(stack.pods);
        for (const method of ['POST', 'GET', 'DELETE']) {
          const r = await offPath(stack, c.sessionId(), method);
          expect(r, `${phase}: ${method} /typo`).to.deep.equal({ status: 404, body: ROUTER_404 });
        }
        expect(await record(redis, stack, c), `${phase}: the record`).to.deep.equal(before);
        expect(await initializeCounts(stack.pods), `${phase}: no re-initialize`).to.deep.equal(inits);
        const after = await c.echo(`${phase}: still here`);
        expect(after.text).to.equal(`${phase}: still here`);
      }
      expect(await stack.pins[0]!.metric('mcp_pin_requests_total{outcome="off_path"}')).to.be.greaterThan(0);
    } finally {
      redis.disconnect();
    }
  });

  it('adopts a session with the MCP path it was found on, so a wrong path later proves nothing and the session lives on', async () => {
    const stack = await f.start({ pods: 2, podEnv: { POD_PATH: '/mcp' }, pinEnv: { MCP_PIN_PIN_CACHE_MS: '0' } });
    const redis = new Redis(stack.redis!.url);
    try {
      const c = await f.client();
      const home = (await c.whoami()).pod;
      // The store loses everything; the next call finds the session on its pod and adopts it.
      await redis.flushall();
      expect((await c.echo('found again')).pod).to.equal(home);
      const adopted = await record(redis, stack, c);
      expect(adopted.path, 'the MCP path it was found on').to.equal('/mcp');
      for (const method of ['POST', 'GET', 'DELETE'])
        expect(await offPath(stack, c.sessionId(), method), method).to.deep.equal({ status: 404, body: ROUTER_404 });
      expect(await record(redis, stack, c), 'kept as adopted').to.deep.equal(adopted);
      expect((await c.echo('still mine')).pod).to.equal(home);
    } finally {
      redis.disconnect();
    }
  });
});
