/**
 * Issue 14: a pod dies mid-request (SIGKILL; Envoy sees the connection reset
 * before any answer). A request safe to run twice is replayed on the pod the
 * session is recovered onto; a tool call is not (the pod may have run it)
 * and gets a clear error. Real Envoy 1.40 (its MCP filter names the method),
 * redis-server, SDK pods and the SDK client.
 */
import { expect } from 'chai';
import { connectClient, type TestClient } from '../helpers/mcp-client.js';
import { eventually } from '../helpers/net.js';
import { startStack, type Stack, type StackOptions } from '../helpers/stack.js';

describe('replay after a connection reset (issue 14)', function () {
  this.timeout(120_000);
  let stack: Stack;
  const clients: TestClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await stack?.stop();
  });

  async function slowCallsThenKill(opts: StackOptions = {}) {
    stack = await startStack({ pods: 2, ...opts });
    const c = await connectClient(stack.mcpUrl);
    clients.push(c);
    const sid = c.sessionId();
    const home = stack.podByName((await c.whoami()).pod);
    const other = stack.pods.find((p) => p !== home)!;
    const read = c.client.readResource({ uri: 'slow://1500' }).then((r) => ({ ok: true as const, text: (r.contents[0] as { text: string }).text }), (e: Error) => ({ ok: false as const, error: e.message }));
    const tool = c.client.callTool({ name: 'slow', arguments: { ms: 1500 } }).then(() => ({ ok: true as const }), (e: Error) => ({ ok: false as const, error: e.message }));
    // Both are running on the session's pod when it dies.
    await eventually(async () => {
      const seen = (await home.record()).requests.map((r) => r.rpcMethod);
      return seen.includes('resources/read') && seen.includes('tools/call');
    }, 'the slow read and the slow tool call running on the pod', 10_000, 20);
    await home.kill();
    return { c, sid, home, other, read: await read, tool: await tool };
  }

  it('replays a read-only call on the pod that took the session over, exactly once; a tool call in flight gets a clear error', async () => {
    const { c, sid, other, read, tool } = await slowCallsThenKill({ podEnv: { POD_JSON: '1' } });
    expect(read, 'the read').to.deep.equal({ ok: true, text: JSON.stringify({ pod: other.name, slept: 1500 }) });
    expect(tool.ok, 'the tool call').to.equal(false);
    expect((tool as { error: string }).error).to.match(/closed the connection before answering; the request may have run there, so it was not sent again/);
    const rec = await other.record();
    expect(rec.reads.filter((u) => u === 'slow://1500'), 'reads the new pod ran').to.have.length(1);
    expect(rec.requests.filter((r) => r.rpcMethod === 'tools/call'), 'tool calls the new pod ran').to.have.length(0);
    expect(rec.initialize, 'one re-initialize').to.have.length(1);
    expect(c.sessionId()).to.equal(sid);
    expect((await c.echo('after')).pod, 'the session lives on the new pod').to.equal(other.name);
  });

  it('replays nothing after a reset when the operator lists no method (replayAfterReset empty)', async () => {
    const { read, tool } = await slowCallsThenKill({ podEnv: { POD_JSON: '1' }, envoy: { replayAfterReset: [] } });
    expect(read.ok, 'the read').to.equal(false);
    expect((read as { error: string }).error).to.match(/may have run there/);
    expect(tool.ok).to.equal(false);
  });
});
