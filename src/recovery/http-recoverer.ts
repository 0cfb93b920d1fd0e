/**
 * The Recoverer the ext_proc exchange calls when a pinned pod lost a session:
 * runs SessionRecovery and turns its outcome into the one answer the client
 * gets (an ImmediateResponse replacing the pod's 404 / Envoy's 503).
 */
import type { Config } from '../config.js';
import { RecoveryError, StoreError, type PinErrorCode } from '../errors.js';
import type { LostRequest, Recoverer } from '../extproc/exchange.js';
import type { ProcessingResponse } from '../extproc/protocol.js';
import {
  JSONRPC_INTERNAL_ERROR,
  JSONRPC_SESSION_NOT_FOUND,
  immediate,
  jsonRpcError,
} from '../extproc/responses.js';
import { isConnectFailure } from '../extproc/upstream.js';
import { sessionTag, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { SessionStore } from '../sessions/store.js';
import { EnvoyForwarder, type Forwarder } from './forwarder.js';
import type { PinAllowlist } from '../extproc/pin-allowlist.js';
import { SessionRecovery, clientResponseHeaders } from './recovery.js';

/** Envoy is asked to wait this much longer than the recovery itself may take. */
const MESSAGE_TIMEOUT_MARGIN_MS = 1000;

export interface HttpRecovererDeps {
  cfg: Pick<Config, 'recoveryUrl' | 'recoveryTimeoutMs' | 'pinHeader' | 'upstreamHeader' | 'maxReplayBodyBytes' | 'lostSessionStatuses'>;
  store: SessionStore;
  log: Logger;
  metrics: Metrics;
  forwarder?: Forwarder;
  allowlist?: PinAllowlist;
}

/** What the client gets for each way a recovery can fail. */
function failureResponse(code: PinErrorCode | 'STORE'): ProcessingResponse {
  switch (code) {
    case 'MCP_PIN_RECOVERY_NO_INIT_BODY':
    case 'MCP_PIN_RECOVERY_REINIT_FAILED':
    case 'MCP_PIN_RECOVERY_GONE':
      // The session cannot come back: the spec's answer, so the client re-initializes.
      return jsonRpcError(404, JSONRPC_SESSION_NOT_FOUND, 'Session not found', 'mcp_pin_recovery_failed');
    case 'MCP_PIN_RECOVERY_TIMEOUT':
      return jsonRpcError(504, JSONRPC_INTERNAL_ERROR, 'mcp-pin: session recovery timed out', 'mcp_pin_recovery_timeout');
    case 'STORE':
      return jsonRpcError(503, JSONRPC_INTERNAL_ERROR, 'mcp-pin: session store unavailable, retry shortly', 'mcp_pin_store_unavailable', [['retry-after', '1']]);
    default:
      return jsonRpcError(502, JSONRPC_INTERNAL_ERROR, 'mcp-pin: the request failed again after session recovery', 'mcp_pin_replay_failed');
  }
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
      pinHeader: cfg.pinHeader,
      timeoutMs: cfg.recoveryTimeoutMs,
      maxReplayBodyBytes: cfg.maxReplayBodyBytes,
      ...(deps.allowlist ? { allows: (pod: string) => deps.allowlist!.allows(pod) } : {}),
    });
  }

  async recover(lost: LostRequest): Promise<ProcessingResponse> {
    const { log, metrics, cfg, store } = this.deps;
    const tag = sessionTag(lost.clientSessionId);
    const signal = AbortSignal.timeout(cfg.recoveryTimeoutMs);
    const timer = metrics.recoverySeconds.startTimer();
    log.info({ session: tag, method: lost.method, status: lost.status, pod: lost.pin.pod, details: lost.upstream.codeDetails }, 'recovery started');
    let stage = 'reinit';
    try {
      const { pin, reinitialized } = await this.recovery.obtainPin(lost, signal);
      if (reinitialized) log.info({ session: tag, pod: pin.pod, generation: pin.generation }, 'session re-initialized');
      if (lost.method === 'GET') {
        // A standalone SSE stream never ends, so it cannot be replayed into one
        // answer. End it cleanly instead: the client reconnects by itself and
        // its next GET streams from the recovered pod.
        timer({ result: 'recovered' });
        metrics.outcome('recovered');
        return immediate(200, [['content-type', 'text/event-stream'], ['cache-control', 'no-cache'], ['mcp-session-id', lost.clientSessionId]], Buffer.alloc(0), 'mcp_pin_recovered_reconnect');
      }
      stage = 'replay';
      const res = await this.recovery.replay(lost, pin, signal);
      if (cfg.lostSessionStatuses.includes(res.status) || isConnectFailure(res.status, {})) {
        throw new RecoveryError('MCP_PIN_RECOVERY_REPLAY_FAILED', `replay answered ${res.status}`);
      }
      timer({ result: 'recovered' });
      metrics.outcome('recovered');
      log.info({ session: tag, pod: pin.pod, status: res.status }, 'recovery finished');
      return immediate(res.status, clientResponseHeaders(res.headers, lost.clientSessionId), res.body, 'mcp_pin_recovered');
    } catch (err) {
      timer({ result: 'failed' });
      metrics.outcome('recovery_failed');
      const code: PinErrorCode | 'STORE' =
        err instanceof StoreError
          ? 'STORE'
          : signal.aborted
            ? 'MCP_PIN_RECOVERY_TIMEOUT'
            : err instanceof RecoveryError
              ? err.code
              : 'MCP_PIN_RECOVERY_REPLAY_FAILED';
      const cause = err instanceof Error && err.cause instanceof Error ? err.cause.message : undefined;
      log.warn({ session: tag, stage, code, err: (err as Error)?.message, cause }, 'recovery failed');
      if (code === 'MCP_PIN_RECOVERY_NO_INIT_BODY' || code === 'MCP_PIN_RECOVERY_REINIT_FAILED') {
        // The stale pin goes, unless another replica has stored a newer one meanwhile.
        await store.removeIfGeneration(lost.clientSessionId, lost.pin.generation).catch(() => false);
      }
      return failureResponse(code);
    }
  }

  async close(): Promise<void> {
    await this.forwarder.close();
  }
}
