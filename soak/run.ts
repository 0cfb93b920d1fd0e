/**
 * `npm run soak`: a bounded soak (SOAK_MINUTES, default 10; loopback only).
 * Two SDK pods, two mcp-pin replicas sharing Redis, Envoy; CLIENTS SDK
 * clients calling tools in a loop. Every RESTART_EVERY_S seconds, in turn: a
 * pod restarts in place (its sessions recover), then an mcp-pin replica is
 * drained and restarted (always replica 2; replica 1 lives throughout, so
 * its RSS and fds show whether memory is flat). Samples mcp-pin RSS, open fds
 * and open streams.
 * Reports requests, errors, lost pins (a session that stopped working or
 * whose pin is gone), RSS and fds at start and end. Not part of the tests.
 */
import { readdirSync, mkdirSync, writeFileSync } from 'node:fs';
import { rssMb } from '../bench/common.js';
import { Redis } from 'ioredis';
import { connectClient, type TestClient } from '../test/helpers/mcp-client.js';
import { eventually } from '../test/helpers/net.js';
import { killAll } from '../test/helpers/process.js';
import { startStack } from '../test/helpers/stack.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 10);
const CLIENTS = Number(process.env.SOAK_CLIENTS ?? 8);
const RESTART_EVERY_S = Number(process.env.RESTART_EVERY_S ?? 45);
const log = (s: string): void => void process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

const fds = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

async function main(): Promise<void> {
  const stack = await startStack({ pods: 2, replicas: 2, redisAppendOnly: true });
  const clients: TestClient[] = [];
  for (let i = 0; i < CLIENTS; i++) clients.push(await connectClient(stack.mcpUrl, { name: `soak-${i}` }));
  const sids = clients.map((c) => c.sessionId());
  const startedAt = Date.now();
  const deadline = startedAt + MINUTES * 60_000;
  const at = (): number => Math.round((Date.now() - startedAt) / 1000);
  let requests = 0;
  const errors: string[] = [];
  const samples: { t: number; rss: (number | null)[]; fds: (number | null)[]; streams: (number | null)[] }[] = [];
  /** A replica being restarted has no pid or metrics for a moment: that sample says null. */
  const orNull = <T>(f: () => T): T | null => {
    try {
      return f();
    } catch {
      return null;
    }
  };
  const sample = async (): Promise<void> => {
    const pids = stack.pins.map((p) => (p.proc.alive ? p.proc.child!.pid! : 0));
    samples.push({
      t: at(),
      rss: pids.map((pid) => orNull(() => Math.round(rssMb(pid)))),
      fds: pids.map((pid) => orNull(() => fds(pid))),
      streams: await Promise.all(stack.pins.map((p) => p.metric('mcp_pin_streams_open').catch(() => null))),
    });
  };
  await sample();
  const start = samples[0]!;

  const load = clients.map(async (c, i) => {
    for (let n = 0; Date.now() < deadline; n++) {
      requests++;
      try {
        const r = await c.echo(`${i}:${n}`);
        if (r.text !== `${i}:${n}`) errors.push(`client ${i} call ${n}: wrong answer`);
      } catch (err) {
        errors.push(`client ${i} call ${n}: ${(err as Error).message}`);
      }
    }
  });

  const events: string[] = [];
  const chaos = (async () => {
    for (let k = 0; Date.now() + RESTART_EVERY_S * 1000 < deadline; k++) {
      await new Promise((r) => setTimeout(r, RESTART_EVERY_S * 1000));
      if (k % 2 === 0) {
        const pod = stack.pods[(k / 2) % stack.pods.length]!;
        await pod.restartInPlace();
        events.push(`${at()} s: restarted ${pod.name} in place`);
        log(`restarted ${pod.name}`);
      } else {
        // Replica 1 lives through the whole soak (its memory and fds are the
        // flatness measure); replica 2 is the one drained and restarted.
        const pin = stack.pins[1]!;
        await pin.stop();
        await pin.start();
        await eventually(() => stack.envoy.extProcHealthy(pin.port), `${pin.name} healthy`, 15_000);
        events.push(`${at()} s: drained and restarted ${pin.name}`);
        log(`restarted ${pin.name}`);
      }
    }
  })();
  const sampler = setInterval(() => void sample().catch(() => {}), 10_000);
  await Promise.all([...load, chaos]);
  clearInterval(sampler);
  await sample();
  const end = samples[samples.length - 1]!;

  // Lost pins: every session must still answer, under its own id, with a pin stored.
  const redis = new Redis(stack.redis!.url);
  const keys = await redis.keys('*');
  redis.disconnect();
  const lost: string[] = [];
  for (const [i, c] of clients.entries()) {
    const ok = await c.echo('final').then(() => true, () => false);
    if (!ok || c.sessionId() !== sids[i] || !keys.some((k) => k.includes(`{${sids[i]}}`))) lost.push(sids[i]!);
  }
  const report = {
    minutes: MINUTES,
    clients: CLIENTS,
    requests,
    errors: errors.length,
    firstErrors: errors.slice(0, 5),
    lostPins: lost.length,
    events,
    rssMb: { start: start.rss, end: end.rss, max: stack.pins.map((_, i) => Math.max(...samples.map((s) => s.rss[i] ?? 0))) },
    note: 'replica 1 ran the whole soak; replica 2 was drained and restarted, so its end figures are of its newest process',
    openFds: { start: start.fds, end: end.fds },
    openStreamsAtEnd: end.streams,
    samples,
  };
  await Promise.all(clients.map((c) => c.close()));
  await stack.stop();
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  const file = new URL(`./results/soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`, import.meta.url);
  writeFileSync(file, JSON.stringify(report, null, 2));
  const { samples: _s, ...summary } = report;
  process.stdout.write(`${JSON.stringify(summary, null, 2)}\nJSON: ${file.pathname}\n`);
  if (errors.length > 0 || lost.length > 0) process.exitCode = 1;
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`soak failed: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(() => killAll());
