/**
 * Issue 14: a rolling update of the MCP server Deployment, the way
 * Kubernetes does it, under steady traffic of SDK clients: zero client
 * errors. Real Envoy 1.40, redis-server, SDK pods and SDK clients.
 * Issue 20: the same rollout on Python SDK pods (uvicorn), which close every
 * open response at once on SIGTERM: each pod leaves discovery first and gets
 * SIGTERM once it has drained (what a preStop hook does in Kubernetes).
 */
import { expect } from 'chai';
import { LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { Redis } from 'ioredis';
import { connectClient } from '../helpers/mcp-client.js';
import { eventually } from '../helpers/net.js';
import { Pod, type PodKind } from '../helpers/pod.js';
import type { Stack } from '../helpers/stack.js';
import { stackPerTest } from '../helpers/stack-fixture.js';

const address = (p: Pod): string => `${p.host}:${p.port}`;

/** Every stored pin: client session id -> pod address. */
async function pins(stack: Stack): Promise<Map<string, string>> {
  const r = new Redis(stack.redis!.url);
  try {
    const out = new Map<string, string>();
    for (const key of await r.keys(`${stack.keyPrefix}{*}`)) {
      if (key.endsWith(':lock')) continue;
      const pod = await r.hget(key, 'pod');
      if (pod) out.set(key.slice(stack.keyPrefix.length + 1, -1), pod);
    }
    return out;
  } finally {
    r.disconnect();
  }
}

async function sumMetric(stack: Stack, sample: string): Promise<number> {
  return (await Promise.all(stack.pins.map((p) => p.metric(sample)))).reduce((a, b) => a + b, 0);
}

describe('rolling update of the MCP server pods (issue 14)', function () {
  this.timeout(240_000);
  const fx = stackPerTest();
  const extraPods: Pod[] = [];
  afterEach(async () => {
    await Promise.all(extraPods.splice(0).map((p) => p.stop()));
  });

  /**
   * What a pod needs before SIGTERM. A TypeScript SDK pod here finishes its
   * requests itself after the signal (demo/mcp-pod.ts). A uvicorn pod cuts
   * them: it waits, out of discovery, until nothing is in flight and no
   * request came for 300 ms (the preStop delay), then gets the signal.
   */
  async function drained(pod: Pod): Promise<void> {
    if (pod.kind === 'ts') return;
    let last = -1;
    let quietSince = Date.now();
    await eventually(
      async () => {
        const r = await pod.record();
        if (r.requests.length !== last || (r.inFlight ?? 0) > 0) {
          last = r.requests.length;
          quietSince = Date.now();
        }
        return Date.now() - quietSince >= 300;
      },
      `${pod.name} drained`,
      20_000,
      50,
    );
  }

  for (const kind of ['ts', 'python-1.25', 'python-1.30'] as PodKind[]) {
    it(`replaces every pod one at a time under steady traffic (${kind === 'ts' ? 'TypeScript SDK pods' : 'Python SDK pods under uvicorn, SIGTERM after leaving discovery and draining'}): zero client errors, sessions kept, one re-initialize per lost session, no pin on a retired pod`, async () => {
      await fx.start({ pods: 3, replicas: 2, podKind: kind });
      for (let i = 0; i < 12; i++) fx.clients.push(await connectClient(fx.stack.mcpUrl, { name: `client-${i}` }));
      const sids = fx.clients.map((c) => c.sessionId());
      // Client 0 listens on its standalone GET stream.
      const heard: string[] = [];
      fx.clients[0]!.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void heard.push(String(n.params.data)));

      // Steady traffic from every client: tool calls with arguments (fast and slow) and list calls.
      let stop = false;
      let sent = 0;
      const errors: string[] = [];
      const lastPods: string[][] = fx.clients.map(() => []);
      const traffic = fx.clients.map(async (c, i) => {
        for (let n = 0; !stop; n++) {
          sent++;
          try {
            if (n % 3 === 2) await c.client.listTools();
            else if (n % 3 === 1) {
              // Slow calls are in flight on the old pod when it gets SIGTERM.
              const r = await c.client.callTool({ name: 'slow', arguments: { ms: 150 } });
              lastPods[i]!.push((JSON.parse((r.content as { text: string }[])[0]!.text) as { pod: string }).pod);
            } else {
              const r = await c.echo(`${i}:${n}`);
              if (r.text !== `${i}:${n}`) errors.push(`client ${i} call ${n}: wrong answer ${r.text}`);
              lastPods[i]!.push(r.pod);
            }
          } catch (err) {
            errors.push(`client ${i} call ${n}: ${(err as Error).message}`);
          }
        }
      });
      // Whatever happens below, the traffic stops (a failed step must not leave it running).
      let live = [...fx.stack.pods];
      const retired: string[] = [];
      let lost = 0;
      let initializeSeen = 0;
      try {
        const flowing = async (what: string): Promise<void> => {
          const from = sent;
          await eventually(async () => sent >= from + 24, what, 20_000, 10);
        };
        await flowing('traffic before the rollout');

        for (const [k, old] of fx.stack.pods.entries()) {
          // The new pod starts on a new address and becomes ready: discovery adds it.
          const fresh = await new Pod({ name: `pod${4 + k}`, host: `127.0.0.${10 + k}`, kind }).start();
          extraPods.push(fresh);
          live = [...live, fresh];
          await fx.stack.envoy.setPods(live.map((p) => p.address));
          // The sessions this step will lose: those pinned to the old pod now.
          const onOld = [...(await pins(fx.stack)).values()].filter((pod) => pod === address(old)).length;
          lost += onOld;
          // The old pod leaves discovery, gets SIGTERM, finishes what it is doing, exits.
          live = live.filter((p) => p !== old);
          await fx.stack.envoy.setPods(live.map((p) => p.address));
          await drained(old);
          initializeSeen += (await old.record()).initialize.length;
          // uvicorn shuts down in order, then re-raises the SIGTERM it caught (exit by signal: code null).
          expect(await old.terminate(), `${old.name} exit code`).to.equal(kind === 'ts' ? 0 : null);
          retired.push(address(old));
          // Its sessions come back on the remaining pods as their clients go on.
          await eventually(async () => ![...(await pins(fx.stack)).values()].includes(address(old)), `no pin left on ${old.name}`, 30_000, 50);
          await flowing(`traffic after retiring ${old.name}`);
        }
        // Every client calls again on the new pods only.
        for (const l of lastPods) l.length = 0;
        await eventually(async () => errors.length > 0 || lastPods.every((l) => l.length >= 3), 'three more answers for every client', 20_000, 20);
      } finally {
        stop = true;
        await Promise.all(traffic);
      }

      console.log(`      rollout (${kind}): ${sent} requests, ${errors.length} errors, ${lost} sessions lost and recovered`);
      expect(errors, 'client-visible errors').to.deep.equal([]);
      expect(
        fx.clients.map((c) => c.sessionId()),
        'every client keeps its session id',
      ).to.deep.equal(sids);
      const finalPins = await pins(fx.stack);
      expect([...finalPins.keys()].sort(), 'one pin per client').to.deep.equal([...sids].sort());
      expect(
        [...finalPins.values()].filter((pod) => retired.includes(pod)),
        'pins on retired pods',
      ).to.deep.equal([]);
      // Every client's later calls land on one pod: the one its pin names.
      const byAddress = new Map(live.map((p) => [address(p), p.name]));
      for (const [i, l] of lastPods.entries()) expect(new Set(l), `client ${i}`).to.deep.equal(new Set([byAddress.get(finalPins.get(sids[i]!)!)]));
      // Each lost session: exactly one re-initialize (as mcp-pin counts it, and as the pods saw it).
      expect(await sumMetric(fx.stack, 'mcp_pin_recovery_seconds_count{result="recovered"}'), 're-initializes by mcp-pin').to.equal(lost);
      for (const p of live) initializeSeen += (await p.record()).initialize.length;
      expect(initializeSeen, 'initialize requests the pods saw').to.equal(12 + lost);
      expect(lost, 'every original session was lost at least once').to.be.at.least(12);
      // The listening client's standalone stream lives on, on its new pod (the TypeScript pod can send on it).
      if (kind !== 'ts') return;
      const home = live.find((p) => address(p) === finalPins.get(sids[0]!))!;
      await eventually(
        async () => (await home.notifyAll()) > 0 && heard.includes(`hello from ${home.name}`),
        'a notification on the re-opened GET stream',
        20_000,
        200,
      );
    });
  }
});
