/**
 * Issue 27 item 2: losing an mcp-pin replica loses no request. Two replicas
 * behind Envoy over Unix sockets (as shipped), six clients of sessions
 * recovered before, calling without pause; one replica SIGKILLed (its socket left behind, refusing), later
 * started again; then every replica restarted with SIGTERM, one at a time.
 * Zero client errors throughout, every call on its pinned pod.
 */
import { expect } from 'chai';
import type { TestClient } from '../helpers/mcp-client.js';
import { eventually } from '../helpers/net.js';
import { stackPerTest } from '../helpers/stack-fixture.js';

interface Load {
  sent: () => number;
  errors: string[];
  misplaced: string[];
  stop: () => Promise<void>;
}

/** Every client calls in a loop until stopped (echo, and every fifth a 300 ms call); errors and calls off their pinned pod are kept. */
async function steadyLoad(clients: TestClient[]): Promise<Load> {
  const homes = await Promise.all(clients.map(async (c) => (await c.whoami()).pod));
  let stopped = false;
  let sent = 0;
  const errors: string[] = [];
  const misplaced: string[] = [];
  const loops = clients.map(async (c, i) => {
    for (let n = 0; !stopped; n++) {
      sent++;
      try {
        const pod =
          n % 5 === 4
            ? (JSON.parse(((await c.client.callTool({ name: 'slow', arguments: { ms: 300 } })).content as { text: string }[])[0]!.text) as { pod: string }).pod
            : (await c.echo(`${i}:${n}`)).pod;
        if (pod !== homes[i]) misplaced.push(`${i}:${n} on ${pod}`);
      } catch (err) {
        errors.push(`${i}:${n} ${(err as Error).message}`);
      }
    }
  });
  return {
    sent: () => sent,
    errors,
    misplaced,
    stop: async () => {
      stopped = true;
      await Promise.all(loops);
    },
  };
}

describe('losing an mcp-pin replica (issue 27 item 2)', function () {
  this.timeout(120_000);
  const fx = stackPerTest();
  const CLIENTS = 6;

  async function loadedStack(): Promise<Load> {
    const stack = await fx.start({ pods: 2, replicas: 2, transport: 'unix' });
    const clients: TestClient[] = [];
    for (let i = 0; i < CLIENTS; i++) clients.push(await fx.client());
    // Every session recovered before the load (its pod knows it by another id, and Envoy puts the client's back on each answer).
    for (const p of stack.pods) await p.restartInPlace();
    // The load is steady pinned traffic: every recovery done, and no replica
    // still holding a stale pin in its cache (which costs a retry for up to
    // the cache's TTL after a recovery). A retry whose recovery a dying
    // replica was running is a double fault this test is not about (see
    // docs/operations.md). Settled when a round of calls made no retry.
    const retries = async (): Promise<number> =>
      Number(
        /upstream_rq_retry: (\d+)/.exec(await (await fetch(`${stack.envoy.adminUrl}/stats?filter=^cluster.mcp_pinned.upstream_rq_retry$`)).text())?.[1] ?? NaN,
      );
    await eventually(
      async () => {
        const before = await retries();
        for (const c of clients) for (let i = 0; i < stack.pins.length; i++) await c.echo('settling');
        return (await retries()) === before;
      },
      'a round of calls with no retry (recoveries done, no stale pin cached)',
      20_000,
      50,
    );
    const load = await steadyLoad(clients);
    await eventually(async () => load.sent() >= 50, 'load flowing', 10_000, 10);
    return load;
  }
  const flowing = (load: Load, what: string): Promise<boolean> => {
    const from = load.sent();
    return eventually(async () => load.sent() >= from + 100, what, 15_000, 10);
  };

  it('SIGKILL of one of two replicas under load, and its restart: zero client errors', async () => {
    const load = await loadedStack();
    const victim = fx.stack.pins[0]!;
    await victim.kill();
    // Until Envoy's health checks see it gone, and well past.
    await flowing(load, 'load after the kill');
    await new Promise((r) => setTimeout(r, 3000));
    await flowing(load, 'load 3 s after the kill');
    await victim.start();
    await flowing(load, 'load after the restart');
    await load.stop();
    console.log(`      SIGKILL: ${load.sent()} calls, ${load.errors.length} errors`);
    expect(load.errors, 'client-visible errors').to.deep.equal([]);
    expect(load.misplaced, 'calls off their pinned pod').to.deep.equal([]);
  });

  it('a rolling restart (SIGTERM, one replica at a time) under load: zero client errors', async () => {
    const load = await loadedStack();
    for (const pin of fx.stack.pins) {
      await pin.stop();
      await flowing(load, `load while ${pin.name} is down`);
      await pin.start();
      await flowing(load, `load after ${pin.name} is back`);
    }
    await load.stop();
    console.log(`      rolling restart: ${load.sent()} calls, ${load.errors.length} errors`);
    expect(load.errors, 'client-visible errors').to.deep.equal([]);
    expect(load.misplaced, 'calls off their pinned pod').to.deep.equal([]);
  });
});
