/**
 * Issue 5: health, drain, rolling restart of two replicas under load,
 * metrics, config validation. Real processes throughout.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import { extProcClient, healthClient, wireRequestHeaders, wireResponseHeaders } from '../helpers/grpc-clients.js';
import { connectClient } from '../helpers/mcp-client.js';
import { McpPinProcess } from '../helpers/mcp-pin.js';
import { eventually } from '../helpers/net.js';
import { ManagedProcess } from '../helpers/process.js';
import { startRedis, type RedisHandle } from '../helpers/redis.js';
import { stackPerTest } from '../helpers/stack-fixture.js';
import type { Stack } from '../helpers/stack.js';

describe('operations (issue 5)', function () {
  this.timeout(120_000);

  describe('health and drain of one replica', () => {
    let redis: RedisHandle;
    let pin: McpPinProcess;
    beforeEach(async () => {
      redis = await startRedis();
      pin = await new McpPinProcess('mcp-pin', 0, { MCP_PIN_STORE_URL: redis.url, MCP_PIN_DRAIN_DELAY_MS: '800' }).start();
    });
    afterEach(async () => {
      await pin?.kill();
      await redis?.stop();
    });

    it('is SERVING only while the store answers, and recovers by itself', async () => {
      const h = healthClient(pin.port);
      try {
        await eventually(async () => (await h.check()) === 'SERVING', 'SERVING');
        expect(await h.check('envoy.service.ext_proc.v3.ExternalProcessor')).to.equal('SERVING');
        await redis.stop();
        await eventually(async () => (await h.check()) === 'NOT_SERVING', 'NOT_SERVING while Redis is down', 5000);
        expect((await fetch(`http://127.0.0.1:${pin.metricsPort}/healthz`)).status).to.equal(503);
        await redis.start();
        await eventually(async () => (await h.check()) === 'SERVING', 'SERVING again', 10_000);
        const err = await h.check('no.such.Service').then(
          () => null,
          (e: { code: number }) => e,
        );
        expect(err?.code).to.equal(5); // NOT_FOUND
      } finally {
        h.close();
      }
    });

    it('drains on SIGTERM: NOT_SERVING at once, serves through the delay, then refuses new streams, lets open ones finish, exits 0', async () => {
      const h = healthClient(pin.port);
      const client = extProcClient(pin.port);
      try {
        await eventually(async () => (await h.check()) === 'SERVING', 'SERVING');
        // An open exchange: request headers answered, response not yet seen.
        const open = client.Process();
        open.write(wireRequestHeaders({ ':method': 'GET', ':path': '/mcp', 'mcp-session-id': 'unknown' }));
        await once(open, 'data');

        const refusing = pin.proc.waitForJson((o) => o.msg === 'drain delay over: refusing new streams', 5000);
        pin.proc.child!.kill('SIGTERM');
        await eventually(async () => (await h.check()) === 'NOT_SERVING', 'NOT_SERVING at once', 500, 20);
        // During the drain delay new streams are still served (Envoy may not have noticed yet).
        const during = client.Process();
        during.write(wireRequestHeaders({ ':method': 'GET' }));
        const [reply] = (await once(during, 'data')) as [Record<string, unknown>];
        expect(reply.request_headers).to.not.equal(undefined);
        during.end();
        // After the delay: refused.
        await refusing;
        const late = client.Process();
        const lateErr = await new Promise<{ code: number }>((resolve) => {
          late.on('error', resolve);
          late.on('data', () => {});
          late.write(wireRequestHeaders({ ':method': 'GET' }));
        });
        expect(lateErr.code).to.equal(14); // UNAVAILABLE
        expect(pin.proc.alive, 'waits for the open stream').to.equal(true);
        // The open exchange completes normally, and then the process exits 0.
        open.write(wireResponseHeaders({ ':status': '200' }));
        const [resp] = (await once(open, 'data')) as [Record<string, unknown>];
        expect(resp.response_headers).to.not.equal(undefined);
        open.end();
        expect(await pin.proc.waitExit(5000)).to.equal(0);
        expect(pin.proc.output).to.match(/"leftOpen":0/);
      } finally {
        h.close();
        client.close();
      }
    });

    it('refuses bad configuration with one line per problem and exit code 2', async () => {
      const p = new ManagedProcess(
        'bad-config',
        process.execPath,
        ['--import', 'tsx', new URL('../../src/main.ts', import.meta.url).pathname, '--listen', 'nowhere'],
        {
          MCP_PIN_STORE_URL: 'mysql://db',
          MCP_PIN_SESSION_TTL_MS: 'soon',
        },
      ).start();
      expect(await p.waitExit()).to.equal(2);
      expect(p.output).to.contain('invalid configuration');
      expect(p.output).to.match(/--listen="nowhere": expected unix:\/absolute\/path or host:port/);
      expect(p.output).to.match(/MCP_PIN_STORE_URL="mysql:\/\/db"/);
      expect(p.output).to.match(/MCP_PIN_SESSION_TTL_MS="soon"/);
    });
  });

  describe('two replicas behind Envoy', () => {
    const fx = stackPerTest();
    const { clients } = fx;
    let stack: Stack;

    it('restarts the replicas one after the other under steady load with zero client errors, every request on its pinned pod', async () => {
      stack = await fx.start({ pods: 2, replicas: 2 });
      for (const p of stack.pins) await eventually(() => stack.envoy.extProcHealthy(p.port), `replica ${p.port} healthy in Envoy`);
      for (let i = 0; i < 6; i++) clients.push(await connectClient(stack.mcpUrl));
      const homes = await Promise.all(clients.map(async (c) => (await c.whoami()).pod));
      let stop = false;
      let sent = 0;
      const errors: string[] = [];
      const misplaced: string[] = [];
      const deadline = Date.now() + 60_000;
      const load = clients.map(async (c, i) => {
        for (let n = 0; !stop && Date.now() < deadline && n < 5000; n++) {
          sent++;
          try {
            const r = await c.echo(`${i}:${n}`);
            if (r.pod !== homes[i]) misplaced.push(`${i}:${n} on ${r.pod}`);
          } catch (err) {
            errors.push(`${i}:${n} ${(err as Error).message}`);
          }
        }
      });
      const drains: { replica: string; drainMs: number }[] = [];
      // Load is flowing before, and again after, each restart.
      const flowing = async (from: number, what: string): Promise<void> => {
        await eventually(async () => sent >= from + 20, what, 10_000, 10);
      };
      await flowing(0, 'load before the first restart');
      for (const pin of stack.pins) {
        const before = sent;
        await pin.stop();
        const m = /"leftOpen":(\d+),"drainMs":(\d+)/.exec(pin.proc.output);
        drains.push({ replica: pin.name, drainMs: Number(m?.[2] ?? -1) });
        expect(m?.[1], 'streams cut at shutdown').to.equal('0');
        await pin.start();
        await eventually(() => stack.envoy.extProcHealthy(pin.port), `${pin.name} healthy again`, 10_000);
        expect(sent, 'load kept flowing').to.be.greaterThan(before);
        await flowing(sent, `load after restarting ${pin.name}`);
      }
      stop = true;
      await Promise.all(load);
      console.log(`      rolling restart: ${sent} requests, ${errors.length} errors, drains ${JSON.stringify(drains)}`);
      expect(errors, 'client-visible errors').to.deep.equal([]);
      expect(misplaced, 'requests off their pinned pod').to.deep.equal([]);
      expect(sent).to.be.greaterThan(100);
    });

    it('exports metrics that move with traffic', async () => {
      stack = await fx.start({ pods: 2, replicas: 1 });
      const pin = stack.pins[0]!;
      const c = await connectClient(stack.mcpUrl);
      clients.push(c);
      for (let i = 0; i < 5; i++) await c.echo(String(i));
      const text = await pin.metrics();
      expect(await pin.metric('mcp_pin_requests_total{outcome="initialize_recorded"}')).to.equal(1);
      expect(await pin.metric('mcp_pin_requests_total{outcome="pinned"}')).to.be.at.least(6);
      expect(await pin.metric('mcp_pin_streams_total')).to.be.at.least(7);
      // Lookups: the first of each call's pins reaches Redis (timed); the pin
      // cache answers the rest (counted, not timed).
      const timedLookups = await pin.metric('mcp_pin_store_seconds_count{op="lookup"}');
      const hits = await pin.metric('mcp_pin_pin_cache_lookups_total{result="hit"}');
      const misses = await pin.metric('mcp_pin_pin_cache_lookups_total{result="miss"}');
      expect(misses).to.be.at.least(1);
      expect(hits + misses).to.be.at.least(6);
      // Every miss reaches Redis and is timed; no hit is (background touches aside, none within a second).
      expect(timedLookups).to.equal(misses);
      expect(await pin.metric('mcp_pin_store_seconds_count{op="create"}')).to.equal(1);
      expect(await pin.metric('mcp_pin_message_seconds_count{phase="request_headers"}')).to.be.at.least(7);
      expect(text).to.contain('mcp_pin_process_resident_memory_bytes');
      // No session ids or addresses in labels.
      expect(text).to.not.contain(c.sessionId());
      expect(text).to.not.match(/127\.0\.0\.\d+:\d+/);
    });
  });

  describe('start-up order (issue 20)', () => {
    const fx = stackPerTest();
    const { clients } = fx;
    let stack: Stack;

    /** Opens one ext_proc stream and sends a session-less request's headers; resolves with the gRPC status it was refused with, or 0 when mcp-pin answered the message (accepted). */
    async function streamStatus(port: number): Promise<{ code: number; details: string }> {
      const client = extProcClient(port);
      const call = client.Process();
      try {
        return await new Promise((resolve) => {
          call.on('error', (e: { code: number; details: string }) => resolve({ code: e.code, details: e.details }));
          call.on('data', () => resolve({ code: 0, details: 'accepted' }));
          call.write(wireRequestHeaders({ ':method': 'POST', ':path': '/mcp' }, false));
        });
      } finally {
        call.cancel();
        client.close();
      }
    }

    it('one replica restarted under load while its store is down: refuses ext_proc streams and is NOT_SERVING until the store answers; no failed request once Envoy sees it healthy', async () => {
      stack = await fx.start({ pods: 2, replicas: 1 });
      const pin = stack.pins[0]!;
      const MCP = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
      for (let i = 0; i < 4; i++) clients.push(await connectClient(stack.mcpUrl));
      const sids = clients.map((c) => c.sessionId());
      // Raw requests, so every status is seen as it is (an SDK client would turn some into exceptions).
      const results: { at: number; status: number }[] = [];
      let stop = false;
      const load = sids.map(async (sid, i) => {
        for (let n = 0; !stop; n++) {
          const at = Date.now();
          try {
            const res = await fetch(stack.mcpUrl, {
              method: 'POST',
              headers: { ...MCP, 'mcp-session-id': sid },
              body: JSON.stringify({ jsonrpc: '2.0', id: n, method: 'tools/call', params: { name: 'echo', arguments: { text: `${i}:${n}` } } }),
            });
            await res.arrayBuffer();
            results.push({ at, status: res.status });
          } catch {
            results.push({ at, status: 0 });
          }
          // Failed answers come back at once; don't spin on them.
          if (results.at(-1)!.status !== 200) await new Promise((r) => setTimeout(r, 5));
        }
      });
      let healthyAt = 0;
      try {
        await eventually(async () => results.filter((r) => r.status === 200).length >= 20, 'load flowing');
        await pin.kill();
        await stack.redis!.stop();
        const starting = pin.start();
        // Listening, but its store never answered: refused, and NOT_SERVING.
        // (Before it listens, the gRPC client's own UNAVAILABLE says "No connection established".)
        await eventually(
          async () => /store has not answered yet/.test((await streamStatus(pin.port)).details),
          'ext_proc streams refused by mcp-pin',
          10_000,
          100,
        );
        expect((await streamStatus(pin.port)).code, 'UNAVAILABLE').to.equal(14);
        const h = healthClient(pin.port);
        try {
          expect(await h.check('envoy.service.ext_proc.v3.ExternalProcessor')).to.equal('NOT_SERVING');
        } finally {
          h.close();
        }
        await stack.redis!.start();
        await starting;
        await eventually(() => stack.envoy.extProcHealthy(pin.port), 'healthy in Envoy again', 15_000, 20);
        healthyAt = Date.now();
        expect((await streamStatus(pin.port)).code, 'a stream once the store answered').to.equal(0);
        await eventually(async () => results.filter((r) => r.at >= healthyAt && r.status === 200).length >= 60, 'load served after the restart', 20_000, 10);
      } finally {
        stop = true;
        await Promise.all(load);
      }
      const after = results.filter((r) => r.at >= healthyAt);
      const failedBefore = results.filter((r) => r.at < healthyAt && r.status !== 200).length;
      console.log(
        `      start-up: ${results.length} requests, ${failedBefore} failed while the replica was down or not yet healthy, ${after.filter((r) => r.status !== 200).length} of ${after.length} after`,
      );
      expect(
        after.filter((r) => r.status !== 200),
        'failed requests once Envoy saw the replica healthy',
      ).to.deep.equal([]);
      expect(await pin.metric('mcp_pin_stream_errors_total{code="MCP_PIN_STARTING"}')).to.be.at.least(1);
    });
  });
});
