/**
 * Issue 27 item 1: a call that meets a recovery may run as long as one that
 * does not. Pods at their frameworks' defaults (Node http and uvicorn close
 * an idle keep-alive connection after 5 s); a session's pod restarted; 20
 * concurrent tool calls of 30 s and 120 s, whose retries land on the two
 * other pods: one recovers the session, and the retries on the other one
 * are redirected to it (Envoy starts them again; nothing is held open under
 * them). Each call returns its own result and ran once.
 */
import { expect } from 'chai';
import { connectClient, type TestClient } from '../helpers/mcp-client.js';
import { eventually } from '../helpers/net.js';
import type { PodKind } from '../helpers/pod.js';
import type { Stack } from '../helpers/stack.js';
import { stackPerTest, type StackFixture } from '../helpers/stack-fixture.js';

const CALLS = 20;
const LENGTHS_MS = [30_000, 120_000];

function textOf(result: unknown): string {
  return (result as { content: { text: string }[] }).content[0]!.text;
}

async function toolCallsRun(stack: Stack): Promise<number> {
  const counts = await Promise.all(
    stack.pods.map(async (p) => (await p.record()).requests.filter((r) => r.rpcMethod === 'tools/call' && r.status === 200).length),
  );
  return counts.reduce((a, b) => a + b, 0);
}

/** One round on its own stack: what each call returned, and how many retries mcp-pin redirected. */
async function longCallsMeetARecovery(
  fx: StackFixture,
  podKind: PodKind,
): Promise<{ stack: Stack; client: TestClient; results: { slept: number; pod: string }[]; redirected: number; ranBefore: number }> {
  const stack = await fx.start({ pods: 3, replicas: 2, podKind });
  const client = await connectClient(stack.mcpUrl);
  fx.clients.push(client);
  const home = stack.podByName((await client.whoami()).pod);
  await home.restartInPlace();
  const ranBefore = await toolCallsRun(stack);
  const calls = Array.from({ length: CALLS }, (_, i) => {
    const ms = LENGTHS_MS[i % LENGTHS_MS.length]! + i;
    return client.client
      .callTool({ name: 'slow', arguments: { ms } }, undefined, { timeout: 300_000 })
      .then((r) => JSON.parse(textOf(r)) as { slept: number; pod: string });
  });
  const results = await Promise.all(calls);
  let redirected = 0;
  for (const p of stack.pins) redirected += await p.metric('mcp_pin_requests_total{outcome="redirected"}');
  return { stack, client, results, redirected, ranBefore };
}

describe('long calls that meet a recovery (issue 27 item 1)', function () {
  this.timeout(400_000);
  const fx = stackPerTest();

  it('tool calls of 30 s and 120 s, 20 at once, on TypeScript and Python pods at their keep-alive defaults: each returns its own result, each ran once', async () => {
    // Both frameworks at once: the calls mostly sleep.
    const rounds = await Promise.all((['ts', 'python-1.30'] as PodKind[]).map((kind) => longCallsMeetARecovery(fx, kind)));
    for (const [i, r] of rounds.entries()) {
      const kind = i === 0 ? 'TypeScript' : 'Python';
      expect(
        r.results.map((x) => x.slept),
        `${kind}: each call its own result`,
      ).to.deep.equal(Array.from({ length: CALLS }, (_, j) => LENGTHS_MS[j % LENGTHS_MS.length]! + j));
      expect(new Set(r.results.map((x) => x.pod)).size, `${kind}: all answered by the pod that took the session over`).to.equal(1);
      expect(r.redirected, `${kind}: some retries landed on the other pod and were redirected (the scenario happened)`).to.be.greaterThan(0);
      expect(
        r.client.seen.map((x) => x.status),
        `${kind}: Envoy followed the redirects itself`,
      ).to.not.include(308);
      await eventually(async () => (await toolCallsRun(r.stack)) - r.ranBefore >= CALLS, `${kind}: the pods recorded the calls`);
      expect((await toolCallsRun(r.stack)) - r.ranBefore, `${kind}: each call ran once`).to.equal(CALLS);
    }
  });
});
