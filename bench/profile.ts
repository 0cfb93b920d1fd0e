/**
 * `npm run bench:profile`: one mcp-pin row (Redis store, fast pod, c=64)
 * with mcp-pin under --cpu-prof, then the hottest functions by self time and
 * shares of busy time (samples taken during the load, idle left out) by
 * group, by package and by function. For finding what to change; the numbers that count
 * come from `npm run bench`. PROFILE_SECONDS (default 8), PROFILE_STORE
 * (redis | memory), PROFILE_SETUP=envelope (no mcp-pin) or floor (the
 * floor server, bench/floor-ext-proc.mjs, profiled instead), PROFILE_RATE (fixed
 * request rate instead of saturation: CPU per request then compares across
 * changes), PROFILE_CONNECTIONS (default 64), PROFILE_WARMUP_SECONDS (a load
 * before the measured one, default 3), PROFILE_CPU=0 (no profiler).
 */
import autocannon from 'autocannon';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEnvoy } from '../test/helpers/envoy.js';
import { McpPinProcess } from '../test/helpers/mcp-pin.js';
import { freePort } from '../test/helpers/net.js';
import { Pod } from '../test/helpers/pod.js';
import { killAll } from '../test/helpers/process.js';
import { startRedis } from '../test/helpers/redis.js';
import { CALL, INIT, INIT_HEADERS, MCP_HEADERS, cpuMs, rssMb } from './common.js';
import { startFloor } from './floor.js';
import { envoyEnvelope } from './setups.js';

const SECONDS = Number(process.env.PROFILE_SECONDS ?? 8);

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount: number;
}
interface Profile {
  nodes: Node[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/** Where a sample's time goes, as the README's performance section groups it. */
export function group(fn: string, url: string): string {
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'native (unattributed)';
  // protobufjs's generated functions (Message$decode, ...) have no url.
  if (/\$(decode|encode|toObject|fromObject|verify)$/.test(fn) || /node_modules\/(protobufjs|@protobufjs|@grpc\/proto-loader|long)\//.test(url))
    return 'protobuf';
  if (/node_modules\/(ioredis|@ioredis|redis-parser|redis-errors|cluster-key-slot|denque|standard-as-callback)\//.test(url)) return 'store client';
  if (/node_modules\/(prom-client|tdigest|bintrees)\//.test(url)) return 'metrics';
  if (/node_modules\/(pino|pino-std-serializers|sonic-boom|thread-stream|fast-redact|quick-format-unescaped|atomic-sleep|on-exit-leak-free)\//.test(url))
    return 'logging';
  if (/node_modules\/@grpc\/grpc-js\//.test(url) || url.startsWith('node:') || (url === '' && fn !== ''))
    return 'framework (grpc-js, node:http2, streams, event loop)';
  if (/\/(dist\/)?src\//.test(url) && !url.includes('node_modules')) return 'mcp-pin';
  if (url.includes('/bench/floor-ext-proc')) return 'floor server';
  return 'other';
}

async function main(): Promise<void> {
  const redis = await startRedis();
  const pod = await new Pod({ name: 'fast1', host: '127.0.0.2', script: new URL('./fast-pod.ts', import.meta.url).pathname }).start();
  const pinPort = await freePort();
  const envelope = process.env.PROFILE_SETUP === 'envelope';
  const envoy = await startEnvoy({ extProc: [{ host: '127.0.0.1', port: pinPort }], pods: [pod.address], ...(envelope ? { transform: envoyEnvelope } : {}) });
  const dir = mkdtempSync(join(tmpdir(), 'mcp-pin-prof-'));
  const store = process.env.PROFILE_STORE === 'memory' ? 'memory:' : redis.url;
  const profileArgs = process.env.PROFILE_CPU === '0' ? [] : ['--cpu-prof', `--cpu-prof-dir=${dir}`];
  const floor = process.env.PROFILE_SETUP === 'floor' ? await startFloor(pinPort, `${pod.address.host}:${pod.address.port}`, profileArgs) : undefined;
  const pin =
    envelope || floor
      ? undefined
      : await new McpPinProcess(
          'mcp-pin',
          pinPort,
          { MCP_PIN_STORE_URL: store, MCP_PIN_RECOVERY_URL: envoy.internalUrl, MCP_PIN_LOG_LEVEL: 'warn' },
          [
            ...(process.env.PROFILE_NODE_ARGS ? process.env.PROFILE_NODE_ARGS.split(' ') : []),
            ...(process.env.PROFILE_CPU === '0' ? [] : ['--cpu-prof', `--cpu-prof-dir=${dir}`]),
          ],
          'dist',
        ).start();
  const sids: string[] = [];
  for (let i = 0; i < 64; i++) {
    const res = await fetch(envoy.mcpUrl, { method: 'POST', headers: INIT_HEADERS, body: INIT });
    await res.arrayBuffer();
    sids.push(res.headers.get('mcp-session-id')!);
  }
  const pids = {
    envoy: envoy.proc.child?.pid,
    mcpPin: (pin?.proc ?? floor)?.child?.pid,
    redis: redis.proc.child?.pid,
    pod: pod.proc.child?.pid,
    loadgen: process.pid,
  };
  let next = 0;
  const load = (duration: number) =>
    autocannon({
      url: envoy.mcpUrl,
      connections: Number(process.env.PROFILE_CONNECTIONS ?? 64),
      duration,
      ...(process.env.PROFILE_RATE ? { overallRate: Number(process.env.PROFILE_RATE) } : {}),
      requests: [
        {
          method: 'POST',
          setupRequest: (req: autocannon.Request, ctx: object) => {
            const c = ctx as { sid?: string };
            c.sid ??= sids[next++ % sids.length];
            return { ...req, headers: { ...MCP_HEADERS, 'mcp-session-id': c.sid! }, body: CALL };
          },
        },
      ],
    });
  // Warm-up first (JIT, heap, connections): a fresh process spends its first seconds compiling.
  await load(Number(process.env.PROFILE_WARMUP_SECONDS ?? 3));
  const before = Object.fromEntries(Object.entries(pids).map(([k, v]) => [k, cpuMs(v)]));
  // The profiler's clock is CLOCK_MONOTONIC in µs, as is hrtime here: only samples inside the load count.
  const loadStartUs = Number(process.hrtime.bigint() / 1000n);
  const r = await load(SECONDS);

  const loadEndUs = Number(process.hrtime.bigint() / 1000n);
  process.stdout.write(
    `${Math.round(r.requests.average)} req/s, errors ${r.non2xx + r.errors + r.timeouts}, latency p50 ${r.latency.p50} p90 ${r.latency.p90} p99 ${r.latency.p99} ms\n`,
  );
  const n = r.requests.total;
  process.stdout.write(
    `CPU µs per request: ${Object.entries(pids)
      .map(([k, v]) => `${k} ${Math.round(((cpuMs(v) - before[k]!) * 1000) / n)}`)
      .join(', ')}\n`,
  );
  if (pin) {
    const heap = (await pin.metrics())
      .split('\n')
      .filter((l) =>
        /^mcp_pin_nodejs_heap_(size_total|size_used)_bytes|^mcp_pin_nodejs_external_memory_bytes|^mcp_pin_nodejs_heap_space_size_total_bytes/.test(l),
      );
    process.stdout.write(
      `mcp-pin RSS ${Math.round(rssMb(pids.mcpPin))} MB; ${heap.map((l) => `${l.split(' ')[0]} ${Math.round(Number(l.split(' ')[1]) / 1048576)} MB`).join(', ')}\n`,
    );
  }
  const extProcUs = ((cpuMs(pids.mcpPin) - before.mcpPin!) * 1000) / n;
  await pin?.stop();
  await floor?.stop();
  await envoy.stop();
  if ((!pin && !floor) || process.env.PROFILE_CPU === '0') return;
  const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'))!;
  const prof = JSON.parse(readFileSync(join(dir, file), 'utf8')) as Profile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const byFn = new Map<string, number>();
  const byPkg = new Map<string, number>();
  const byGroup = new Map<string, number>();
  let busy = 0;
  let idle = 0;
  let t = prof.startTime;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i] ?? 0;
    if (t < loadStartUs || t > loadEndUs) continue;
    const n = byId.get(prof.samples[i]!)!;
    const { functionName: fn, url: u, lineNumber } = n.callFrame;
    if (fn === '(idle)') {
      idle++;
      continue;
    }
    busy++;
    const key = `${fn || '(anon)'} ${u.replace(/.*node_modules\//, '').replace(/.*\/work\/main\//, '')}:${lineNumber}`;
    byFn.set(key, (byFn.get(key) ?? 0) + 1);
    const pkg = u.includes('node_modules/')
      ? u
          .replace(/.*node_modules\//, '')
          .split('/')
          .slice(0, u.includes('node_modules/@') ? 2 : 1)
          .join('/')
      : u.startsWith('node:')
        ? u
        : u
          ? 'mcp-pin'
          : fn;
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + 1);
    const g = group(fn, u);
    byGroup.set(g, (byGroup.get(g) ?? 0) + 1);
  }
  const top = (m: Map<string, number>, k: number) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, k)
      .map(([n, h]) => `${((100 * h) / busy).toFixed(1).padStart(5)}%  ${n}`)
      .join('\n');
  const groups = [...byGroup]
    .sort((a, b) => b[1] - a[1])
    .map(([g, h]) => `${((100 * h) / busy).toFixed(1).padStart(5)}%  ${String(Math.round((extProcUs * h) / busy)).padStart(4)} µs/req  ${g}`)
    .join('\n');
  process.stdout.write(
    `\nbusy ${busy} samples, idle ${idle} (${((100 * busy) / Math.max(1, busy + idle)).toFixed(0)}% busy during the load); shares of busy time (µs per request: the share of the process's ${Math.round(extProcUs)} µs)\n\nby group\n${groups}\n\nby package\n${top(byPkg, 25)}\n\nby function (self)\n${top(byFn, 45)}\n\nprofile: ${join(dir, file)}\n`,
  );
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => void killAll().finally(() => process.exit(130)));

main()
  .catch((e) => {
    process.stderr.write(`${(e as Error).stack}\n`);
    process.exitCode = 1;
  })
  .finally(() => killAll());
