/**
 * Issue 3, against real Envoy 1.40, redis-server and SDK pods, with the SDK
 * client as the user. Where a request landed is asserted from the pods' own
 * records, not from what mcp-pin believes.
 */
import { expect } from 'chai';
import { connectClient, type TestClient } from '../helpers/mcp-client.js';
import type { Pod } from '../helpers/pod.js';
import { stackPerTest } from '../helpers/stack-fixture.js';

/** Requests each pod saw for a session id, by pod name. */
async function landings(pods: Pod[], sessionId: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of pods) {
    const rec = await p.record();
    out[p.name] = rec.requests.filter((r) => r.sessionId === sessionId).length;
  }
  return out;
}

async function noPinHeaderLeaked(pods: Pod[]): Promise<void> {
  for (const p of pods) {
    const leaked = (await p.record()).requests.filter((r) => r.pinHeaders);
    expect(leaked, `pin header reached ${p.name}`).to.deep.equal([]);
  }
}

describe('pinning through real Envoy (issue 3)', function () {
  this.timeout(120_000);
  const fx = stackPerTest();

  beforeEach(async () => {
    await fx.start({ pods: 2, store: 'redis' });
  });

  async function client(headers?: Record<string, string>): Promise<TestClient> {
    const c = await connectClient(fx.stack.mcpUrl, headers ? { headers } : {});
    fx.clients.push(c);
    return c;
  }

  async function twentyCallsOnOwnPod(c: TestClient, home: string): Promise<void> {
    for (let i = 0; i < 20; i++) {
      const r = await c.echo(`call ${i}`);
      expect(r).to.deep.equal({ pod: home, text: `call ${i}` });
    }
    const seen = await landings(fx.stack.pods, c.sessionId());
    const other = fx.stack.pods.find((p) => p.name !== home)!.name;
    expect(seen[other], 'requests on the other pod').to.equal(0);
    // initialize's follow-ups: notifications/initialized + 20 tools/call (+ the whoami).
    expect(seen[home]).to.be.at.least(21);
  }

  it('a. keeps the session on its pod across an mcp-pin restart (new process, same Redis)', async () => {
    const c = await client();
    const home = (await c.whoami()).pod;
    await fx.stack.pins[0]!.restart();
    await twentyCallsOnOwnPod(c, home);
    await noPinHeaderLeaked(fx.stack.pods);
  });

  it('a. keeps the session on its pod across an Envoy restart', async () => {
    const c = await client();
    const home = (await c.whoami()).pod;
    const portBefore = fx.stack.envoy.publicPort;
    await fx.stack.envoy.restart();
    expect(fx.stack.envoy.publicPort).to.equal(portBefore);
    await twentyCallsOnOwnPod(c, home);
  });

  it('b. spreads 20 clients over both pods and keeps each on its own', async () => {
    const cs = await Promise.all(Array.from({ length: 20 }, () => client()));
    const homes = await Promise.all(cs.map(async (c) => (await c.whoami()).pod));
    const perPod: Record<string, number> = {};
    for (const h of homes) perPod[h] = (perPod[h] ?? 0) + 1;
    expect(Object.keys(perPod).sort(), 'both pods got sessions').to.deep.equal(['pod1', 'pod2']);
    for (let round = 0; round < 5; round++) {
      const answers = await Promise.all(cs.map((c, i) => c.echo(`${i}/${round}`)));
      for (const [i, a] of answers.entries()) expect(a.pod, `client ${i}`).to.equal(homes[i]);
    }
    for (let i = 0; i < cs.length; i++) {
      const seen = await landings(fx.stack.pods, cs[i]!.sessionId());
      const other = homes[i] === 'pod1' ? 'pod2' : 'pod1';
      expect(seen[other], `client ${i} on the wrong pod`).to.equal(0);
      expect(seen[homes[i]!], `client ${i} on its pod`).to.be.at.least(7);
    }
  });

  it('c. ignores a client-supplied pin header aimed at Redis or at the other pod', async () => {
    const redisTarget = `127.0.0.1:${fx.stack.redis!.port}`;
    // With a session: a request that names the other pod (or Redis) in the
    // pin header still goes where the session is pinned, as the pods' records show.
    const probe = await client();
    const home = (await probe.whoami()).pod;
    const otherPod = fx.stack.pods.find((p) => p.name !== home)!;
    const sid = probe.sessionId();
    for (const forged of [`${otherPod.host}:${otherPod.port}`, redisTarget]) {
      for (let i = 0; i < 5; i++) {
        const res = await fetch(fx.stack.mcpUrl, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'mcp-protocol-version': '2025-11-25',
            'mcp-session-id': sid,
            'x-mcp-pin-dst': forged,
          },
          body: JSON.stringify({ jsonrpc: '2.0', id: 100 + i, method: 'tools/call', params: { name: 'echo', arguments: { text: `forged ${i}` } } }),
        });
        expect(res.status, `forged pin ${forged}`).to.equal(200);
        expect(await res.text()).to.contain(`forged ${i}`);
      }
    }
    const seen = await landings(fx.stack.pods, sid);
    expect(seen[otherPod.name], 'requests of the session on the pod the forged header named').to.equal(0);
    expect(seen[home], "the session's requests on its pod").to.be.at.least(11);
    // A client that sends the forged header from its first request on: its
    // initialize is load-balanced (never sent to Redis) and it stays on that pod.
    const forgedToRedis = await client({ 'x-mcp-pin-dst': redisTarget });
    const redisHome = (await forgedToRedis.whoami()).pod;
    for (let i = 0; i < 5; i++) expect((await forgedToRedis.echo(`r${i}`)).pod).to.equal(redisHome);

    // Without a session: the service route answers (a pod's 400), never Redis.
    const raw = await fetch(fx.stack.mcpUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'x-mcp-pin-dst': redisTarget },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    });
    expect(raw.status).to.equal(400);
    expect(((await raw.json()) as { error: { message: string } }).error.message).to.match(/no session id/);
    const get = await fetch(fx.stack.mcpUrl, { headers: { 'x-mcp-pin-dst': redisTarget } });
    expect(get.status).to.equal(400);
    await get.body?.cancel();
    await noPinHeaderLeaked(fx.stack.pods);
  });

  it('d. DELETE removes the pin; the id then gets the 404 a pod gives (searched for on the pods once, then remembered)', async () => {
    const c = await client();
    const home = (await c.whoami()).pod;
    const sid = c.sessionId();
    const before = await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="session_deleted"}');
    await c.transport.terminateSession();
    expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="session_deleted"}')).to.equal(before + 1);
    const homePod = fx.stack.podByName(home);
    expect((await homePod.record()).deleted).to.include(sid);

    // The id is now unknown to mcp-pin: the service route searches the pods,
    // which answer 404; repeats are answered the same by mcp-pin (--unknown-session-cache-ms).
    for (let i = 0; i < 4; i++) {
      const res = await fetch(fx.stack.mcpUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json, text/event-stream',
          'mcp-session-id': sid,
          'mcp-protocol-version': '2025-11-25',
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
      });
      expect(res.status).to.equal(404);
      expect(((await res.json()) as { error: { code: number } }).error.code).to.equal(-32001);
    }
    // Both pods answered the search: the request was not pinned.
    const after = await landings(fx.stack.pods, sid);
    const other = home === 'pod1' ? 'pod2' : 'pod1';
    expect(after[other]).to.be.greaterThan(0);
    const searched = await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="unknown_session"}');
    const remembered = await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="unknown_session_remembered"}');
    expect(searched).to.be.at.least(1);
    expect(searched + remembered).to.be.at.least(4);
  });
});
