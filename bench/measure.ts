/**
 * The bench's measurements: a closed-loop load at a fixed concurrency
 * (autocannon), open-loop latency at a fixed rate (hrtime per request), the
 * store's lookup cost; each returns a row with the CPU time of every process
 * the setup runs.
 */
import autocannon from 'autocannon';
import { Pool } from 'undici';
import type { SessionStore } from '../src/sessions/store.js';
import type { EnvoyHandle } from '../test/helpers/envoy.js';
import type { McpPinProcess } from '../test/helpers/mcp-pin.js';
import type { Pod } from '../test/helpers/pod.js';
import type { RedisHandle } from '../test/helpers/redis.js';
import { CALL, INIT, INIT_HEADERS, MCP_HEADERS, READ, SESSIONLESS_CALL, SESSIONLESS_HEADERS, SUBSCRIBE, cpuMs, rssMb } from './common.js';

export const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
export const CONCURRENCY = [1, 16, 64];
export const LOW_RATE = 200;
/** A rate every setup sustains on this machine with room to spare: CPU per request there is not inflated by contention. */
export const CPU_RATE = 1000;
export const log = (s: string): void => void process.stderr.write(`${s}\n`);

export const pct = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;

/** One running setup: Envoy, what answers its ext_proc, the pods, and the processes whose CPU counts. */
export interface Target {
  name: string;
  pods: Pod[];
  url: string;
  envoy: EnvoyHandle;
  pin?: McpPinProcess;
  /** The ext_proc process (mcp-pin or the floor), for its CPU time. */
  extProcPid?: number;
  redis?: RedisHandle;
}

export const median = (xs: number[]): number =>
  pct(
    [...xs].sort((a, b) => a - b),
    50,
  );
export const perRequestUs = (r: Row, k: keyof Row['cpuMs']): number => Math.round((r.cpuMs[k] * 1000) / Math.max(1, r.total));

/** n sessions through url, each initialized and notified. */
export async function initSessions(url: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(url, { method: 'POST', headers: INIT_HEADERS, body: INIT });
    const sid = res.headers.get('mcp-session-id');
    await res.arrayBuffer();
    if (!res.ok || !sid) throw new Error(`initialize through ${url} answered ${res.status}`);
    const note = await fetch(url, {
      method: 'POST',
      headers: { ...MCP_HEADERS, 'mcp-session-id': sid },
      body: '{"jsonrpc":"2.0","method":"notifications/initialized"}',
    });
    await note.arrayBuffer();
    out.push(sid);
  }
  return out;
}

export interface Row {
  setup: string;
  concurrency: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  errors: number;
  total: number;
  /** CPU time during the load; pods and the load generator (this process) share the machine. */
  cpuMs: { envoy: number; mcpPin: number; redis: number; pods: number; loadgen: number };
  mcpPinRssMb?: number;
  extProcMessagesPerRequest?: number;
}

/** What each request of a load is: a tools/call of a session, a resources/read of a session, a resources/subscribe of a session (kept as session state), or a 2026-07-28 tools/call without one. */
export type Load = 'call' | 'read' | 'subscribe' | 'sessionless';

/** Open-loop latency of one setup at one rate, µs. */
export interface Latency {
  setup: string;
  rate: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  errors: number;
}

/**
 * Closed-loop load at a fixed concurrency. Session traffic: each connection
 * keeps one session of its own (a POST tools/call or resources/read under
 * it). Session-less: a 2026-07-28 tools/call, no session.
 */
export async function throughput(t: Target, concurrency: number, load: Load = 'call', rate?: number): Promise<Row> {
  const sessionless = load === 'sessionless';
  const sids = sessionless ? [] : await initSessions(t.url, concurrency);
  const pids = { envoy: t.envoy.proc.child?.pid, mcpPin: t.extProcPid, redis: t.redis?.proc.child?.pid };
  const podsCpu = (): number => t.pods.reduce((s, p) => s + cpuMs(p.proc.child?.pid), 0);
  const before = { envoy: cpuMs(pids.envoy), mcpPin: cpuMs(pids.mcpPin), redis: cpuMs(pids.redis), pods: podsCpu(), loadgen: cpuMs(process.pid) };
  const msgsBefore = t.pin ? await messagesHandled(t.pin) : 0;
  let next = 0;
  const result = await autocannon({
    url: t.url,
    connections: concurrency,
    duration: SECONDS,
    // A fixed rate (req/s over all connections) instead of as fast as it goes.
    ...(rate ? { overallRate: rate } : {}),
    requests: [
      {
        method: 'POST',
        // Each connection keeps one session (autocannon gives every connection its own context).
        setupRequest: (req: autocannon.Request, context: object) => {
          if (sessionless) return { ...req, headers: SESSIONLESS_HEADERS, body: SESSIONLESS_CALL };
          const ctx = context as { sid?: string };
          ctx.sid ??= sids[next++ % sids.length];
          return { ...req, headers: { ...MCP_HEADERS, 'mcp-session-id': ctx.sid! }, body: load === 'read' ? READ : load === 'subscribe' ? SUBSCRIBE : CALL };
        },
      },
    ],
  });
  const total = result.requests.total;
  const row: Row = {
    setup: t.name,
    concurrency,
    rps: Math.round(result.requests.average),
    p50: result.latency.p50,
    p90: result.latency.p90,
    p99: result.latency.p99,
    errors: result.non2xx + result.errors + result.timeouts,
    total,
    cpuMs: {
      envoy: cpuMs(pids.envoy) - before.envoy,
      mcpPin: cpuMs(pids.mcpPin) - before.mcpPin,
      redis: cpuMs(pids.redis) - before.redis,
      pods: podsCpu() - before.pods,
      loadgen: cpuMs(process.pid) - before.loadgen,
    },
  };
  if (t.pin) {
    row.mcpPinRssMb = Math.round(rssMb(pids.mcpPin));
    row.extProcMessagesPerRequest = Number((((await messagesHandled(t.pin)) - msgsBefore) / Math.max(1, total)).toFixed(2));
  }
  log(`  ${t.name} c=${concurrency}: ${row.rps} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms, errors ${row.errors}`);
  return row;
}

async function messagesHandled(pin: McpPinProcess): Promise<number> {
  let n = 0;
  for (const line of (await pin.metrics()).split('\n')) if (line.startsWith('mcp_pin_message_seconds_count')) n += Number(line.split(' ').pop());
  return n;
}

/** Open-loop latency at a fixed rate: one request every 1/rate s, each timed with hrtime. */
export async function latencyAtRate(t: Target, rate: number, seconds = SECONDS): Promise<Latency> {
  const sids = await initSessions(t.url, 16);
  const u = new URL(t.url);
  const pool = new Pool(u.origin, { connections: 64 });
  const samples: number[] = [];
  let errors = 0;
  const count = Math.floor(rate * seconds);
  const started = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(
      (async () => {
        const t0 = process.hrtime.bigint();
        try {
          const res = await pool.request({
            method: 'POST',
            path: u.pathname,
            headers: { ...MCP_HEADERS, 'mcp-session-id': sids[i % sids.length]! },
            body: CALL,
          });
          await res.body.dump();
          if (res.statusCode >= 300) errors++;
          samples.push(Number(process.hrtime.bigint() - t0) / 1000);
        } catch {
          errors++;
        }
      })(),
    );
  }
  await Promise.all(inflight);
  await pool.close();
  samples.sort((a, b) => a - b);
  const r = {
    setup: t.name,
    rate: Math.round(rate),
    p50Us: Math.round(pct(samples, 50)),
    p90Us: Math.round(pct(samples, 90)),
    p99Us: Math.round(pct(samples, 99)),
    errors,
  };
  log(`  ${t.name} @${r.rate}/s: p50 ${r.p50Us} µs, p90 ${r.p90Us} µs, p99 ${r.p99Us} µs, errors ${errors}`);
  return r;
}

/**
 * Lookup cost with 1k vs 100k live sessions in the same store, measured in
 * one loop: each of 20k lookups, one at a time (so one set's cost cannot
 * queue behind the other's), picks its set at random and is timed on its
 * own; drift and GC hit both sets alike. Mean µs per lookup per set.
 */
export async function lookupCost(store: SessionStore): Promise<{ live: number; lookups: number; usPerLookup: number }[]> {
  const sizes = [1_000, 100_000];
  for (const live of sizes) {
    for (let i = 0; i < live; i += 1000) {
      await Promise.all(
        Array.from({ length: Math.min(1000, live - i) }, (_, j) =>
          store.create(`n${live}-${i + j}`, { pod: '10.0.0.1:8080', backendSessionId: `n${live}-${i + j}`, initBody: Buffer.from(INIT) }),
        ),
      );
    }
  }
  const N = 20_000;
  const sum = [0, 0];
  const count = [0, 0];
  for (let k = 0; k < N; k++) {
    const which = Math.random() < 0.5 ? 0 : 1;
    const live = sizes[which]!;
    const t0 = performance.now();
    if (!(await store.lookup(`n${live}-${Math.floor(Math.random() * live)}`))) throw new Error('lookup missed');
    sum[which]! += performance.now() - t0;
    count[which]!++;
  }
  await store.close();
  return sizes.map((live, i) => ({ live, lookups: count[i]!, usPerLookup: Number(((sum[i]! * 1000) / count[i]!).toFixed(2)) }));
}
