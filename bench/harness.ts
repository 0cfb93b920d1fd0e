/**
 * The bench's setups and the ways it runs them: each setup is an Envoy with
 * its ext_proc (mcp-pin, the floor, or none) on the same pods; setups run
 * side by side and take turns, so drift on the machine hits all alike.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvoyParams } from '../envoy/params.js';
import { startEnvoy } from '../test/helpers/envoy.js';
import { McpPinProcess } from '../test/helpers/mcp-pin.js';
import { freePort } from '../test/helpers/net.js';
import type { Pod } from '../test/helpers/pod.js';
import type { ManagedProcess } from '../test/helpers/process.js';
import type { RedisHandle } from '../test/helpers/redis.js';
import { socketWiring } from '../test/helpers/stack.js';
import { startFloor } from './floor.js';
import { CONCURRENCY, LOW_RATE, type Latency, type Load, type Row, type Target, latencyAtRate, log, median, throughput } from './measure.js';

/** How a setup is made: Envoy's config (transform, overrides, another tree's template) and what answers its ext_proc. */
export interface SetupOptions {
  transform?: (y: string) => string;
  /** mcp-pin with this store URL (omitted: no mcp-pin). */
  store?: string;
  pinEnv?: Record<string, string>;
  envoy?: Partial<EnvoyParams>;
  /** The trivial ext_proc server (bench/floor-ext-proc.mjs) instead of mcp-pin. */
  floor?: boolean;
  /** Another tree's build and Envoy template (BENCH_BEFORE / BENCH_AFTER) instead of this one's. */
  before?: { main: string; render: (p: EnvoyParams) => string };
  /** How Envoy and mcp-pin reach each other: loopback TCP (default here), or Unix sockets (the shipped deployments). */
  transport?: 'tcp' | 'unix';
}

/** Alternating loads of two setups: each pair's req/s and ratio (b over a), and the median ratio. */
export interface Pairs {
  pairs: { envelope: number; mcpPin: number; ratio: number }[];
  median: number;
}

/** What one run shares: Redis, the fast pods, and the table's rows. */
export class Bench {
  /** Every throughput row the full report prints, in the order measured. */
  readonly rows: Row[] = [];

  constructor(
    readonly redis: RedisHandle,
    /** Answers at once (bench/fast-pod.ts): the pods cost as little as they can. */
    readonly fast: Pod,
    readonly fast2: Pod,
  ) {}

  /** Starts the setup, runs fn on it, stops it (also when fn failed). */
  async withEnvoy(name: string, pods: Pod[], opts: SetupOptions, fn: (t: Target) => Promise<void>): Promise<void> {
    log(`setup ${name}`);
    const pinPort = await freePort();
    const sockets = opts.transport === 'unix' ? mkdtempSync(join(tmpdir(), 'mcp-pin-bench-')) : undefined;
    const wiring = sockets ? socketWiring(sockets) : undefined;
    const envoy = await startEnvoy({
      extProc: [wiring ? { path: wiring.pinSocket(0) } : { host: '127.0.0.1', port: pinPort }],
      pods: pods.map((p) => p.address),
      ...(opts.transform ? { transform: opts.transform } : {}),
      overrides: { ...opts.envoy, ...(wiring ? { internalAddress: wiring.internalAddress } : {}) },
      ...(opts.before ? { render: opts.before.render } : {}),
    });
    let pin: McpPinProcess | undefined;
    let floor: ManagedProcess | undefined;
    if (opts.store) {
      const entry = opts.before ? { main: opts.before.main } : 'dist';
      const env = {
        MCP_PIN_STORE_URL: opts.store,
        MCP_PIN_RECOVERY_URL: envoy.internalUrl,
        MCP_PIN_LOG_LEVEL: 'warn',
        MCP_PIN_KEY_PREFIX: `b${Date.now()}:`,
        ...(wiring ? { MCP_PIN_LISTEN: `unix:${wiring.pinSocket(0)}` } : {}),
        ...opts.pinEnv,
      };
      pin = await new McpPinProcess('mcp-pin', pinPort, env, [], entry).start();
    }
    if (opts.floor) floor = await startFloor(pinPort, `${pods[0]!.address.host}:${pods[0]!.address.port}`);
    try {
      const extProcPid = (pin?.proc ?? floor)?.child?.pid;
      await fn({
        name,
        pods,
        url: envoy.mcpUrl,
        envoy,
        ...(pin ? { pin } : {}),
        ...(extProcPid ? { extProcPid } : {}),
        ...(opts.store?.startsWith('redis') ? { redis: this.redis } : {}),
      });
    } finally {
      await pin?.stop();
      await floor?.stop();
      await envoy.stop();
      if (sockets) rmSync(sockets, { recursive: true, force: true });
    }
  }

  /** n rounds at concurrency c; in each round every setup takes its turn, in order (drift hits all alike). A fixed `rate` instead of as fast as it goes. */
  async rounds(setups: Target[], c: number, n: number, opts: { load?: Load; rate?: number } = {}): Promise<Row[][]> {
    const out: Row[][] = [];
    for (let i = 0; i < n; i++) {
      const round: Row[] = [];
      for (const t of setups) round.push(await throughput(t, c, opts.load ?? 'call', opts.rate));
      out.push(round);
    }
    return out;
  }

  /** Alternating loads of two setups running side by side; the median of the pairs' ratios. One pair goes into the table. */
  async alternate(a: Target, b: Target, concurrency: number, n: number, load: Load = 'call'): Promise<Pairs> {
    const rs = await this.rounds([a, b], concurrency, n, { load });
    this.rows.push(...rs[0]!);
    const out = rs.map(([e, m]) => ({ envelope: e!.rps, mcpPin: m!.rps, ratio: Number((m!.rps / e!.rps).toFixed(3)) }));
    return { pairs: out, median: median(out.map((p) => p.ratio)) };
  }

  /**
   * What one template setting costs: the same setup (Redis, the fast pod)
   * without and with it, alternating at c=64, and Envoy's CPU per request
   * in each.
   */
  async settingCost(
    what: string,
    load: Load,
    off: { name: string; envoy?: Partial<EnvoyParams> },
    on: { name: string; envoy?: Partial<EnvoyParams> },
  ): Promise<Pairs & { envoyUsPerRequest: { off: number; on: number } }> {
    let r: Pairs = { pairs: [], median: Number.NaN };
    const before = this.rows.length;
    const setup = (s: typeof off): SetupOptions => ({ store: this.redis.url, ...(s.envoy ? { envoy: s.envoy } : {}) });
    await this.withEnvoy(off.name, [this.fast], setup(off), (a) =>
      this.withEnvoy(on.name, [this.fast], setup(on), async (b) => {
        r = await this.alternate(a, b, 64, 3, load);
      }),
    );
    const [offRow, onRow] = this.rows.slice(before);
    const us = (x: Row | undefined): number => (x ? Math.round((x.cpuMs.envoy * 1000) / Math.max(1, x.total)) : Number.NaN);
    log(`${what}, c=64 ratios: ${r.pairs.map((p) => p.ratio).join(', ')} (median ${r.median}); Envoy µs per request off ${us(offRow)}, on ${us(onRow)}`);
    return { ...r, envoyUsPerRequest: { off: us(offRow), on: us(onRow) } };
  }

  /** Every concurrency of CONCURRENCY, into the table. */
  async allConcurrency(t: Target): Promise<void> {
    for (const c of CONCURRENCY) this.rows.push(await throughput(t, c));
  }

  /** n rounds of open-loop latency at LOW_RATE, setups taking turns, after a warm-up of each. */
  async latencyRounds(setups: Target[], n: number): Promise<Latency[][]> {
    for (const t of setups) await latencyAtRate(t, LOW_RATE, 2);
    const out: Latency[][] = [];
    for (let i = 0; i < n; i++) {
      const round: Latency[] = [];
      for (const t of setups) round.push(await latencyAtRate(t, LOW_RATE));
      out.push(round);
    }
    return out;
  }
}
