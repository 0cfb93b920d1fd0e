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
import { startEnvoy } from '../test/helpers/envoy.js';
import { McpPinProcess } from '../test/helpers/mcp-pin.js';
import { freePort } from '../test/helpers/net.js';
import { startPods } from '../test/helpers/pod.js';
import { killAll } from '../test/helpers/process.js';
import { startRedis } from '../test/helpers/redis.js';

const { values: flags } = parseArgs({
  options: { port: { type: 'string', default: '10000' }, memory: { type: 'boolean', default: false }, once: { type: 'boolean', default: false } },
});

async function main(): Promise<void> {
  const say = (s: string): void => void process.stdout.write(`${s}\n`);
  let storeUrl = 'memory:';
  if (!flags.memory) {
    if (process.env.REDIS_URL) storeUrl = process.env.REDIS_URL;
    else storeUrl = (await startRedis({ appendonly: true })).url;
  }
  const replicas = storeUrl === 'memory:' ? 1 : 2;
  const pods = await startPods(2);
  const pinPorts = await Promise.all(Array.from({ length: replicas }, () => freePort()));
  const envoy = await startEnvoy({
    extProc: pinPorts.map((port) => ({ host: '127.0.0.1', port })),
    pods: pods.map((p) => p.address),
    overrides: { listenPort: Number(flags.port) },
  });
  const pins = await Promise.all(
    pinPorts.map((port, i) =>
      // The demo pods live on 127.0.0.2 and 127.0.0.3: pins may point nowhere else.
      new McpPinProcess(`mcp-pin-${i + 1}`, port, { MCP_PIN_STORE_URL: storeUrl, MCP_PIN_RECOVERY_URL: envoy.internalUrl, MCP_PIN_PIN_ALLOW: '127.0.0.2/31' }).start(),
    ),
  );

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
  await Promise.all([envoy.stop(), ...pins.map((p) => p.stop()), ...pods.map((p) => p.stop())]);
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`stack failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => killAll());
