/**
 * The Recoverer the ext_proc layer calls for a retry attempt: runs
 * SessionRecovery under a time bound, records metrics and logs, and reports
 * how it went as a plain result (a plan, or a failure code). The ext_proc
 * layer alone turns that into Envoy's answer.
 */
import type { Config } from '../config.js';
import { RecoveryError, StoreError, type PinErrorCode } from '../errors.js';
import { sessionTag, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { SessionStore } from '../sessions/store.js';
import { EnvoyForwarder, ResponseTooLargeError, type Forwarder } from './forwarder.js';
import type { PinAllowlist } from '../pin-allowlist.js';
import type { HeaderPairs } from '../mcp-headers.js';
import { SessionRecovery, type RelayRequest, type RetryAttempt, type RetryPlan } from './recovery.js';

/** Envoy is asked to wait this much longer than the recovery itself may take. */
const MESSAGE_TIMEOUT_MARGIN_MS = 1000;
/** A re-initialize answer is one JSON-RPC result; anything bigger is refused. */
const MAX_REINIT_RESPONSE_BYTES = 1024 * 1024;
/** A relayed answer is held whole: bounded. */
const MAX_RELAY_RESPONSE_BYTES = 16 * 1024 * 1024;

export type RetryOutcome = RetryPlan | { kind: 'failed'; code: PinErrorCode };
export type RelayOutcome = { kind: 'answered'; status: number; headers: HeaderPairs; body: Buffer } | { kind: 'failed'; code: PinErrorCode };

/** What the ext_proc layer needs from recovery. */
export interface Recoverer {
  /** How long a plan may take; Envoy is asked to wait that long for the answer. */
  readonly timeoutMs: number;
  planRetry(attempt: RetryAttempt, cancelled: AbortSignal): Promise<RetryOutcome>;
  /** Sends a request to the pod that holds its session (a retry that landed elsewhere). */
  relay(req: RelayRequest, cancelled: AbortSignal): Promise<RelayOutcome>;
}

export interface HttpRecovererDeps {
  cfg: Pick<Config, 'recoveryUrl' | 'recoveryTimeoutMs' | 'pinHeader' | 'upstreamHeader' | 'lostSessionStatuses'>;
  store: SessionStore;
  log: Logger;
  metrics: Metrics;
  forwarder?: Forwarder;
  allowlist?: PinAllowlist;
}

export class HttpRecoverer implements Recoverer {
  readonly timeoutMs: number;
  private readonly recovery: SessionRecovery;
  private readonly forwarder: Forwarder;

  constructor(private readonly deps: HttpRecovererDeps) {
    const { cfg } = deps;
    this.timeoutMs = cfg.recoveryTimeoutMs + MESSAGE_TIMEOUT_MARGIN_MS;
    this.forwarder = deps.forwarder ?? new EnvoyForwarder(cfg.recoveryUrl, cfg.pinHeader, cfg.upstreamHeader, cfg.recoveryTimeoutMs);
    this.recovery = new SessionRecovery({
      store: deps.store,
      forwarder: this.forwarder,
      timeoutMs: cfg.recoveryTimeoutMs,
      maxResponseBytes: MAX_REINIT_RESPONSE_BYTES,
      maxRelayBytes: MAX_RELAY_RESPONSE_BYTES,
      lostSessionStatuses: cfg.lostSessionStatuses,
      onIgnoredError: (op) => deps.metrics.ignored(op),
      ...(deps.allowlist ? { allows: (pod: string) => deps.allowlist!.allowsFresh(pod) } : {}),
    });
  }

  async planRetry(attempt: RetryAttempt, cancelled: AbortSignal): Promise<RetryOutcome> {
    const { log, metrics, cfg, store } = this.deps;
    const tag = sessionTag(attempt.clientSessionId);
    const timeout = AbortSignal.timeout(cfg.recoveryTimeoutMs);
    // Bounded, and abandoned as soon as Envoy gives up on the request.
    const signal = AbortSignal.any([timeout, cancelled]);
    const timer = metrics.recoverySeconds.startTimer();
    try {
      const plan = await this.recovery.planRetry(attempt, signal);
      if (plan.kind === 'relay' && plan.notLost) {
        timer({ result: 'not_lost' });
        metrics.outcome('not_lost');
        log.info({ session: tag, pod: plan.pin.pod }, 'session not lost (its pod still holds it): request goes back there');
      }
      if (plan.kind === 'send' && plan.reinitialized) {
        timer({ result: 'recovered' });
        log.info({ session: tag, pod: plan.pin.pod, generation: plan.pin.generation }, 'session re-initialized');
      }
      return plan;
    } catch (err) {
      timer({ result: 'failed' });
      metrics.outcome('recovery_failed');
      const code: PinErrorCode =
        err instanceof StoreError
          ? err.code
          : timeout.aborted
            ? 'MCP_PIN_RECOVERY_TIMEOUT'
            : err instanceof RecoveryError
              ? err.code
              : 'MCP_PIN_UNEXPECTED';
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : undefined;
      log.warn({ session: tag, pod: attempt.pod, code, cancelled: cancelled.aborted, err: (err as Error)?.message, cause }, 'recovery failed');
      if (code === 'MCP_PIN_RECOVERY_NO_INIT_BODY' || code === 'MCP_PIN_RECOVERY_REINIT_FAILED') {
        // The stale pin goes, unless another replica has stored a newer one meanwhile.
        // If this fails, the stale pin stays until its TTL; the client gets its 404 either way.
        const dropped = async (): Promise<void> => {
          const rec = await store.load(attempt.clientSessionId);
          if (rec && rec.backendSessionId === attempt.failedSessionId) await store.removeIfGeneration(attempt.clientSessionId, rec.generation);
        };
        await dropped().catch(() => metrics.ignored('drop_stale_pin'));
      }
      return { kind: 'failed', code };
    }
  }

  async relay(req: RelayRequest, cancelled: AbortSignal): Promise<RelayOutcome> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.deps.cfg.recoveryTimeoutMs), cancelled]);
    try {
      const res = await this.recovery.relay(req, signal);
      return { kind: 'answered', status: res.status, headers: res.headers, body: res.body };
    } catch (err) {
      // Too large: the pod has run it; the client must not run it again.
      const code: PinErrorCode = err instanceof ResponseTooLargeError ? 'MCP_PIN_RELAY_TOO_LARGE' : 'MCP_PIN_RELAY_FAILED';
      this.deps.metrics.outcome('recovery_failed');
      this.deps.log.warn({ pod: req.pin.pod, code, err: (err as Error)?.message }, 'relay to the session\'s pod failed');
      return { kind: 'failed', code };
    }
  }

  async close(): Promise<void> {
    await this.forwarder.close();
  }
}
