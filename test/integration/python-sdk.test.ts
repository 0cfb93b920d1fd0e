/**
 * Issue 20 item 3: the official Python MCP SDK as real pods and as a real
 * client. Pods: FastMCP under uvicorn (demo/python/mcp_pod.py) with `mcp`
 * 1.25 (an unknown session gets 400, text/plain "Bad Request: No valid
 * session ID provided") and 1.30 (404, JSON-RPC -32600 "Session not found"),
 * each from the project's venv. Real Envoy 1.40, redis-server and mcp-pin
 * with the shipped defaults (--lost-session-statuses 404,400). The pods' own
 * records say where every request landed.
 */
import { expect } from 'chai';
import { connectClient, type TestClient } from '../helpers/mcp-client.js';
import { eventually } from '../helpers/net.js';
import { initializeCounts, type Pod, type PythonMcpVersion } from '../helpers/pod.js';
import { connectPythonClient, type PythonClient } from '../helpers/python-client.js';
import { stackPerTest } from '../helpers/stack-fixture.js';
import type { StackOptions } from '../helpers/stack.js';

/** A raw request in a session (to read the status and body an SDK client would turn into an exception). */
function post(url: string, sid: string, body: string): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
    body,
  });
}

describe('Python MCP SDK pods and client (issue 20)', function () {
  this.timeout(120_000);
  const fx = stackPerTest();
  const pyClients: PythonClient[] = [];
  async function up(opts: StackOptions): Promise<void> {
    await fx.start({ pods: 2, store: 'redis', ...opts });
  }
  async function pinnedClient(): Promise<{ c: TestClient; sid: string; home: Pod; other: Pod }> {
    const c = await connectClient(fx.stack.mcpUrl);
    fx.clients.push(c);
    const home = fx.stack.podByName((await c.whoami()).pod);
    return { c, sid: c.sessionId(), home, other: fx.stack.pods.find((p) => p !== home)! };
  }

  for (const version of ['1.25', '1.30'] as PythonMcpVersion[]) {
    const lostStatus = version === '1.25' ? 400 : 404;
    describe(`pods on Python mcp ${version} (unknown session: ${lostStatus}), shipped defaults`, () => {
      it(`answers an unknown session with ${lostStatus} (what the README says this version does)`, async () => {
        await up({ podKind: `python-${version}`, pods: 1 });
        const pod = fx.stack.pods[0]!;
        const res = await fetch(`http://${pod.host}:${pod.port}/mcp`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': 'no-such-session' },
          body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
        });
        expect(res.status).to.equal(lostStatus);
        const body = await res.text();
        if (version === '1.25') expect(body).to.equal('Bad Request: No valid session ID provided');
        else expect(JSON.parse(body)).to.deep.equal({ jsonrpc: '2.0', id: 'server-error', error: { code: -32600, message: 'Session not found' } });
      });

      it('pins: every request of a session reaches the pod that answered initialize', async () => {
        await up({ podKind: `python-${version}`, pods: 3 });
        const { c, sid, home } = await pinnedClient();
        for (let i = 0; i < 6; i++) expect((await c.echo(`n${i}`)).pod).to.equal(home.name);
        for (const p of fx.stack.pods) {
          const mine = (await p.record()).requests.filter((r) => r.sessionId === sid);
          if (p === home) expect(mine.length, `requests of the session on ${p.name}`).to.be.at.least(8);
          else expect(mine, `requests of the session on ${p.name}`).to.deep.equal([]);
        }
      });

      it('recovers when the pod restarts in place: one initialize + one initialized, same client id', async () => {
        await up({ podKind: `python-${version}` });
        const { c, sid, home, other } = await pinnedClient();
        const before = await initializeCounts([other]);
        await home.restartInPlace();
        expect((await c.echo('after restart')).text).to.equal('after restart');
        expect(c.sessionId()).to.equal(sid);
        const after = await initializeCounts(fx.stack.pods);
        expect(after.initialize - before.initialize, 're-initializes').to.equal(1);
        expect(after.initialized - before.initialized, 'notifications/initialized').to.equal(1);
        expect(await fx.stack.pins[0]!.metric('mcp_pin_requests_total{outcome="recovered"}')).to.be.at.least(1);
      });

      it('recovers when the pod is gone (killed, its address refuses)', async () => {
        await up({ podKind: `python-${version}` });
        const { c, sid, home, other } = await pinnedClient();
        const before = await initializeCounts([other]);
        await home.kill();
        expect(await c.echo('after crash')).to.deep.equal({ pod: other.name, text: 'after crash' });
        expect(c.sessionId()).to.equal(sid);
        expect((await initializeCounts([other])).initialize - before.initialize).to.equal(1);
      });

      it('runs one re-initialize for 10 concurrent calls after the pod restarted', async () => {
        await up({ podKind: `python-${version}`, replicas: 2 });
        const { c, sid, home, other } = await pinnedClient();
        const before = await initializeCounts([other]);
        await home.restartInPlace();
        const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => c.echo(`c${i}`)));
        expect(answers.map((a) => a.text)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `c${i}`));
        expect(new Set(answers.map((a) => a.pod)).size, 'all on one pod').to.equal(1);
        expect((await initializeCounts(fx.stack.pods)).initialize - before.initialize, 'initializes that reached the pods').to.equal(1);
        expect(c.sessionId()).to.equal(sid);
        const ran = async (): Promise<number> =>
          (
            await Promise.all(
              fx.stack.pods.map(async (p) => (await p.record()).requests.filter((r) => r.rpcMethod === 'tools/call' && r.status === 200).length),
            )
          ).reduce((a, b) => a + b, 0);
        await eventually(async () => (await ran()) >= 10, 'the pods recorded 10 answered calls');
        // (The restarted pod's record starts empty: the whoami before the restart is not in it.)
        expect(await ran(), 'each call ran once').to.equal(10);
      });
    });
  }

  it("with --lost-session-statuses 404 (the default before 0.2), a restarted Python mcp 1.25 pod ends the client's session: its 400 reaches the client", async () => {
    await up({ podKind: 'python-1.25', pinEnv: { MCP_PIN_LOST_SESSION_STATUSES: '404' }, envoy: { lostSessionStatuses: [404] } });
    const { sid, home } = await pinnedClient();
    await home.restartInPlace();
    const res = await post(fx.stack.mcpUrl, sid, '{"jsonrpc":"2.0","id":7,"method":"tools/list"}');
    expect(res.status).to.equal(400);
    expect(await res.text()).to.equal('Bad Request: No valid session ID provided');
  });

  // What 400 in the lost-session list costs when a pod answers 400 for another reason
  // (a malformed body): Envoy retries, mcp-pin's ping finds the session alive and relays
  // the request back to its pod; the client gets the pod's own 400 either way.
  for (const statuses of [[404], [404, 400]]) {
    it(`a pod's own 400 (malformed body) with lost-session statuses ${statuses.join(',')}: the client gets it, the session lives on, no re-initialize`, async () => {
      await up({ pinEnv: { MCP_PIN_LOST_SESSION_STATUSES: statuses.join(',') }, envoy: { lostSessionStatuses: statuses } });
      const { c, sid, home } = await pinnedClient();
      const seenBefore = (await home.record()).requests.length;
      const initBefore = await initializeCounts(fx.stack.pods);
      const times: number[] = [];
      for (let i = 0; i < 5; i++) {
        const started = performance.now();
        const res = await post(fx.stack.mcpUrl, sid, '{"jsonrpc":"2.0","id":7,"method":');
        expect(res.status).to.equal(400);
        expect(((await res.json()) as { error: { code: number } }).error.code).to.equal(-32700);
        times.push(performance.now() - started);
      }
      const reached = ((await home.record()).requests.length - seenBefore) / 5;
      const median = times.sort((a, b) => a - b)[2]!;
      console.log(
        `      a pod's own 400 with lost-session statuses ${statuses.join(',')}: ${reached} request(s) reached the pod per request, median ${median.toFixed(1)} ms`,
      );
      // 404 only: the request itself. With 400: the request, mcp-pin's ping, the relayed request.
      expect(reached, 'requests that reached the pinned pod, per request').to.equal(statuses.includes(400) ? 3 : 1);
      expect(await initializeCounts(fx.stack.pods), 'no re-initialize').to.deep.equal(initBefore);
      expect((await c.echo('still here')).pod).to.equal(home.name);
      expect(c.sessionId()).to.equal(sid);
    });
  }

  // Issue 27 item 3: a 400 that is not a lost session never moves a session. The proof of loss
  // speaks the version the session was initialized with, and a 400 counts as loss only in the
  // SDK's own words for an unknown session.
  for (const kind of ['ts', 'python-1.25', 'python-1.30'] as const) {
    it(`${kind} pods: a client's unsupported MCP-Protocol-Version gets the pod's own 400; the session is not re-initialized anywhere and lives on`, async () => {
      await up({ podKind: kind });
      const { c, sid, home } = await pinnedClient();
      const initBefore = await initializeCounts(fx.stack.pods);
      for (let i = 0; i < 3; i++) {
        const res = await fetch(fx.stack.mcpUrl, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            'mcp-session-id': sid,
            'mcp-protocol-version': '2026-01-26',
          },
          body: '{"jsonrpc":"2.0","id":7,"method":"tools/list"}',
        });
        const body = await res.text();
        expect(res.status, body).to.equal(400);
        expect(body, "the pod's own explanation").to.match(/protocol version/i);
        expect(body).to.not.match(/mcp-pin/);
      }
      expect(await initializeCounts(fx.stack.pods), 'no re-initialize, no orphan session on any pod').to.deep.equal(initBefore);
      expect((await c.echo('still here')).pod).to.equal(home.name);
      expect(c.sessionId()).to.equal(sid);
      // A real loss is still recovered on these pods (their own 404 or 400 for an unknown session).
      await home.restartInPlace();
      expect((await c.echo('recovered')).text).to.equal('recovered');
    });
  }

  it('serves the Python SDK client on TypeScript pods: pinned, recovered after its pod restarts, 10 concurrent calls after a loss, DELETE at the end', async () => {
    await up({ replicas: 2 });
    const py = await connectPythonClient(fx.stack.mcpUrl, '1.30');
    pyClients.push(py);
    // Closed before the stack stops, unless the test closed it itself.
    fx.defer(() => Promise.all(pyClients.splice(0).map((c) => c.close())));
    const first = await py.whoami();
    expect(first.session).to.equal(py.sessionId);
    const home = fx.stack.podByName(first.pod);
    for (let i = 0; i < 4; i++) expect((await py.echo(`n${i}`)).pod).to.equal(home.name);
    await home.restartInPlace();
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => py.echo(`c${i}`)));
    expect(answers.map((a) => a.text)).to.deep.equal(Array.from({ length: 10 }, (_, i) => `c${i}`));
    expect(new Set(answers.map((a) => a.pod)).size, 'all on one pod').to.equal(1);
    expect(
      await fx.stack.pins.reduce(async (sum, p) => (await sum) + (await p.metric('mcp_pin_recovery_seconds_count{result="recovered"}')), Promise.resolve(0)),
      're-initializes',
    ).to.equal(1);
    const now = fx.stack.podByName(answers[0]!.pod);
    const backendId = (await now.record()).initialize.at(-1)!;
    expect(pyClients.splice(0)[0] === py).to.equal(true);
    expect(await py.close(), 'python client exit code').to.equal(0);
    // Its DELETE ended the session where it lives now, under that pod's own id.
    await eventually(async () => (await now.record()).deleted.includes(backendId), "DELETE reached the session's pod");
  });
});
