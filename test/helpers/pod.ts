/**
 * MCP SDK pods as processes on their own loopback address: the TypeScript SDK
 * (demo/mcp-pod.ts) or the Python SDK (demo/python/mcp_pod.py: FastMCP under
 * uvicorn, `mcp` from the project's venv).
 */
import { execFileSync } from 'node:child_process';
import { ManagedProcess } from './process.js';

const POD_SCRIPT = new URL('../../demo/mcp-pod.ts', import.meta.url).pathname;
const PYTHON_POD_SCRIPT = new URL('../../demo/python/mcp_pod.py', import.meta.url).pathname;
const ENSURE_PYTHON_MCP = new URL('../../scripts/ensure-python-mcp.sh', import.meta.url).pathname;

/** Python `mcp` versions the tests run: 1.25 answers an unknown session 400, 1.30 answers 404 (-32600). */
export type PythonMcpVersion = '1.25' | '1.30';
export type PodKind = 'ts' | `python-${PythonMcpVersion}`;

const pythons = new Map<PythonMcpVersion, string>();
/** The venv python with this `mcp` version, installed on first use (scripts/ensure-python-mcp.sh). */
export function pythonFor(version: PythonMcpVersion): string {
  let py = pythons.get(version);
  if (!py) {
    py = execFileSync('bash', [ENSURE_PYTHON_MCP, version], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
    pythons.set(version, py);
  }
  return py;
}

export interface PodRecord {
  name: string;
  initialize: string[];
  initialized: string[];
  deleted: string[];
  /** resources/read URIs, in order. */
  reads: string[];
  requests: {
    httpMethod: string;
    sessionId: string | null;
    rpcMethod: string | null;
    protocolVersion?: string;
    status?: number;
    pinHeaders?: string[];
    traceparent?: string;
    authorization?: string;
  }[];
  /** Python pods only: POST/DELETE requests not yet answered in full. */
  inFlight?: number;
}

/** initialize and notifications/initialized the pods saw (each since its current process started), summed. */
export async function initializeCounts(pods: Pod[]): Promise<{ initialize: number; initialized: number }> {
  let initialize = 0;
  let initialized = 0;
  for (const p of pods) {
    const r = await p.record();
    initialize += r.initialize.length;
    initialized += r.initialized.length;
  }
  return { initialize, initialized };
}

export interface PodOptions {
  name: string;
  host: string;
  port?: number;
  env?: Record<string, string>;
  /** Another pod program (the benchmark's fast pod); default demo/mcp-pod.ts. */
  script?: string;
  /** Which SDK serves (default 'ts'). */
  kind?: PodKind;
}

export class Pod {
  proc!: ManagedProcess;
  host: string;
  port: number;

  constructor(private readonly opts: PodOptions) {
    this.host = opts.host;
    this.port = opts.port ?? 0;
  }

  get name(): string {
    return this.opts.name;
  }

  get address(): { host: string; port: number } {
    return { host: this.host, port: this.port };
  }

  get kind(): PodKind {
    return this.opts.kind ?? 'ts';
  }

  async start(env: Record<string, string> = {}): Promise<this> {
    const kind = this.kind;
    const [command, args] =
      kind === 'ts'
        ? [process.execPath, ['--import', 'tsx', this.opts.script ?? POD_SCRIPT]]
        : [pythonFor(kind.slice('python-'.length) as PythonMcpVersion), ['-W', 'ignore', PYTHON_POD_SCRIPT]];
    this.proc = new ManagedProcess(`pod:${this.name}`, command, args, {
      POD_NAME: this.name,
      POD_HOST: this.host,
      POD_PORT: String(this.port),
      ...this.opts.env,
      ...env,
    }).start();
    const line = await this.proc.waitForJson((o) => typeof o.listening === 'string');
    this.port = Number(String(line.listening).split(':').pop());
    return this;
  }

  /** What this pod saw (only since its current process started). */
  async record(): Promise<PodRecord> {
    const res = await fetch(`http://${this.host}:${this.port}/_record`);
    return (await res.json()) as PodRecord;
  }

  /** Sends a log notification to every session's standalone GET stream. */
  async notifyAll(): Promise<number> {
    const res = await fetch(`http://${this.host}:${this.port}/_notify`, { method: 'POST' });
    return ((await res.json()) as { sent: number }).sent;
  }

  /** A change of resource `uri`: notifications/resources/updated to the sessions subscribed to it (TypeScript pods). */
  async touch(uri: string): Promise<number> {
    const res = await fetch(`http://${this.host}:${this.port}/_touch?uri=${encodeURIComponent(uri)}`, { method: 'POST' });
    return ((await res.json()) as { sent: number }).sent;
  }

  /** A log message at `level` to every session; each session's level (logging/setLevel) filters it. */
  async log(level: string): Promise<void> {
    await fetch(`http://${this.host}:${this.port}/_log?level=${encodeURIComponent(level)}`, { method: 'POST' });
  }

  /** The pod process dies: its in-memory sessions are gone. */
  async kill(): Promise<void> {
    await this.proc.kill();
  }

  /** A new process at the same address, knowing no sessions (a pod restarted in place). */
  async restartInPlace(env: Record<string, string> = {}): Promise<void> {
    await this.proc.kill();
    await this.start(env);
  }

  /** Rescheduled: the old address goes dead, a new process listens elsewhere. */
  async moveTo(host: string): Promise<void> {
    await this.proc.kill();
    this.host = host;
    this.port = 0;
    await this.start();
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
  }

  /** SIGTERM, as Kubernetes ends a pod: it finishes its in-flight requests, then exits. Resolves with its exit code. */
  async terminate(graceMs = 30_000): Promise<number | null> {
    this.proc.child!.kill('SIGTERM');
    return this.proc.waitExit(graceMs);
  }
}

export async function startPods(n: number, env: Record<string, string> = {}, firstHostOctet = 2, kind: PodKind = 'ts'): Promise<Pod[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => new Pod({ name: `pod${i + 1}`, host: `127.0.0.${firstHostOctet + i}`, env, kind }).start()));
}
