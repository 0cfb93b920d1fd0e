/**
 * A whole local stack for integration tests: redis-server (own port) or the
 * memory store, N SDK pods on 127.0.0.2.., Envoy from the project template,
 * and mcp-pin replicas as processes. Everything is torn down by stop(), and
 * by the root hooks if a test fails first.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EnvoyParams } from '../../envoy/params.js';
import { startEnvoy, type EnvoyHandle } from './envoy.js';
import { McpPinProcess } from './mcp-pin.js';
import { eventually } from './net.js';
import { startPods, type Pod, type PodKind } from './pod.js';
import { startRedis, type RedisHandle } from './redis.js';
import { registerForReport } from './root-hooks.js';

export interface StackOptions {
  pods?: number;
  store?: 'redis' | 'memory';
  replicas?: number;
  podEnv?: Record<string, string>;
  /** Which SDK the pods run (default 'ts'). */
  podKind?: PodKind;
  pinEnv?: Record<string, string>;
  redisAppendOnly?: boolean;
  /** Use this Redis instead of starting one (store 'redis'). */
  redisUrl?: string;
  /** Envoy's public port (default: any free port). */
  listenPort?: number;
  /** More template values (e.g. lostSessionStatuses, to match the replicas' --lost-session-statuses). */
  envoy?: Partial<EnvoyParams>;
  /**
   * How Envoy and mcp-pin reach each other: 'tcp' (loopback ports, the
   * default here) or 'unix' (the shipped deployments: mcp-pin's gRPC port
   * and Envoy's internal listener are Unix sockets in one folder).
   */
  transport?: 'tcp' | 'unix';
  /** Extra node flags for the replicas (e.g. heap snapshots on a signal, to measure retained memory). */
  pinNodeArgs?: string[];
}

export interface Stack {
  redis: RedisHandle | null;
  /** What the replicas were given as --store-url. */
  storeUrl: string;
  /** With transport 'unix': the folder of the sockets, and each replica's socket (unix:/path). */
  socketDir?: string;
  pinSockets?: string[];
  /** Every store key starts with it (unique per stack). */
  keyPrefix: string;
  pods: Pod[];
  envoy: EnvoyHandle;
  pins: McpPinProcess[];
  mcpUrl: string;
  podByName(name: string): Pod;
  stop(): Promise<void>;
}

/** The shipped wiring in one folder: each replica's ext_proc socket, and Envoy's internal listener (the stack and the benchmark use it). */
export function socketWiring(dir: string): { internalAddress: string; pinSocket(i: number): string } {
  return { internalAddress: `unix:${dir}/envoy-internal.sock`, pinSocket: (i) => `${dir}/mcp-pin-${i + 1}.sock` };
}

export async function startStack(opts: StackOptions = {}): Promise<Stack> {
  const storeKind = opts.store ?? 'redis';
  const redis = storeKind === 'redis' && !opts.redisUrl ? await startRedis({ appendonly: opts.redisAppendOnly ?? false }) : null;
  const storeUrl = storeKind === 'memory' ? 'memory:' : (opts.redisUrl ?? redis!.url);
  const pods = await startPods(opts.pods ?? 2, opts.podEnv, 2, opts.podKind);
  // Envoy first (its listeners on port 0, read back from admin), then the
  // replicas on port 0 (each reports its port), then Envoy learns them (EDS).
  const socketDir = opts.transport === 'unix' ? mkdtempSync(join(tmpdir(), 'mcp-pin-sockets-')) : undefined;
  const wiring = socketDir ? socketWiring(socketDir) : undefined;
  const socketOf = (i: number): string => wiring!.pinSocket(i);
  const envoy = await startEnvoy({
    pods: pods.map((p) => p.address),
    overrides: {
      ...(wiring ? { internalAddress: wiring.internalAddress } : {}),
      ...opts.envoy,
      ...(opts.listenPort !== undefined ? { listenPort: opts.listenPort } : {}),
    },
  });
  // The prefix the replicas really use (a caller may set its own).
  const keyPrefix = opts.pinEnv?.MCP_PIN_KEY_PREFIX ?? `t${Date.now().toString(36)}:`;
  const pins = await Promise.all(
    Array.from({ length: opts.replicas ?? 1 }, (_, i) =>
      new McpPinProcess(
        `mcp-pin-${i + 1}`,
        0,
        {
          MCP_PIN_STORE_URL: storeUrl,
          MCP_PIN_RECOVERY_URL: envoy.internalUrl,
          MCP_PIN_KEY_PREFIX: keyPrefix,
          ...(socketDir ? { MCP_PIN_LISTEN: `unix:${socketOf(i)}` } : {}),
          ...opts.pinEnv,
        },
        opts.pinNodeArgs,
      ).start(),
    ),
  );
  await envoy.setExtProc(pins.map((p, i) => (socketDir ? { path: socketOf(i) } : { host: '127.0.0.1', port: p.port })));
  // Traffic starts once Envoy's health checks have admitted every replica.
  await Promise.all(pins.map((p, i) => eventually(() => envoy.extProcHealthy(socketDir ? socketOf(i) : p.port), `${p.name} healthy in Envoy`, 15_000)));
  const unregister = registerForReport(() => [envoy.proc, ...pins.map((p) => p.proc), ...pods.map((p) => p.proc)]);
  const stack: Stack = {
    redis,
    storeUrl,
    ...(socketDir ? { socketDir, pinSockets: pins.map((_, i) => `unix:${socketOf(i)}`) } : {}),
    keyPrefix,
    pods,
    envoy,
    pins,
    get mcpUrl() {
      return envoy.mcpUrl;
    },
    podByName(name) {
      const p = pods.find((x) => x.name === name);
      if (!p) throw new Error(`no pod ${name}`);
      return p;
    },
    async stop() {
      await Promise.all([envoy.stop(), ...pins.map((p) => p.stop()), ...pods.map((p) => p.stop())]);
      await redis?.dispose();
      if (socketDir) rmSync(socketDir, { recursive: true, force: true });
      unregister();
    },
  };
  return stack;
}
