/**
 * `npm run stack`: the local stack. Envoy 1.40 (from the project template),
 * two mcp-pin replicas, a redis-server of its own (or REDIS_URL, or the memory
 * store with --memory and then one replica), and two demo MCP pods on
 * 127.0.0.2 / 127.0.0.3. Prints where to connect, every process with its PID
 * and log file (.stack/logs/), runs a demo MCP client once (initialize + a
 * tool call), says what to try next, then stays up until Ctrl-C, which stops
 * every process and removes their temporary folders.
 *
 * Flags: --port N (public MCP port, default 10000; 0 = any), --memory,
 * --logs (also stream every process's log here, each line with its name),
 * --once (exit after the demo client; the test suite uses this).
 *
 * While it runs, `npm run stack:pod -- kill|restore NAME` kills a demo pod
 * (SIGKILL: its sessions are gone) or starts it again at its address
 * (scripts/stack-pod.ts, through a control endpoint on 127.0.0.1 named in
 * .stack/control.json).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import { parseArgs } from 'node:util';
import { connectClient } from '../test/helpers/mcp-client.js';
import { killAll, teeOutput } from '../test/helpers/process.js';
import { startStack } from '../test/helpers/stack.js';

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string', default: '10000' },
    memory: { type: 'boolean', default: false },
    once: { type: 'boolean', default: false },
    logs: { type: 'boolean', default: false },
  },
});

const STATE_DIR = new URL('../.stack/', import.meta.url).pathname;
const LOG_DIR = `${STATE_DIR}logs`;
export const CONTROL_FILE = `${STATE_DIR}control.json`;

async function main(): Promise<void> {
  const say = (s: string): void => void process.stdout.write(`${s}\n`);
  // Every process's whole output in its own file, fresh for this run.
  rmSync(LOG_DIR, { recursive: true, force: true });
  mkdirSync(LOG_DIR, { recursive: true });
  process.env.PROCESS_LOG_DIR = LOG_DIR;
  if (flags.logs) {
    const partial = new Map<string, string>();
    teeOutput((name, text) => {
      const lines = ((partial.get(name) ?? '') + text).split('\n');
      partial.set(name, lines.pop() ?? '');
      for (const line of lines) say(`[${name}] ${line}`);
    });
  }
  const memory = flags.memory;
  // A busy public port: say so now, by its number, not after Envoy failed to bind it.
  const port = Number(flags.port);
  if (port !== 0) {
    const busy = await new Promise<string | null>((resolve) => {
      const probe = createTcpServer();
      probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
      probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(null)));
    });
    if (busy) {
      process.stderr.write(
        `mcp-pin stack: port ${port} is not free (${busy}): another process listens there (a stack already running?). --port N picks another, --port 0 any free one.\n`,
      );
      process.exit(1);
    }
  }
  const stack = await startStack({
    pods: 2,
    store: memory ? 'memory' : 'redis',
    ...(process.env.REDIS_URL && !memory ? { redisUrl: process.env.REDIS_URL } : {}),
    redisAppendOnly: true,
    replicas: memory ? 1 : 2,
    listenPort: Number(flags.port),
    // As shipped: mcp-pin's gRPC port and Envoy's internal listener are Unix sockets (mode 0660).
    transport: 'unix',
    // The demo pods live on 127.0.0.2 and 127.0.0.3: pins may point nowhere else.
    pinEnv: { MCP_PIN_PIN_ALLOW: '127.0.0.2/31', MCP_PIN_KEY_PREFIX: 'mcp-pin:' },
  });
  const { envoy, pins, pods, storeUrl, redis } = stack;
  const logOf = (name: string): string => `${LOG_DIR}/${name.replace(/[^\w.-]/g, '_')}.log`;

  // The control endpoint stack:pod talks to.
  const act = async (pod: (typeof pods)[number], action: string): Promise<string> => {
    if (action === 'kill') {
      if (!pod.proc.alive) return `${pod.name} was not running`;
      await pod.kill();
      return `${pod.name} killed (SIGKILL): its sessions are gone`;
    }
    if (pod.proc.alive) return `${pod.name} is running (pid ${pod.proc.child?.pid})`;
    await pod.start();
    return `${pod.name} started again at ${pod.host}:${pod.port}, pid ${pod.proc.child?.pid}: it knows no sessions`;
  };
  const control = createServer((req, res) => {
    const m = /^\/pods\/([\w-]+)\/(kill|restore)$/.exec(req.url ?? '');
    const pod = m ? pods.find((p) => p.name === m[1]) : undefined;
    if (req.method !== 'POST' || !m || !pod) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`no such pod or action; pods: ${pods.map((p) => p.name).join(', ')}\n`);
      return;
    }
    act(pod, m[2] ?? '').then(
      (text) => {
        say(`stack:pod: ${text}`);
        res.writeHead(200, { 'content-type': 'text/plain' }).end(`${text}\n`);
      },
      (err: unknown) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${(err as Error).message}\n`),
    );
  });
  const controlPort = await new Promise<number>((resolve) => control.listen(0, '127.0.0.1', () => resolve((control.address() as { port: number }).port)));
  writeFileSync(CONTROL_FILE, JSON.stringify({ url: `http://127.0.0.1:${controlPort}`, pid: process.pid }));

  say('');
  say('mcp-pin local stack is up');
  say(`  MCP endpoint (connect your client here): ${envoy.mcpUrl}`);
  say(`  store:         ${storeUrl}${storeUrl === 'memory:' ? ' (in-memory: single replica)' : ''}${redis ? ` (data in ${redis.dir})` : ''}`);
  say(
    `  mcp-pin:       ${pins.map((p, i) => `grpc ${stack.pinSockets?.[i] ?? `127.0.0.1:${p.port}`}, metrics http://127.0.0.1:${p.metricsPort}/metrics`).join('\n                 ')}`,
  );
  say(`  demo pods:     ${pods.map((p) => `${p.name} ${p.host}:${p.port}`).join(', ')}`);
  say(`  Envoy admin:   ${envoy.adminUrl}`);
  say(`  Envoy config:  ${envoy.dir}/envoy.yaml`);
  say('');
  say('processes (pid, log file):');
  const procs = [envoy.proc, ...pins.map((p) => p.proc), ...pods.map((p) => p.proc), ...(redis ? [redis.proc] : [])];
  for (const p of procs) say(`  ${p.name.padEnd(14)} pid ${String(p.child?.pid).padEnd(8)} ${logOf(p.name)}`);
  say('');

  const c = await connectClient(envoy.mcpUrl, { name: 'mcp-pin-stack-demo' });
  const who = await c.whoami();
  const echo = await c.echo('hello through mcp-pin');
  say(`demo client: session ${c.sessionId()} is pinned to ${who.pod}; echo answered by ${echo.pod}`);
  await c.transport.terminateSession();
  await c.close();

  if (flags.once) {
    await shutdown();
    return;
  }
  say('');
  say('Try next (in another terminal):');
  say(`  connect an MCP client to ${envoy.mcpUrl} and call a tool; note the pod that answers`);
  say('  npm run stack:pod -- kill pod1      # the pod holding the session dies; the next call is recovered on the other pod');
  say('  npm run stack:pod -- restore pod1   # it comes back at its address, knowing no sessions');
  say(`  tail -f ${LOG_DIR}/mcp-pin-*.log     # mcp-pin's log: "session re-initialized" (or run the stack with -- --logs)`);
  // Every replica's counters: a recovery is counted by whichever replica ran it.
  say(`  for p in ${pins.map((p) => p.metricsPort).join(' ')}; do curl -s http://127.0.0.1:$p/metrics | grep '^mcp_pin_requests_total'; done`);
  if (storeUrl !== 'memory:') {
    say(`  npx mcp-pin sessions list --store-url ${storeUrl} --key-prefix ${stack.keyPrefix}        # every session and its pod`);
    say(`  npx mcp-pin sessions get <session id> --store-url ${storeUrl} --key-prefix ${stack.keyPrefix}`);
  }
  say('Ctrl-C to stop.');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await shutdown();

  async function shutdown(): Promise<void> {
    control.close();
    rmSync(CONTROL_FILE, { force: true });
    await stack.stop();
    say('stack stopped');
  }
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`stack failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => killAll());
