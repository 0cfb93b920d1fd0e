/**
 * A real Envoy 1.40 for tests, started from the project's one template
 * (envoy/render.ts). Listeners on port 0 unless a port is given; the ports
 * Envoy bound are read from its admin API.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderEnvoyConfig } from '../../envoy/render.js';
import { ENVOY_DEFAULTS, internalSocketPath, type EnvoyParams, type ExtProcEndpoint } from '../../envoy/params.js';
import type { HostPort } from '../../src/host-port.js';
import { renderEds, writeFileAtomically } from '../../envoy/eds.js';
import { eventually } from './net.js';
import { ManagedProcess } from './process.js';

let envoyBin: string | undefined;
/** The project's own install step decides which Envoy (ENVOY_BIN, PATH, or the venv). */
let envoyVersion: string | undefined;
/** The 1.x version of the Envoy the tests run ("1.40"): the config is rendered for it (ENVOY_BIN may name an older one). */
export function findEnvoyVersion(): string {
  if (envoyVersion === undefined) {
    const minor = /version: [0-9a-f]+\/1\.(\d+)\./.exec(execFileSync(findEnvoy(), ['--version'], { encoding: 'utf8' }))?.[1];
    envoyVersion = minor === undefined ? ENVOY_DEFAULTS.envoyVersion : `1.${minor}`;
  }
  return envoyVersion;
}

export function findEnvoy(): string {
  envoyBin ??= execFileSync('bash', [new URL('../../scripts/ensure-envoy.sh', import.meta.url).pathname], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  }).trim();
  return envoyBin;
}

export interface EnvoyHandle {
  proc: ManagedProcess;
  dir: string;
  publicPort: number;
  internalPort: number;
  adminUrl: string;
  /** http://127.0.0.1:<public>/mcp */
  mcpUrl: string;
  /** http://127.0.0.1:<internal>, or unix:<path> when the internal listener is a Unix socket. */
  internalUrl: string;
  /** Rewrites the EDS file (atomic rename): the service's endpoints change while Envoy runs. */
  setPods(pods: HostPort[]): Promise<void>;
  /** The mcp-pin replicas, when startEnvoy got no extProc list (their EDS file; replicas bind port 0 and report). */
  setExtProc(replicas: ExtProcEndpoint[]): Promise<void>;
  /** Stops and starts a new Envoy process on the same ports. */
  restart(): Promise<void>;
  stop(): Promise<void>;
  stat(name: string): Promise<number>;
  /** True when Envoy's health check currently marks the mcp-pin replica on this port (or Unix socket path) healthy. */
  extProcHealthy(at: number | string): Promise<boolean>;
}

export interface EnvoyOptions {
  /** Fixed replica addresses; without it, an EDS file that setExtProc fills once the replicas report their ports. */
  extProc?: ExtProcEndpoint[];
  pods: HostPort[];
  overrides?: Partial<EnvoyParams>;
  /** Rewrites the rendered config (the benchmark derives its rival setups this way). */
  transform?: (yaml: string) => string;
  /** Renders the config instead of envoy/render.ts (the benchmark's before/after runs render an older tree's template). */
  render?: (params: EnvoyParams) => string;
  concurrency?: number;
}

async function adminGet(adminUrl: string, path: string): Promise<string> {
  const res = await fetch(`${adminUrl}${path}`);
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.text();
}

export async function startEnvoy(opts: EnvoyOptions): Promise<EnvoyHandle> {
  const dir = mkdtempSync(join(tmpdir(), 'mcp-pin-envoy-'));
  mkdirSync(join(dir, 'eds'));
  const edsPath = join(dir, 'eds', 'eds.json');
  let podsNow = opts.pods;
  const writeEds = (pods: HostPort[]): void => writeFileAtomically(edsPath, renderEds(pods));
  writeEds(podsNow);
  mkdirSync(join(dir, 'extproc-eds'));
  const extProcEdsPath = join(dir, 'extproc-eds', 'eds.json');
  const writeExtProcEds = (replicas: ExtProcEndpoint[]): void => writeFileAtomically(extProcEdsPath, renderEds(replicas, 'mcp_pin'));
  if (!opts.extProc) writeExtProcEds([]);

  let publicPort = opts.overrides?.listenPort ?? 0;
  let internalPort = opts.overrides?.internalPort ?? 0;
  let proc: ManagedProcess;
  let adminUrl = '';

  const launch = async (): Promise<void> => {
    const params: EnvoyParams = {
      ...ENVOY_DEFAULTS,
      adminPort: 0,
      listenAddress: '127.0.0.1',
      envoyVersion: findEnvoyVersion(),
      ...opts.overrides,
      listenPort: publicPort,
      internalPort,
      extProc: opts.extProc ?? { edsPath: extProcEdsPath },
      service: { edsPath },
    };
    const rendered = (opts.render ?? renderEnvoyConfig)(params);
    writeFileSync(join(dir, 'envoy.yaml'), opts.transform ? opts.transform(rendered) : rendered);
    const adminPath = join(dir, 'admin.txt');
    writeFileSync(adminPath, '');
    proc = new ManagedProcess('envoy', findEnvoy(), [
      '-c',
      join(dir, 'envoy.yaml'),
      '--disable-hot-restart',
      '--admin-address-path',
      adminPath,
      '--concurrency',
      String(opts.concurrency ?? 1),
      '-l',
      process.env.ENVOY_LOG_LEVEL ?? 'warning',
      // For debugging: the whole log in a file (the harness keeps only its tail).
      ...(process.env.ENVOY_LOG_PATH ? ['--log-path', process.env.ENVOY_LOG_PATH] : []),
    ]).start();
    const admin = await eventually(
      async () => {
        if (!proc.alive) throw new Error(`envoy exited\n${proc.output.slice(-3000)}`);
        const a = existsSync(adminPath) ? readFileSync(adminPath, 'utf8').trim() : '';
        return a.length > 0 ? a : undefined;
      },
      'envoy admin address',
      15_000,
    );
    adminUrl = `http://${admin}`;
    await eventually(async () => (await fetch(`${adminUrl}/ready`)).ok, 'envoy ready', 15_000);
    const listeners = JSON.parse(await adminGet(adminUrl, '/listeners?format=json')) as {
      listener_statuses: { name: string; local_address: { socket_address?: { port_value: number } } }[];
    };
    for (const l of listeners.listener_statuses) {
      if (l.name === 'mcp') publicPort = l.local_address.socket_address!.port_value;
      // A Unix-socket internal listener has no port.
      if (l.name === 'mcp_pin_internal' && l.local_address.socket_address) internalPort = l.local_address.socket_address.port_value;
    }
  };
  await launch();

  const handle: EnvoyHandle = {
    get proc() {
      return proc;
    },
    dir,
    get publicPort() {
      return publicPort;
    },
    get internalPort() {
      return internalPort;
    },
    get adminUrl() {
      return adminUrl;
    },
    get mcpUrl() {
      return `http://127.0.0.1:${publicPort}/mcp`;
    },
    get internalUrl() {
      const socket = opts.overrides?.internalAddress ? internalSocketPath({ internalAddress: opts.overrides.internalAddress }) : undefined;
      return socket ? `unix:${socket}` : `http://127.0.0.1:${internalPort}`;
    },
    async setPods(pods) {
      podsNow = pods;
      // Both clusters of pods read the one EDS file.
      const clusters = ['mcp_service', 'mcp_pinned'];
      const before = await Promise.all(clusters.map((c) => handle.stat(`cluster.${c}.update_success`)));
      writeEds(pods);
      await eventually(
        async () => (await Promise.all(clusters.map((c, i) => handle.stat(`cluster.${c}.update_success`).then((n) => n > before[i]!)))).every(Boolean),
        'EDS update of both clusters',
        10_000,
      );
    },
    async setExtProc(replicas) {
      if (opts.extProc) throw new Error('this Envoy was started with a fixed extProc list');
      const before = await handle.stat('cluster.mcp_pin.update_success');
      writeExtProcEds(replicas);
      await eventually(async () => (await handle.stat('cluster.mcp_pin.update_success')) > before, 'EDS update of the mcp_pin cluster', 10_000);
    },
    async restart() {
      await proc.stop();
      await launch();
    },
    async stop() {
      await proc.stop();
      // Its config, EDS files and admin address: nothing of it outlives it.
      rmSync(dir, { recursive: true, force: true });
    },
    async extProcHealthy(at) {
      const text = await adminGet(adminUrl, '/clusters');
      const host = typeof at === 'number' ? `127.0.0.1:${at}` : at;
      const line = text.split('\n').find((l) => l.startsWith(`mcp_pin::${host}::health_flags::`));
      return line?.endsWith('::healthy');
    },
    async stat(name) {
      const text = await adminGet(adminUrl, `/stats?filter=^${name.replace(/\./g, '\\.')}$`);
      const m = /:\s*(\d+)/.exec(text);
      return m ? Number(m[1]) : 0;
    },
  } as EnvoyHandle;
  return handle;
}

/**
 * Envoy on a config of the test's own (not the template's), with fresh
 * ports: `configFor` writes the config for the ports and names its file;
 * `up` says when it serves (the admin port is `ports.admin`). Envoy's admin
 * must say /ready too: listeners bind after the clusters warm. A port
 * probed free can be taken before Envoy binds it: then new ports, at most
 * three tries; any other exit fails with Envoy's last output.
 */
export async function startEnvoyOnFreePorts<P extends { admin: number }>(opts: {
  ports: () => Promise<P>;
  configFor: (ports: P) => string;
  up: (ports: P) => Promise<boolean>;
  what: string;
  procs: ManagedProcess[];
}): Promise<P> {
  for (let attempt = 1; ; attempt++) {
    const ports = await opts.ports();
    const envoy = new ManagedProcess('envoy', findEnvoy(), ['-c', opts.configFor(ports), '--disable-hot-restart']).start();
    opts.procs.push(envoy);
    const state = await eventually(
      async () => {
        if (!envoy.alive) return 'exited';
        const live = await fetch(`http://127.0.0.1:${ports.admin}/ready`).then(
          (r) => r.ok,
          () => false,
        );
        return live && (await opts.up(ports)) && 'up';
      },
      opts.what,
      30_000,
      100,
    );
    if (state === 'up') return ports;
    if (!/address already in use/i.test(envoy.output) || attempt >= 3) throw new Error(`Envoy exited:\n${envoy.output.slice(-3000)}`);
  }
}
