/**
 * The Recoverer the ext_proc layer calls for a retry attempt: SessionRecovery
 * wired to Envoy's internal listener, with metrics and logs. It decides
 * nothing and changes no stored state itself: every plan and every store
 * change is SessionRecovery's. The ext_proc layer alone turns a plan or an
 * outcome into Envoy's answer.
 */
import type { Config } from '../config.js';
import { sessionTag, type Logger } from '../log.js';
import type { HeaderPairs } from '../mcp-headers.js';
import { countsAsRecovered, type Metrics } from '../metrics.js';
import type { StateChange } from '../session-state.js';
import type { SessionStore } from '../sessions/store.js';
import type { Clock } from '../clock.js';
import { MESSAGE_TIMEOUT_MARGIN_MS } from '../timeouts.js';
import { ByteBudget } from './byte-budget.js';
import { EnvoyForwarder, type Forwarder } from './forwarder.js';
import type { PinAllowlist } from '../pin-allowlist.js';
import type { CatchUpOutcome, RelayOutcome, RelayRequest, RetryAttempt, RetryPlan } from './plans.js';
import { SessionRecovery } from './recovery.js';

/** A re-initialize answer is one JSON-RPC result; anything bigger is refused. */
const MAX_REINIT_RESPONSE_BYTES = 1024 * 1024;
/** A relayed answer is held whole: bounded. */
export const MAX_RELAY_RESPONSE_BYTES = 16 * 1024 * 1024;

/** What the ext_proc layer needs from recovery. */
export interface Recoverer {
  /** How long Envoy must be told to wait for the answer to a message whose work is bounded by deadline(). */
  readonly messageTimeoutMs: number;
  /** The bound of the work done while answering one message: the recovery timeout, or Envoy giving up. */
  deadline(cancelled: AbortSignal): AbortSignal;
  planRetry(attempt: RetryAttempt, signal: AbortSignal): Promise<RetryPlan>;
  /** Sends a relayed attempt to the pod that holds its session; that pod's answer, or a failure saying whether it may have run. */
  relay(req: RelayRequest, signal: AbortSignal): Promise<RelayOutcome>;
}

/** What the session-state filter needs of recovery: a kept change carried to where the session moved meanwhile. */
export interface StateCatchUp {
  catchUpState(clientSessionId: string, answeredBy: string, change: StateChange, headers: HeaderPairs): Promise<CatchUpOutcome>;
}

export interface HttpRecovererDeps {
  cfg: Pick<Config, 'recoveryUrl' | 'recoveryTimeoutMs' | 'pinHeader' | 'upstreamHeader' | 'lostSessionStatuses' | 'maxSessionIdLength' | 'relayBudgetBytes'>;
  store: SessionStore;
  log: Logger;
  metrics: Metrics;
  forwarder?: Forwarder;
  allowlist?: PinAllowlist;
  clock?: Clock;
}

export class HttpRecoverer implements Recoverer, StateCatchUp {
  readonly messageTimeoutMs: number;
  private readonly recovery: SessionRecovery;
  private readonly forwarder: Forwarder;

  constructor(private readonly deps: HttpRecovererDeps) {
    const { cfg } = deps;
    this.messageTimeoutMs = cfg.recoveryTimeoutMs + MESSAGE_TIMEOUT_MARGIN_MS;
    this.forwarder = deps.forwarder ?? new EnvoyForwarder(cfg.recoveryUrl, cfg.pinHeader, cfg.upstreamHeader, cfg.recoveryTimeoutMs);
    this.recovery = new SessionRecovery({
      store: deps.store,
      forwarder: this.forwarder,
      timeoutMs: cfg.recoveryTimeoutMs,
      maxResponseBytes: MAX_REINIT_RESPONSE_BYTES,
      maxRelayBytes: MAX_RELAY_RESPONSE_BYTES,
      maxSessionIdLength: cfg.maxSessionIdLength,
      lostSessionStatuses: cfg.lostSessionStatuses,
      relayBudget: new ByteBudget(cfg.relayBudgetBytes),
      onIgnoredError: (op) => deps.metrics.ignored(op),
      onStateReplayed: ({ clientSessionId, method, result, status }) => {
        deps.metrics.stateReplays.inc({ result });
        // The client is not told (it never sees the recovery): the log and the metric are the trace.
        if (result === 'refused')
          deps.log.warn(
            { session: sessionTag(clientSessionId), method, status },
            "the new pod refused a request that rebuilds the session's state: left out of the session",
          );
      },
      // Each recovery counted once, as what it was, whoever still waits for it.
      onRecoveryDone: ({ clientSessionId, result, code, reason, ms }) => {
        deps.metrics.recoverySeconds.observe({ result }, ms / 1000);
        if (result === 'failed') deps.log.warn({ session: sessionTag(clientSessionId), code, reason, ms }, 'recovery failed');
      },
      ...(deps.allowlist ? { allows: allowsFresh(deps.allowlist) } : {}),
      ...(deps.clock ? { clock: deps.clock } : {}),
    });
  }

  deadline(cancelled: AbortSignal): AbortSignal {
    return this.recovery.deadline(cancelled);
  }

  async planRetry(attempt: RetryAttempt, signal: AbortSignal): Promise<RetryPlan> {
    const { log, metrics } = this.deps;
    const tag = sessionTag(attempt.clientSessionId);
    const plan = await this.recovery.planRetry(attempt, signal);
    switch (plan.kind) {
      case 'failed':
        // The client left (Envoy gave up on the request): that is all this caller saw; the recovery it waited for goes on and reports itself.
        if (plan.code === 'MCP_PIN_RECOVERY_CANCELLED') {
          metrics.outcome('client_left');
          log.info({ session: tag, pod: attempt.pod }, 'client left while its session was being recovered');
          break;
        }
        metrics.outcome('recovery_failed');
        // The store failed a step of the plan (its read, the lock, the new pin): a store error too.
        if (plan.code === 'MCP_PIN_STORE_CORRUPT' || plan.code === 'MCP_PIN_STORE_UNAVAILABLE' || plan.code === 'MCP_PIN_STORE_TIMEOUT')
          metrics.storeErrors.inc({ op: 'recovery', code: plan.code });
        log.warn({ session: tag, pod: attempt.pod, code: plan.code }, "retry not sent: the session's recovery failed");
        break;
      case 'relay':
        if (plan.why === 'not-lost') {
          metrics.outcome('not_lost');
          log.info({ session: tag, pod: plan.pin.pod }, 'session not lost (its pod still holds it): request goes back there');
        } else if (plan.why === 'off-path') {
          metrics.outcome('off_path');
          log.info({ session: tag, pod: plan.pin.pod, path: attempt.path }, "not the session's MCP path: the pod's own answer stands");
        }
        break;
      case 'send':
        if (plan.reinitialized) log.info({ session: tag, pod: plan.pin.pod, generation: plan.pin.generation }, 'session re-initialized');
        break;
    }
    return plan;
  }

  async relay(req: RelayRequest, signal: AbortSignal): Promise<RelayOutcome> {
    const { log, metrics } = this.deps;
    const out = await this.recovery.relay(req, signal);
    if (out.kind === 'failed') {
      metrics.outcome('recovery_failed');
      log.warn({ session: sessionTag(req.attempt.clientSessionId), pod: req.plan.pin.pod, code: out.code }, "relay to the session's pod failed");
    } else if (req.plan.why === 'moved') {
      metrics.outcome('relayed');
      if (out.kind === 'answered' && countsAsRecovered(out.status, this.deps.cfg.lostSessionStatuses)) metrics.outcome('recovered');
    }
    return out;
  }

  async catchUpState(clientSessionId: string, answeredBy: string, change: StateChange, headers: HeaderPairs): Promise<CatchUpOutcome> {
    return this.recovery.catchUpState(clientSessionId, answeredBy, change, headers);
  }

  async close(): Promise<void> {
    await this.forwarder.close();
  }
}

/** The allowlist's fresh check, as the relay takes it. */
function allowsFresh(allowlist: { allowsFresh(pod: string): Promise<boolean> }): (pod: string) => Promise<boolean> {
  return (pod) => allowlist.allowsFresh(pod);
}
