/**
 * Wires one mcp-pin instance: store, ext_proc + health on one gRPC port,
 * metrics over HTTP, a store watchdog driving health. main.ts runs it as a
 * process; tests can run it in-process.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import { PinError } from './errors.js';
import { splitHostPort, type Config } from './config.js';
import { isLoopbackHost, parseListenAddress } from './listen-address.js';
import { RecentlyUnknown } from './extproc/recently-unknown.js';
import { ExtProcService } from './extproc/server.js';
import { createGrpcServer, listen, serverCredentials, shutdown } from './grpc-server.js';
import { Health } from './health.js';
import { PinAllowlist } from './pin-allowlist.js';
import type { Logger } from './log.js';
import { Metrics } from './metrics.js';
import { HttpRecoverer } from './recovery/http-recoverer.js';
import { createStore, type SessionStore } from './sessions/index.js';

const STORE_PROBE_INTERVAL_MS = 1000;

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

  let draining = false;
  let probing = false;
  const probeStore = async (): Promise<void> => {
    if (probing) return;
    probing = true;
    try {
      await store.ping();
      if (!extProc.isAccepting) log.info('session store answered: accepting ext_proc streams');
      extProc.startAccepting();
      if (!draining) health.set('SERVING');
    } catch (err) {
      if (health.current === 'SERVING') log.error({ err: (err as Error).message }, 'session store unreachable: NOT_SERVING');
      health.set('NOT_SERVING');
    } finally {
      probing = false;
    }
  };
  if (store.connect) {
    try {
      await store.connect(5000);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'store not reachable at start; retrying in the background');
    }
  }
  await probeStore();
  const probeTimer = setInterval(() => void probeStore(), STORE_PROBE_INTERVAL_MS);

  let metricsServer: HttpServer | null = null;
  let metricsPort: number | null = null;
  if (cfg.metricsListen !== 'off') {
    const m = splitHostPort(cfg.metricsListen);
    metricsServer = createServer((req, res) => {
      if (req.url === '/metrics') {
        metrics.registry.metrics().then(
          (body) => {
            res.writeHead(200, { 'content-type': metrics.registry.contentType });
            res.end(body);
          },
          () => {
            res.writeHead(500);
            res.end();
          },
        );
      } else if (req.url === '/healthz') {
        const ok = health.current === 'SERVING';
        res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
        res.end(ok ? 'SERVING\n' : 'NOT_SERVING\n');
      } else {
        res.writeHead(404);
        res.end();
      }
    });
    const listening = metricsServer;
    metricsPort = await new Promise<number>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(m.port, m.host, () => {
        const a = listening.address();
        resolve(typeof a === 'object' && a ? a.port : m.port);
      });
    });
  }
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
      draining = true;
      health.set('NOT_SERVING');
      // Still serving while Envoy's health check notices; refusing at once
      // would fail the requests Envoy sends us meanwhile.
      if (cfg.drainDelayMs > 0) await new Promise((r) => setTimeout(r, cfg.drainDelayMs));
      log.info({ openStreams: extProc.openStreams }, 'drain delay over: refusing new streams');
      // GOAWAY now: Envoy opens new streams on another replica, never here,
      // while the streams in flight finish.
      let leftOpen = 0;
      await shutdown(server, cfg.drainGraceMs, () => (leftOpen = extProc.openStreams));
      clearInterval(probeTimer);
      const open = metricsServer;
      if (open) await new Promise<void>((resolve) => open.close(() => resolve()));
      allowlist.stop();
      await recoverer.close();
      await store.close();
      return { leftOpen, drainMs: Date.now() - started };
    },
  };
}
