/**
 * The stack-per-test fixture: call it in a describe body; it starts a stack
 * when a test asks, opens SDK clients on it, and after each test closes
 * every client and stops the stack (also when the test failed).
 */
import { connectClient, type TestClient } from './mcp-client.js';
import { startStack, type Stack, type StackOptions } from './stack.js';

export interface StackFixture {
  /** The stack the current test started. */
  readonly stack: Stack;
  start(opts?: StackOptions): Promise<Stack>;
  /** An SDK client on the stack's MCP endpoint, closed after the test. */
  client(opts?: Parameters<typeof connectClient>[1]): Promise<TestClient>;
  /** Clients a test opened itself (push them here): closed after the test like the fixture's own. */
  readonly clients: TestClient[];
}

export function stackPerTest(): StackFixture {
  let current: Stack | undefined;
  const clients: TestClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await current?.stop();
    current = undefined;
  });
  return {
    get stack(): Stack {
      if (!current) throw new Error('no stack started in this test');
      return current;
    },
    async start(opts) {
      current = await startStack(opts);
      return current;
    },
    async client(opts) {
      const c = await connectClient(this.stack.mcpUrl, opts);
      clients.push(c);
      return c;
    },
    clients,
  };
}
