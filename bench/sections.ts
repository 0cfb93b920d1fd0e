/**
 * The bench's sections, each a question answered in one run with its setups
 * taking turns: the floor (and its targets), before/after of two trees, the
 * transport, session state, and what a template setting costs.
 */
import type { EnvoyParams } from '../envoy/params.js';
import type { Bench, Pairs, SetupOptions } from './harness.js';
import { CPU_RATE, LOW_RATE, type Latency, type Row, SECONDS, median, perRequestUs, throughput } from './measure.js';
import { pairedCpu, printSummary, summarize, summarizeLatency, writeResults } from './report.js';
import { envoyEnvelope } from './setups.js';
import type { Target as BenchTarget } from './targets.js';

/**
 * The floor of the design: the envelope, the trivial grpc-js ext_proc
 * server (bench/floor-ext-proc.mjs) and mcp-pin (Redis, shipped defaults),
 * the last two in the same Envoy setup, taking turns: 5 rounds at c=64, 3 at
 * c=16, 3 of latency at LOW_RATE. Medians of the rounds count.
 */
const FLOOR_NAMES = ['envoy-envelope', 'floor (trivial ext_proc)', 'mcp-pin redis'];
export async function floorSection(b: Bench) {
  let c64: Row[][] = [];
  let c16: Row[][] = [];
  let fixed: Row[][] = [];
  let lat: Latency[][] = [];
  await b.withEnvoy(FLOOR_NAMES[0]!, [b.fast], { transform: envoyEnvelope }, (env) =>
    b.withEnvoy(FLOOR_NAMES[1]!, [b.fast], { floor: true }, (floor) =>
      b.withEnvoy(FLOOR_NAMES[2]!, [b.fast], { store: b.redis.url }, async (pin) => {
        const trio = [env, floor, pin];
        c64 = await b.rounds(trio, 64, 5);
        c16 = await b.rounds(trio, 16, 3);
        fixed = await b.rounds(trio, 16, 3, { rate: CPU_RATE });
        lat = await b.latencyRounds(trio, 3);
        // Both ext_proc servers' requests took the pinned route (the pinned cluster), or the rows compare different paths.
        for (const t of [floor, pin]) {
          const pinned = await t.envoy.stat('cluster.mcp_pinned.upstream_rq_total');
          if (pinned < 0.9 * c64.reduce((n, r) => n + r[trio.indexOf(t)]!.total, 0))
            throw new Error(`${t.name}: only ${pinned} requests reached the pinned cluster`);
        }
      }),
    ),
  );
  // Unrounded: a target is judged on the value itself, printed to 3 places.
  const vsFloor = (rs: Row[][]): number => median(rs.map((r) => r[2]!.rps / r[1]!.rps));
  const cpuRatio = (rs: Row[][]): number => median(rs.map((r) => perRequestUs(r[2]!, 'mcpPin') / Math.max(1, perRequestUs(r[1]!, 'mcpPin'))));
  const cpuVsFloor = cpuRatio(c64);
  const cpuVsFloorAtRate = cpuRatio(fixed);
  const latency = summarizeLatency(FLOOR_NAMES, lat, 0);
  const overFloorP50Us = median(lat.map((l) => l[2]!.p50Us - l[1]!.p50Us));
  return {
    c64: summarize(FLOOR_NAMES, c64, 0),
    c16: summarize(FLOOR_NAMES, c16, 0),
    fixed: summarize(FLOOR_NAMES, fixed, 0),
    cpuVsFloorAtRate,
    latency,
    rounds: { c64: c64.map((r) => r.map((x) => x.rps)), c16: c16.map((r) => r.map((x) => x.rps)) },
    vsFloor: { c64: vsFloor(c64), c16: vsFloor(c16) },
    cpuVsFloor,
    overFloorP50Us,
    vsEnvelopeC64: median(c64.map((r) => r[2]!.rps / r[0]!.rps)),
  };
}
export const floorTargets = (f: Awaited<ReturnType<typeof floorSection>>): BenchTarget[] => [
  { text: 'mcp-pin (Redis, shipped defaults) c=64, throughput as a share of the floor (median of 5 rounds)', value: f.vsFloor.c64, op: '>=', limit: 0.95 },
  { text: 'mcp-pin c=16, throughput as a share of the floor (median of 3 rounds)', value: f.vsFloor.c16, op: '>=', limit: 0.95 },
  { text: "mcp-pin CPU per pinned request (c=64), as a multiple of the floor's (median of per-round ratios)", value: f.cpuVsFloor, op: '<=', limit: 1.15 },
  {
    text: `mcp-pin CPU per pinned request at a fixed ${CPU_RATE} req/s (c=16), as a multiple of the floor's (median of per-round ratios)`,
    value: f.cpuVsFloorAtRate,
    op: '<=',
    limit: 1.15,
  },
  {
    text: `mcp-pin p50 at ${LOW_RATE} req/s over the floor's, ms (median over 3 rounds of mcp-pin p50 - floor p50)`,
    value: f.overFloorP50Us / 1000,
    op: '<=',
    limit: 0.15,
  },
  { text: 'fast pod, c=64, Redis: mcp-pin throughput as a share of the envelope (median of 5 rounds)', value: f.vsEnvelopeC64, op: '>=', limit: 0.35 },
];
export function printFloor(f: Awaited<ReturnType<typeof floorSection>>): void {
  printSummary(
    `The floor (medians of rounds; per round the envelope, the floor, mcp-pin take turns, ${SECONDS} s each; the c=16 rows at ${CPU_RATE} req/s are a fixed rate, for CPU per request)`,
    [f.c64, f.c16, f.fixed],
    f.latency,
    'envelope',
  );
  process.stdout.write(
    `Rounds, req/s envelope / floor / mcp-pin: c=64 ${f.rounds.c64.map((r) => r.join(' / ')).join('; ')}; c=16 ${f.rounds.c16.map((r) => r.join(' / ')).join('; ')}\n`,
  );
  const r3 = (x: number): number => Number(x.toFixed(3));
  process.stdout.write(
    `mcp-pin vs the floor: c=64 ${r3(f.vsFloor.c64)}x, c=16 ${r3(f.vsFloor.c16)}x, CPU per request ${r3(f.cpuVsFloor)}x at c=64, ${r3(f.cpuVsFloorAtRate)}x at ${CPU_RATE} req/s, p50 at ${LOW_RATE} req/s ${f.overFloorP50Us >= 0 ? '+' : ''}${f.overFloorP50Us} µs\n`,
  );
}

/**
 * BENCH_BEFORE=<tree> [BENCH_AFTER=<tree>]: the same mcp-pin setup from
 * two trees (each its build and its Envoy template; the "after" is this
 * one by default), taking turns: one change's before/after in one run
 * (scripts/bench-compare.sh).
 */
export async function compareSection(b: Bench, tree: string, afterTree: string | undefined): Promise<void> {
  const build = async (t: string): Promise<SetupOptions['before']> => ({
    main: `${t}/dist/src/main.js`,
    render: ((await import(`${t}/envoy/render.ts`)) as { renderEnvoyConfig: (p: EnvoyParams) => string }).renderEnvoyConfig,
  });
  const names = ['before', 'after'];
  let c64: Row[][] = [];
  let c16: Row[][] = [];
  let lat: Latency[][] = [];
  let fixed: Row[][] = [];
  const afterBuild = afterTree ? await build(afterTree) : undefined;
  await b.withEnvoy('mcp-pin redis (before)', [b.fast], { store: b.redis.url, before: await build(tree) }, (before) =>
    b.withEnvoy('mcp-pin redis (after)', [b.fast], { store: b.redis.url, ...(afterBuild ? { before: afterBuild } : {}) }, async (after) => {
      c64 = await b.rounds([before, after], 64, 5);
      c16 = await b.rounds([before, after], 16, 3);
      fixed = await b.rounds([before, after], 16, 5, { rate: CPU_RATE });
      lat = await b.latencyRounds([before, after], 3);
    }),
  );
  const result = {
    c64: summarize(names, c64, 0),
    c16: summarize(names, c16, 0),
    fixed: summarize(names, fixed, 0),
    latency: summarizeLatency(names, lat, 0),
  };
  printSummary(
    `Before / after (${tree} / ${afterTree ?? 'this tree'}): medians of rounds, the two taking turns, ${SECONDS} s each; the second c=16 rows at a fixed ${CPU_RATE} req/s`,
    [result.c64, result.c16, result.fixed],
    result.latency,
    'before',
  );
  const cpu = (t: typeof result.c64) => `${t[0]!.extProcUs} -> ${t[1]!.extProcUs} µs (mcp-pin), ${t[0]!.envoyUs} -> ${t[1]!.envoyUs} µs (Envoy)`;
  // Paired: each round's after/before, so a round the machine ran slow counts against both.
  const paired = (rs: Row[][], k: keyof Row['cpuMs']): number => pairedCpu(rs, 1, 0, k);
  process.stdout.write(
    `CPU per request after/before, median of per-round ratios: mcp-pin c=64 ${paired(c64, 'mcpPin')}x, c=16 ${paired(c16, 'mcpPin')}x, at ${CPU_RATE} req/s ${paired(fixed, 'mcpPin')}x; Envoy c=64 ${paired(c64, 'envoy')}x, at ${CPU_RATE} req/s ${paired(fixed, 'envoy')}x\n`,
  );
  process.stdout.write(
    `after/before: c=64 ${result.c64[1]!.ratio}x (${cpu(result.c64)}), c=16 ${result.c16[1]!.ratio}x (${cpu(result.c16)}), at ${CPU_RATE} req/s ${cpu(result.fixed)}, p50 at ${LOW_RATE} req/s ${result.latency[1]!.addedP50Us >= 0 ? '+' : ''}${result.latency[1]!.addedP50Us} µs\n`,
  );
  writeResults('compare', {
    tree,
    afterTree,
    ...result,
    rounds: {
      c64: c64.map((r) => r.map((x) => x.rps)),
      c16: c16.map((r) => r.map((x) => x.rps)),
      fixedCpuUs: fixed.map((r) => r.map((x) => perRequestUs(x, 'mcpPin'))),
    },
  });
}

/**
 * The transport between Envoy and mcp-pin: loopback TCP (what the floor
 * rows use) against the Unix sockets the shipped deployments use, beside
 * the floor, taking turns: 5 rounds at c=64, 3 at a fixed CPU_RATE (CPU
 * per request), 3 of latency at LOW_RATE.
 */
const TRANSPORT_NAMES = ['floor (trivial ext_proc, TCP)', 'mcp-pin redis, TCP loopback', 'mcp-pin redis, Unix sockets (shipped)'];
export async function transportSection(b: Bench) {
  let c64: Row[][] = [];
  let fixed: Row[][] = [];
  let lat: Latency[][] = [];
  await b.withEnvoy(TRANSPORT_NAMES[0]!, [b.fast], { floor: true }, (floor) =>
    b.withEnvoy(TRANSPORT_NAMES[1]!, [b.fast], { store: b.redis.url }, (tcp) =>
      b.withEnvoy(TRANSPORT_NAMES[2]!, [b.fast], { store: b.redis.url, transport: 'unix' }, async (unix) => {
        const trio = [floor, tcp, unix];
        c64 = await b.rounds(trio, 64, 5);
        fixed = await b.rounds(trio, 16, 3, { rate: CPU_RATE });
        lat = await b.latencyRounds(trio, 3);
      }),
    ),
  );
  // Unix over TCP, paired per round.
  const paired = (rs: Row[][], k: keyof Row['cpuMs']): number => pairedCpu(rs, 2, 1, k);
  const result = {
    c64: summarize(TRANSPORT_NAMES, c64, 0),
    fixed: summarize(TRANSPORT_NAMES, fixed, 0),
    latency: summarizeLatency(TRANSPORT_NAMES, lat, 0),
    unixVsTcp: {
      rpsC64: Number(median(c64.map((r) => r[2]!.rps / r[1]!.rps)).toFixed(3)),
      mcpPinCpuC64: paired(c64, 'mcpPin'),
      mcpPinCpuAtRate: paired(fixed, 'mcpPin'),
      envoyCpuC64: paired(c64, 'envoy'),
      envoyCpuAtRate: paired(fixed, 'envoy'),
      p50OverTcpUs: median(lat.map((l) => l[2]!.p50Us - l[1]!.p50Us)),
    },
    rounds: { c64: c64.map((r) => r.map((x) => x.rps)) },
  };
  printSummary(
    `Transport (medians of rounds; per round the floor, mcp-pin over TCP, mcp-pin over Unix sockets take turns, ${SECONDS} s each; the c=16 rows at a fixed ${CPU_RATE} req/s)`,
    [result.c64, result.fixed],
    result.latency,
    'floor',
  );
  const u = result.unixVsTcp;
  process.stdout.write(
    `Unix sockets / TCP, median of per-round ratios: req/s c=64 ${u.rpsC64}x; CPU per request mcp-pin ${u.mcpPinCpuC64}x (c=64), ${u.mcpPinCpuAtRate}x (${CPU_RATE} req/s); Envoy ${u.envoyCpuC64}x, ${u.envoyCpuAtRate}x; p50 at ${LOW_RATE} req/s ${u.p50OverTcpUs >= 0 ? '+' : ''}${u.p50OverTcpUs} µs\n`,
  );
  return result;
}

/**
 * What a request that sets session state costs (issue 29: read whole,
 * with its answer, by the session-state filter, and kept in the store)
 * against a pinned tools/call, on one setup as shipped (Redis, 1 s pin
 * cache), the two loads taking turns: 5 rounds at c=64.
 */
export async function stateSection(b: Bench) {
  let rs: Row[][] = [];
  await b.withEnvoy('mcp-pin redis (as shipped)', [b.fast], { store: b.redis.url }, async (t) => {
    rs = [];
    for (let i = 0; i < 5; i++) rs.push([await throughput(t, 64, 'call'), await throughput(t, 64, 'subscribe')]);
  });
  const us = (r: Row, k: keyof Row['cpuMs']): number => perRequestUs(r, k);
  const result = {
    callRps: median(rs.map((r) => r[0]!.rps)),
    subscribeRps: median(rs.map((r) => r[1]!.rps)),
    rpsRatio: Number(median(rs.map((r) => r[1]!.rps / r[0]!.rps)).toFixed(3)),
    mcpPinUs: { call: median(rs.map((r) => us(r[0]!, 'mcpPin'))), subscribe: median(rs.map((r) => us(r[1]!, 'mcpPin'))) },
    envoyUs: { call: median(rs.map((r) => us(r[0]!, 'envoy'))), subscribe: median(rs.map((r) => us(r[1]!, 'envoy'))) },
    redisUs: { call: median(rs.map((r) => us(r[0]!, 'redis'))), subscribe: median(rs.map((r) => us(r[1]!, 'redis'))) },
    messagesPerRequest: { call: rs[0]![0]!.extProcMessagesPerRequest, subscribe: rs[0]![1]!.extProcMessagesPerRequest },
    errors: rs.reduce((n, r) => n + r[0]!.errors + r[1]!.errors, 0),
    rounds: rs.map((r) => r.map((x) => x.rps)),
  };
  process.stdout.write(
    `Session state (c=64, median of 5 alternating rounds): tools/call ${result.callRps} req/s, resources/subscribe ${result.subscribeRps} req/s (${result.rpsRatio}x); ` +
      `CPU µs per request mcp-pin ${result.mcpPinUs.call} / ${result.mcpPinUs.subscribe}, Envoy ${result.envoyUs.call} / ${result.envoyUs.subscribe}, Redis ${result.redisUs.call} / ${result.redisUs.subscribe}; ` +
      `ext_proc messages per request ${result.messagesPerRequest.call} / ${result.messagesPerRequest.subscribe}; errors ${result.errors}\n`,
  );
  return result;
}

/** What holdSafeResponses costs on reads (held) and tool calls (not held), and what naming a tool in replaySafeTools costs its calls. */
export async function holdSection(b: Bench): Promise<Record<string, Pairs & { envoyUsPerRequest: { off: number; on: number } }>> {
  const hold = (load: 'read' | 'call') =>
    b.settingCost(
      `${load}s, hold on/off`,
      load,
      { name: `mcp-pin redis, ${load}s, holdSafeResponses off`, envoy: { holdSafeResponses: false } },
      { name: `mcp-pin redis, ${load}s, holdSafeResponses on (default)` },
    );
  return {
    reads: await hold('read'),
    calls: await hold('call'),
    'calls of a tool named in replaySafeTools': await b.settingCost(
      'calls of a tool named safe / not named',
      'call',
      { name: 'mcp-pin redis, calls, replaySafeTools empty (default)' },
      { name: 'mcp-pin redis, calls, replaySafeTools=echo', envoy: { replaySafeTools: ['echo'] } },
    ),
  };
}
