/**
 * Wires one mcp-pin instance: store, ext_proc + health on one gRPC port,
 * metrics over HTTP (metrics-server.ts), a store watchdog driving health
 * (store-watchdog.ts). main.ts runs it as a process; tests can run it
 * in-process.
 */
import { ConfigValueError, PinError } from './errors.js';
import type { Config } from './config.js';
import { splitHostPort, type HostPort } from './host-port.js';
import { isLoopbackHost, parseListenAddress } from './listen-address.js';
import { RecentlyUnknown } from './extproc/recently-unknown.js';
import { ExtProcService } from './extproc/server.js';
import { createGrpcServer, listen, serverCredentials, shutdown } from './grpc-server.js';
import { Health } from './health.js';
import { PinAllowlist } from './pin-allowlist.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { startMetricsServer, type MetricsServer } from './metrics-server.js';
import { watchStore } from './store-watchdog.js';
import { HttpRecoverer } from './recovery/http-recoverer.js';
import { createStore, type SessionStore } from './sessions/index.js';

export interface App {
  grpcPort: number;
  metricsPort: number | null;
  store: SessionStore;
  health: Health;
  metrics: Metrics;
  extProc: ExtProcService;
  /** Drain and stop: NOT_SERVING, then GOAWAY (no new streams), open streams get up to drainGraceMs, close. */
  shutdown(): Promise<{ leftOpen: number; drainMs: number }>;
}

export async function startApp(cfg: Config, log: Logger, opts: { store?: SessionStore } = {}): Promise<App> {
  const metrics = new Metrics({ defaultMetrics: true });
  const store = opts.store ?? createStore(cfg, metrics);
  const health = new Health((status) => metrics.serving.set(status === 'SERVING' ? 1 : 0));
  const allowlist = new PinAllowlist(cfg.pinAllow, undefined, (name, err) =>
    log.warn({ name, err: (err as Error)?.message }, '--pin-allow: DNS lookup failed; keeping the last answer'),
  );
  if (allowlist.allowsAny) log.warn('--pin-allow is *: pins are not restricted to your pod networks (set it in production)');
  await allowlist.start();
  const recoverer = new HttpRecoverer({ cfg, store, log, metrics, allowlist });
  const recentlyUnknown = new RecentlyUnknown(cfg.unknownSessionCacheMs);
  const extProc = new ExtProcService({ store, cfg, log, metrics, recoverer, allowlist, recentlyUnknown, startClosed: true });

  const server = createGrpcServer();
  extProc.addTo(server);
  health.addTo(server);
  const address = parseListenAddress(cfg.listen);
  // loadConfig refused anything else at start.
  if (!address) throw new PinError('MCP_PIN_LISTEN_FAILED', `cannot listen on ${cfg.listen}: not an address`);
  const tls = cfg.tlsCertFile
    ? { certFile: cfg.tlsCertFile, keyFile: cfg.tlsKeyFile, ...(cfg.tlsClientCaFile ? { clientCaFile: cfg.tlsClientCaFile } : {}) }
    : undefined;
  const grpcPort = await listen(server, address, serverCredentials(tls));
  if (tls) log.info({ mutual: Boolean(tls.clientCaFile) }, 'gRPC port serves TLS');
  else if (address.kind === 'tcp' && !isLoopbackHost(address.host))
    log.warn({ listen: cfg.listen }, 'gRPC port serves plaintext on a network address (--network-is-closed true): anyone who reaches it can rewrite sessions');

  const watchdog = watchStore(store, health, extProc, log);
  if (store.connect) {
    try {
      await store.connect(5000);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'store not reachable at start; retrying in the background');
    }
  }
  await watchdog.start();

  const metricsServer: MetricsServer | null = cfg.metricsListen === 'off' ? null : await startMetricsServer(metricsAddress(cfg.metricsListen), metrics, health);
  const metricsPort = metricsServer?.port ?? null;
  log.info({ grpcPort, metricsPort, store: store.constructor.name }, 'mcp-pin listening');

  return {
    grpcPort,
    metricsPort,
    store,
    health,
    metrics,
    extProc,
    async shutdown() {
      const started = Date.now();
      watchdog.drain();
      // Still serving while Envoy's health check notices; refusing at once
      // would fail the requests Envoy sends us meanwhile.
      if (cfg.drainDelayMs > 0) await new Promise((r) => setTimeout(r, cfg.drainDelayMs));
      log.info({ openStreams: extProc.openStreams }, 'drain delay over: refusing new streams');
      // GOAWAY now: Envoy opens new streams on another replica, never here,
      // while the streams in flight finish.
      let leftOpen = 0;
      await shutdown(server, cfg.drainGraceMs, () => (leftOpen = extProc.openStreams));
      watchdog.stop();
      await metricsServer?.close();
      allowlist.stop();
      await recoverer.close();
      await store.close();
      return { leftOpen, drainMs: Date.now() - started };
    },
  };
}

/** --metrics-listen, checked as host:port when read (config.ts). */
function metricsAddress(listen: string): HostPort {
  const hp = splitHostPort(listen);
  if (!hp) throw new ConfigValueError(`--metrics-listen ${listen} is not host:port`);
  return hp;
}
