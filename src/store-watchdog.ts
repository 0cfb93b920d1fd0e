/**
 * The store watchdog: pings the session store every second and drives the
 * replica's health from it (NOT_SERVING while the store cannot answer, so
 * Envoy sends its streams to another replica), and opens the ext_proc gate
 * the first time the store answers. Draining keeps it NOT_SERVING.
 */
import type { Health } from './health.js';
import type { Logger } from './log.js';
import type { SessionStore } from './sessions/store.js';

/** How often the store is pinged (ms). */
export const STORE_PROBE_INTERVAL_MS = 1000;

export interface StoreWatchdog {
  /** The first probe, then one every STORE_PROBE_INTERVAL_MS. */
  start(): Promise<void>;
  /** The replica drains: health stays NOT_SERVING whatever the store says. */
  drain(): void;
  stop(): void;
}

export function watchStore(
  store: Pick<SessionStore, 'ping'>,
  health: Health,
  gate: { isAccepting: boolean; startAccepting(): void },
  log: Logger,
): StoreWatchdog {
  let draining = false;
  let probing = false;
  const probe = async (): Promise<void> => {
    if (probing) return;
    probing = true;
    try {
      await store.ping();
      if (!gate.isAccepting) log.info('session store answered: accepting ext_proc streams');
      gate.startAccepting();
      if (!draining) health.set('SERVING');
    } catch (err) {
      if (health.current === 'SERVING') log.error({ err: (err as Error).message }, 'session store unreachable: NOT_SERVING');
      health.set('NOT_SERVING');
    } finally {
      probing = false;
    }
  };
  let timer: NodeJS.Timeout | undefined;
  return {
    start: async () => {
      await probe();
      timer ??= setInterval(() => void probe(), STORE_PROBE_INTERVAL_MS);
    },
    drain: () => {
      draining = true;
      health.set('NOT_SERVING');
    },
    stop: () => clearInterval(timer),
  };
}
