/**
 * Relays: mcp-pin sends a retry attempt to its session's pod itself, where
 * Envoy cannot (a request Envoy already started again, a session that was
 * not lost, a request off the session's MCP path), and hands back that
 * pod's answer, or an error that says whether the request may have run
 * (I2). At most one more send when that pod lost the session meanwhile
 * (I1, A1). The protocol is docs/recovery-protocol.md; planning lives in
 * recovery.ts.
 */
import { SESSION_HEADER, type HeaderPairs } from '../mcp-headers.js';
import { endToEndHeaders } from '../header-rules.js';
import type { Pin } from '../sessions/store.js';
import type { ByteBudget } from './byte-budget.js';
import { ResponseTooLargeError, envoyNeverConnected, neverSent, type Forwarder } from './forwarder.js';
import { saysSessionUnknown } from './lost-session.js';
import type { RelayOutcome, RelayPlan, RelayRequest, RetryAttempt, RetryPlan } from './plans.js';

export interface RelayOptions {
  forwarder: Forwarder;
  /** Pod answers that mean "session lost" (--lost-session-statuses). */
  lostSessionStatuses: readonly number[];
  /** Largest relayed answer read (it is held whole before it goes to the client). */
  maxRelayBytes: number;
  /** Where a pin may point (--pin-allow). */
  allows?: (pod: string) => Promise<boolean>;
  /** Shared by all relays of this process (--relay-budget-bytes). */
  relayBudget?: ByteBudget;
  /** Plans the attempt again (recovery.ts), when the relay's pod lost the session meanwhile. */
  planRetry: (attempt: RetryAttempt, signal: AbortSignal) => Promise<RetryPlan>;
}

export class Relayer {
  constructor(private readonly o: RelayOptions) {}

  /**
   * Sends a relayed attempt to the pod its plan names, once, and returns that
   * pod's answer. If that pod answers a lost session (it restarted since the
   * session was recovered there, or since it proved it held it), the
   * session is recovered once more from that pin and the request relayed
   * where it then lives: one more relay at most. If that pod turns out to
   * hold the session after all, the answer it gave stands (it is not sent
   * there again); likewise after any proof that a pod holds the session.
   */
  async relay(req: RelayRequest, signal: AbortSignal): Promise<RelayOutcome> {
    // A stream cannot be relayed into one answer (its reconnect goes to the session's pod); off the MCP path a GET is a plain request.
    if (req.method === 'GET' && req.plan.why !== 'off-path') return { kind: 'reconnect' };
    const first = await this.relayOnce(req.plan.pin, req, signal);
    // The pod answers a lost session: it restarted since the session moved
    // there, or since it proved it held the session (A1: a session mcp-pin
    // can still recover is never reported gone to its client).
    const lostSince = this.saysLost(first, req.plan.why);
    if (!lostSince) return first;
    const again = await this.o.planRetry({ ...req.attempt, failedSessionId: req.plan.pin.backendSessionId }, signal);
    switch (again.kind) {
      case 'failed':
        return again;
      case 'unknown':
        return first;
      case 'relay':
      case 'send':
        // That pod holds the session after all: the answer it gave is its own (I1: no third send).
        if (again.kind === 'relay' && again.why === 'not-lost') return first;
        return this.stillRecoverable(await this.relayOnce(again.pin, req, signal));
    }
  }

  /** A relay's answer that says the pod does not hold the session (nothing ran there). */
  private saysLost(out: RelayOutcome, why: RelayPlan['why']): boolean {
    return (
      out.kind === 'answered' &&
      this.o.lostSessionStatuses.includes(out.status) &&
      (why === 'moved' || (why === 'not-lost' && saysSessionUnknown(out.status, out.body)))
    );
  }

  /**
   * The last relay's answer. Its pod, too, lost the session meanwhile (it
   * restarted while this request was relayed twice): the record still
   * stands, so the client must not read "session not found" (A1); it is
   * told to try again (nothing ran), and its next request recovers.
   */
  private stillRecoverable(out: RelayOutcome): RelayOutcome {
    return this.saysLost(out, 'moved') ? { kind: 'failed', code: 'MCP_PIN_RECOVERY_UNAVAILABLE' } : out;
  }

  /** One send to the session's pod under its backend id; failures say whether it may have run there (I2). */
  private async relayOnce(pin: Pin, req: RelayRequest, signal: AbortSignal): Promise<RelayOutcome> {
    if (!(await this.allowed(pin.pod))) return { kind: 'failed', code: 'MCP_PIN_RELAY_NOT_ALLOWED' };
    const budget = this.o.relayBudget;
    if (budget?.exhausted) return { kind: 'failed', code: 'MCP_PIN_RELAY_BUSY' };
    const lease = budget?.lease();
    const headers: HeaderPairs = [...endToEndHeaders(req.attempt.headers, new Set([SESSION_HEADER])), [SESSION_HEADER, pin.backendSessionId]];
    try {
      const res = await this.o.forwarder.send({
        method: req.method,
        path: req.attempt.path,
        headers,
        body: req.body,
        pod: pin.pod,
        signal,
        maxBodyBytes: this.o.maxRelayBytes,
        ...(lease ? { lease } : {}),
      });
      if (res.envoyReply !== undefined)
        return { kind: 'failed', code: envoyNeverConnected(res.envoyReply) ? 'MCP_PIN_RELAY_FAILED' : 'MCP_PIN_RELAY_MAY_HAVE_RUN' };
      return { kind: 'answered', status: res.status, headers: res.headers, body: res.body };
    } catch (err) {
      // Too large: the pod has run it; the client must not run it again.
      if (err instanceof ResponseTooLargeError) return { kind: 'failed', code: 'MCP_PIN_RELAY_TOO_LARGE' };
      if (neverSent(err)) return { kind: 'failed', code: 'MCP_PIN_RELAY_FAILED' };
      // A deadline, the client leaving, a broken connection: sent, so it may have run.
      return { kind: 'failed', code: 'MCP_PIN_RELAY_MAY_HAVE_RUN' };
    } finally {
      // The answer is handed on (copied into a gRPC frame) as soon as we return.
      lease?.release();
    }
  }

  private async allowed(pod: string): Promise<boolean> {
    return this.o.allows ? this.o.allows(pod) : true;
  }
}
