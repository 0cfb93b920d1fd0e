import { expect } from 'chai';
import { connectClient } from '../helpers/mcp-client.js';
import { startStack, type Stack } from '../helpers/stack.js';

describe('smoke', function () {
  let stack: Stack;
  before(async function () {
    stack = await startStack({ pods: 2 });
  });
  after(async () => stack?.stop());

  it('initializes and calls a tool through Envoy', async () => {
    const c = await connectClient(stack.mcpUrl);
    const who = await c.whoami();
    const who2 = await c.whoami();
    console.log(who, who2, c.sessionId());
    console.log(stack.pins[0]!.proc.output.slice(-2000));
    console.log(stack.envoy.proc.output.slice(-2000));
    expect(who2.pod).to.equal(who.pod);
    await c.close();
  });
});
