/**
 * `npm run stack`: the local stack. Envoy 1.40 (from the project template),
 * two mcp-pin replicas, a redis-server of its own (or REDIS_URL, or the memory
 * store with --memory and then one replica), and two demo MCP pods on
 * 127.0.0.2 / 127.0.0.3. Prints where to connect, runs a demo MCP client once
 * (initialize + a tool call), then stays up until Ctrl-C.
 *
 * Flags: --port N (public MCP port, default 10000; 0 = any), --memory, --once
 * (exit after the demo client; the test suite uses this).
 */
import { parseArgs } from 'node:util';
import { connectClient } from '../test/helpers/mcp-client.js';
import { killAll } from '../test/helpers/process.js';
import { startStack } from '../test/helpers/stack.js';

const { values: flags } = parseArgs({
  options: { port: { type: 'string', default: '10000' }, memory: { type: 'boolean', default: false }, once: { type: 'boolean', default: false } },
});

async function main(): Promise<void> {
  const say = (s: string): void => void process.stdout.write(`${s}\n`);
  const memory = flags.memory;
  const stack = await startStack({
    pods: 2,
    store: memory ? 'memory' : 'redis',
    ...(process.env.REDIS_URL && !memory ? { redisUrl: process.env.REDIS_URL } : {}),
    redisAppendOnly: true,
    replicas: memory ? 1 : 2,
    listenPort: Number(flags.port),
    // The demo pods live on 127.0.0.2 and 127.0.0.3: pins may point nowhere else.
    pinEnv: { MCP_PIN_PIN_ALLOW: '127.0.0.2/31', MCP_PIN_KEY_PREFIX: 'mcp-pin:' },
  });
  const { envoy, pins, pods, storeUrl } = stack;

  say('');
  say('mcp-pin local stack is up');
  say(`  MCP endpoint (connect your client here): ${envoy.mcpUrl}`);
  say(`  store:         ${storeUrl}${storeUrl === 'memory:' ? ' (in-memory: single replica)' : ''}`);
  say(`  mcp-pin:       ${pins.map((p) => `grpc 127.0.0.1:${p.port}, metrics http://127.0.0.1:${p.metricsPort}/metrics`).join('\n                 ')}`);
  say(`  demo pods:     ${pods.map((p) => `${p.name} ${p.host}:${p.port}`).join(', ')}`);
  say(`  Envoy admin:   ${envoy.adminUrl}`);
  say('');

  const c = await connectClient(envoy.mcpUrl, { name: 'mcp-pin-stack-demo' });
  const who = await c.whoami();
  const echo = await c.echo('hello through mcp-pin');
  say(`demo client: session ${c.sessionId()} is pinned to ${who.pod}; echo answered by ${echo.pod}`);
  await c.transport.terminateSession();
  await c.close();

  if (flags.once) return;
  say('Ctrl-C to stop.');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await stack.stop();
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`stack failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => killAll());
