/**
 * Issue 14: a pod dies mid-request (SIGKILL; Envoy sees the connection reset
 * before any answer). A request safe to run twice is replayed on the pod the
 * session is recovered onto; a tool call is not (the pod may have run it)
 * and gets a clear error. Real Envoy 1.40 (its MCP filter names the method),
 * redis-server, SDK pods and the SDK client.
 */
import { expect } from 'chai';
import { connectClient } from '../helpers/mcp-client.js';
import { eventually } from '../helpers/net.js';
import { stackPerTest } from '../helpers/stack-fixture.js';
import type { Stack, StackOptions } from '../helpers/stack.js';

describe('replay after a connection reset (issue 14)', function () {
  this.timeout(120_000);
  const fx = stackPerTest();
  const { clients } = fx;
  let stack: Stack;

  async function slowCallsThenKill(opts: StackOptions = {}, timeoutMs?: number) {
    stack = await fx.start({ pods: 2, ...opts });
    const c = await connectClient(stack.mcpUrl);
    clients.push(c);
    const sid = c.sessionId();
    const home = stack.podByName((await c.whoami()).pod);
    const other = stack.pods.find((p) => p !== home)!;
    const read = c.client.readResource({ uri: 'slow://1500' }, timeoutMs ? { timeout: timeoutMs } : undefined).then(
      (r) => ({ ok: true as const, text: (r.contents[0] as { text: string }).text }),
      (e: Error) => ({ ok: false as const, error: e.message }),
    );
    const tool = c.client.callTool({ name: 'slow', arguments: { ms: 1500 } }, undefined, timeoutMs ? { timeout: timeoutMs } : undefined).then(
      (r) => ({ ok: true as const, text: ((r.content as { text: string }[])[0] ?? { text: '' }).text }),
      (e: Error) => ({ ok: false as const, error: e.message }),
    );
    // Both are running on the session's pod when it dies.
    await eventually(
      async () => {
        const seen = (await home.record()).requests.map((r) => r.rpcMethod);
        return seen.includes('resources/read') && seen.includes('tools/call');
      },
      'the slow read and the slow tool call running on the pod',
      10_000,
      20,
    );
    await home.kill();
    return { c, sid, home, other, read: await read, tool: await tool };
  }

  it('replays a read-only call on the pod that took the session over, exactly once; a tool call in flight gets a clear error', async () => {
    const { c, sid, other, read, tool } = await slowCallsThenKill({ podEnv: { POD_JSON: '1' } });
    expect(read, 'the read').to.deep.equal({ ok: true, text: JSON.stringify({ pod: other.name, slept: 1500 }) });
    expect(tool.ok, 'the tool call').to.equal(false);
    expect((tool as { error: string }).error).to.match(/closed the connection before answering; the request may have run there, so it was not sent again/);
    const rec = await other.record();
    expect(
      rec.reads.filter((u) => u === 'slow://1500'),
      'reads the new pod ran',
    ).to.have.length(1);
    expect(
      rec.requests.filter((r) => r.rpcMethod === 'tools/call'),
      'tool calls the new pod ran',
    ).to.have.length(0);
    expect(rec.initialize, 'one re-initialize').to.have.length(1);
    expect(c.sessionId()).to.equal(sid);
    expect((await c.echo('after')).pod, 'the session lives on the new pod').to.equal(other.name);
  });

  it('replays a read on a pod that answers with SSE (the SDK default) too: Envoy holds the answer until it is whole, so the pod dying mid-answer is a reset before the response started (holdSafeResponses)', async () => {
    const { c, sid, other, read, tool } = await slowCallsThenKill({}, 5000);
    expect(read, 'the read').to.deep.equal({ ok: true, text: JSON.stringify({ pod: other.name, slept: 1500 }) });
    const rec = await other.record();
    expect(
      rec.reads.filter((u) => u === 'slow://1500'),
      'reads the new pod ran',
    ).to.have.length(1);
    expect(rec.initialize, 'one re-initialize').to.have.length(1);
    expect(c.sessionId()).to.equal(sid);
    // A tool call's answer is not held (it may stream progress): never
    // replayed. If its SSE stream had started, the client waits for its own
    // request timeout; if not yet, Envoy says it may have run.
    expect(tool.ok, 'the tool call').to.equal(false);
    expect((tool as { error: string }).error).to.match(/timed out|may have run there/i);
    expect(
      rec.requests.filter((r) => r.rpcMethod === 'tools/call'),
      'tool calls the new pod ran',
    ).to.have.length(0);
  });

  it('replays a call of a tool the operator named safe to run twice (replaySafeTools), SSE answer held: it returns from the new pod, run there once', async () => {
    const { c, sid, other, tool } = await slowCallsThenKill({ envoy: { replaySafeTools: ['slow'] } }, 5000);
    expect(tool, 'the tool call').to.deep.equal({ ok: true, text: JSON.stringify({ pod: other.name, slept: 1500 }) });
    const rec = await other.record();
    expect(
      rec.requests.filter((r) => r.rpcMethod === 'tools/call'),
      'tool calls the new pod ran',
    ).to.have.length(1);
    expect(rec.initialize, 'one re-initialize').to.have.length(1);
    expect(c.sessionId()).to.equal(sid);
    // Other tools stay unreplayed: a call of echo is pinned as before.
    expect((await c.echo('after')).pod).to.equal(other.name);
  });

  it('holds large answers whole too: a 10 MiB read through the replay route arrives intact', async () => {
    stack = await fx.start({ pods: 2 });
    const c = await connectClient(stack.mcpUrl);
    clients.push(c);
    const r = await c.client.readResource({ uri: `big://${10 * 1024 * 1024}` });
    expect((r.contents[0] as { text: string }).text.length).to.equal(10 * 1024 * 1024);
  });

  it('fails a held answer over holdSafeResponsesMaxBytes with a JSON-RPC error, not a cut stream', async () => {
    stack = await fx.start({ pods: 2, envoy: { holdSafeResponsesMaxBytes: 2 * 1024 * 1024 } });
    const c = await connectClient(stack.mcpUrl);
    clients.push(c);
    const err = await c.client.readResource({ uri: `big://${3 * 1024 * 1024}` }).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(err).to.match(/response_payload_too_large/);
    // Under the bound it is whole.
    expect(((await c.client.readResource({ uri: `big://${1024 * 1024}` })).contents[0] as { text: string }).text.length).to.equal(1024 * 1024);
  });

  it('without holdSafeResponses, a read on an SSE pod that dies mid-answer is not replayed (its answer had started)', async () => {
    const { read } = await slowCallsThenKill({ envoy: { holdSafeResponses: false } }, 5000);
    expect(read.ok, 'the read').to.equal(false);
  });

  it('replays nothing after a reset when the operator lists no method (replayAfterReset empty)', async () => {
    const { read, tool } = await slowCallsThenKill({ podEnv: { POD_JSON: '1' }, envoy: { replayAfterReset: [] } });
    expect(read.ok, 'the read').to.equal(false);
    expect((read as { error: string }).error).to.match(/may have run there/);
    expect(tool.ok).to.equal(false);
  });
});
