/**
 * The stack-per-test fixture: call it in a describe body; it starts a stack
 * when a test asks, opens SDK clients on it, and after each test runs what
 * the test deferred, closes every client and stops the stack (also when the
 * test failed).
 */
import { connectClient, type TestClient } from './mcp-client.js';
import { startStack, type Stack, type StackOptions } from './stack.js';

export interface StackFixture {
  /** The stack the current test started (the last one, if it started more). */
  readonly stack: Stack;
  /** Starts a stack, stopped after the test; a test may start more than one (each its own Envoy, replicas, pods). */
  start(opts?: StackOptions): Promise<Stack>;
  /** An SDK client on the stack's MCP endpoint, closed after the test. */
  client(opts?: Parameters<typeof connectClient>[1]): Promise<TestClient>;
  /** Clients a test opened itself (push them here): closed after the test like the fixture's own. */
  readonly clients: TestClient[];
  /** Runs fn after the test, before its clients close and its stack stops (last deferred first). */
  defer(fn: () => unknown): void;
}

export function stackPerTest(): StackFixture {
  const stacks: Stack[] = [];
  const clients: TestClient[] = [];
  const deferred: (() => unknown)[] = [];
  afterEach(async () => {
    for (const fn of deferred.splice(0).reverse()) await fn();
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(stacks.splice(0).map((s) => s.stop()));
  });
  return {
    get stack(): Stack {
      const last = stacks.at(-1);
      if (!last) throw new Error('no stack started in this test');
      return last;
    },
    async start(opts) {
      const stack = await startStack(opts);
      stacks.push(stack);
      return stack;
    },
    async client(opts) {
      const c = await connectClient(this.stack.mcpUrl, opts);
      clients.push(c);
      return c;
    },
    clients,
    defer(fn) {
      deferred.push(fn);
    },
  };
}
