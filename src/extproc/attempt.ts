/**
 * A retry attempt of a pinned request, as the pinned cluster's upstream
 * ext_proc filter streams it to mcp-pin (attempt 2 and later only; the
 * composite filter skips the first). The attempt before it failed with a
 * lost-session status or a connect failure; this one is about to go to the
 * pod in the `upstream.address` attribute. mcp-pin plans it with recovery
 * and rewrites the session id both ways; Envoy sends the request, with its
 * body, and streams the answer to the client.
 */
import { ProtocolError } from '../errors.js';
import { sessionTag, type Logger } from '../log.js';
import { CLIENT_SESSION_HEADER, REDIRECTED_SESSION_HEADER, SESSION_HEADER, clientSessionIdOf, firstHeader, type HeaderPairs } from '../mcp-headers.js';
import { countsAsRecovered, type Metrics } from '../metrics.js';
import type { Recoverer } from '../recovery/http-recoverer.js';
import type { RelayRequest, RetryAttempt, RetryPlan } from '../recovery/plans.js';
import { clientResponseHeaders } from '../header-rules.js';
import { errorResponse } from './error-responses.js';
import { headerPairs } from './headers.js';
import type { StreamHandler } from './stream-handler.js';
import type { ProcessingRequest, ProcessingResponse } from './protocol.js';
import { continueRequestHeaders, continueResponseHeaders, extendMessageTimeout, immediate, type Mutation } from './responses.js';
import { isValidSessionId } from '../session-id.js';
import { parsePodAddress } from '../pod-address.js';
import { upstreamReport } from './upstream.js';

export interface AttemptDeps {
  cfg: { pinHeader: string; maxSessionIdLength: number; lostSessionStatuses: number[] };
  log: Logger;
  metrics: Metrics;
  recoverer: Recoverer;
}

/** Set by Envoy on a request it started again after an internal redirect (Envoy drops a client's own). */
export const ORIGINAL_URL_HEADER = 'x-envoy-original-url';

/**
 * Where Envoy starts a request again when mcp-pin turns its retry's answer
 * into a redirect: the same URL (the pinned routes' internal_redirect_policy
 * follows a 308 once per request and copies REDIRECTED_SESSION_HEADER into
 * the new request). Undefined when Envoy would not follow it: the request
 * was started again already, or no URL can be built.
 */
export function redirectLocation(pairs: HeaderPairs): string | undefined {
  const authority = firstHeader(pairs, ':authority');
  const path = firstHeader(pairs, ':path');
  if (firstHeader(pairs, ORIGINAL_URL_HEADER) !== undefined || !authority || !path?.startsWith('/')) return undefined;
  const scheme = firstHeader(pairs, 'x-forwarded-proto') === 'https' ? 'https' : 'http';
  return `${scheme}://${authority}${path}`;
}

const SKIP_RESPONSE = { mode: { response_header_mode: 'SKIP' as const } };

type SentPlan = Extract<RetryPlan, { kind: 'send' }>;

/**
 * Where an attempt's stream is, and what it knows there. `location`: where
 * Envoy would start the request again (undefined: it would not).
 */
type Step =
  | { phase: 'request' }
  /** Relayed by mcp-pin: waiting for the body to relay. */
  | { phase: 'body'; clientSessionId: string; relayed: Omit<RelayRequest, 'body'> }
  /** Sent on (under the plan's backend id), or on to a pod whose refusal becomes a redirect: waiting for the pod's answer. */
  | {
      phase: 'response';
      clientSessionId: string;
      location: string | undefined;
      awaiting: { kind: 'sent'; plan: SentPlan } | { kind: 'refusal'; location: string };
    }
  | { phase: 'done' };

export class AttemptExchange implements StreamHandler {
  private step: Step = { phase: 'request' };

  /**
   * @param sendInterim writes a message ahead of the answer to the current
   * one (extends Envoy's message timeout before recovery work).
   * @param cancelled aborts when Envoy gives up on the stream.
   */
  constructor(
    private readonly deps: AttemptDeps,
    private readonly sendInterim: (r: ProcessingResponse) => void,
    private readonly cancelled: AbortSignal,
  ) {}

  get complete(): boolean {
    return this.step.phase === 'done';
  }

  async handle(msg: ProcessingRequest): Promise<ProcessingResponse[]> {
    const step = this.step;
    if (msg.request === 'request_headers' && step.phase === 'request') return [await this.onRequestHeaders(msg)];
    if (msg.request === 'request_body' && step.phase === 'body') {
      this.step = { phase: 'done' };
      // Copy: the decoded Buffer may be a view into a larger gRPC frame.
      return [await this.relay(step.clientSessionId, step.relayed, Buffer.from(msg.request_body?.body ?? Buffer.alloc(0)), this.boundedMessage())];
    }
    if (msg.request === 'response_headers' && step.phase === 'response') {
      this.step = { phase: 'done' };
      return [this.onResponseHeaders(step, msg)];
    }
    throw new ProtocolError(`${msg.request ?? 'no phase'} not expected in a retry attempt's ${step.phase} phase`);
  }

  /**
   * Work done while Envoy waits for the answer to the current message: Envoy
   * is told to wait longer than the work's own bound, so that the work ends
   * first and says what happened (a relay that may have run is never cut by
   * Envoy's bare timeout).
   */
  private boundedMessage(): AbortSignal {
    this.sendInterim(extendMessageTimeout(this.deps.recoverer.messageTimeoutMs));
    return this.deps.recoverer.deadline(this.cancelled);
  }

  private async onRequestHeaders(msg: ProcessingRequest): Promise<ProcessingResponse> {
    const { cfg, log, recoverer } = this.deps;
    const pairs = headerPairs(msg.request_headers);
    const failedSessionId = firstHeader(pairs, SESSION_HEADER);
    const clientSessionId = clientSessionIdOf(pairs);
    const pod = parsePodAddress(upstreamReport(msg).address);
    const valid = (id: string | undefined): id is string => id !== undefined && isValidSessionId(id, cfg.maxSessionIdLength);
    if (!valid(clientSessionId) || !valid(failedSessionId) || !pod) {
      // Nothing mcp-pin can plan: the attempt goes as Envoy built it.
      log.warn({ pod: pod ?? 'unknown' }, 'retry attempt without a usable session id or pod: sent untouched');
      this.step = { phase: 'done' };
      return continueRequestHeaders(undefined, SKIP_RESPONSE);
    }
    const location = redirectLocation(pairs);
    const signal = this.boundedMessage();
    const attempt: RetryAttempt = { clientSessionId, failedSessionId, pod, path: firstHeader(pairs, ':path') ?? '/', headers: pairs };
    const plan = await recoverer.planRetry(attempt, signal);
    switch (plan.kind) {
      case 'failed':
        this.step = { phase: 'done' };
        return errorResponse(plan.code);
      case 'unknown':
        // Deleted or expired meanwhile: the pod answers as it would without mcp-pin.
        this.step = { phase: 'done' };
        return continueRequestHeaders(undefined, SKIP_RESPONSE);
      case 'send':
        this.step = { phase: 'response', clientSessionId, location, awaiting: { kind: 'sent', plan } };
        log.info({ session: sessionTag(clientSessionId), pod, reinitialized: plan.reinitialized }, 'retry sent to the recovered session');
        return continueRequestHeaders(sessionMutation(clientSessionId, plan.pin.backendSessionId));
      case 'relay': {
        // Envoy keeps the retry's hosts fixed (override_host reads the pin
        // header once per request). A session that moved to another pod:
        // the attempt goes on to this pod, which does not hold the session
        // and refuses it (a lost-session status: nothing ran), and that
        // answer becomes a redirect Envoy follows itself: the request starts
        // again and its pinned route goes where the session lives. Nothing of
        // this attempt is left open under a long call, and its answer streams.
        if (plan.why === 'moved' && location !== undefined) {
          this.step = { phase: 'response', clientSessionId, location, awaiting: { kind: 'refusal', location } };
          log.info({ session: sessionTag(clientSessionId), pod, to: plan.pin.pod, method: firstHeader(pairs, ':method') }, "redirecting to the session's pod");
          return continueRequestHeaders();
        }
        // Otherwise (its pod's own quick answer, or a request Envoy already
        // started again once) mcp-pin sends it to the plan's pod itself.
        log.info({ session: sessionTag(clientSessionId), pod, to: plan.pin.pod, why: plan.why }, "relaying the request to the session's pod");
        const relayed = { plan, attempt, method: firstHeader(pairs, ':method') ?? 'POST' };
        if (msg.request_headers?.end_of_stream) {
          this.step = { phase: 'done' };
          return this.relay(clientSessionId, relayed, null, signal);
        }
        this.step = { phase: 'body', clientSessionId, relayed };
        return continueRequestHeaders(undefined, { mode: { request_body_mode: 'BUFFERED' } });
      }
    }
  }

  /** Answers with what the session's pod said, or with the error recovery reports. */
  private async relay(clientSessionId: string, relayed: Omit<RelayRequest, 'body'>, body: Buffer | null, signal: AbortSignal): Promise<ProcessingResponse> {
    const out = await this.deps.recoverer.relay({ ...relayed, body }, signal);
    switch (out.kind) {
      case 'failed':
        return errorResponse(out.code);
      case 'reconnect':
        return immediate(
          200,
          [
            ['content-type', 'text/event-stream'],
            ['cache-control', 'no-cache'],
            [SESSION_HEADER, clientSessionId],
          ],
          Buffer.alloc(0),
          'mcp_pin_relayed_reconnect',
        );
      case 'answered':
        return immediate(out.status, clientResponseHeaders(out.headers, clientSessionId), out.body, 'mcp_pin_relayed');
    }
  }

  /** This attempt's answer (a refusal: nothing ran) turned into the 308 Envoy follows itself. */
  private redirect(clientSessionId: string, location: string): ProcessingResponse {
    this.deps.metrics.outcome('redirected');
    return continueResponseHeaders({
      set: [
        [':status', '308'],
        ['location', location],
        [REDIRECTED_SESSION_HEADER, clientSessionId],
      ],
      remove: [SESSION_HEADER],
    });
  }

  private onResponseHeaders(step: Extract<Step, { phase: 'response' }>, msg: ProcessingRequest): ProcessingResponse {
    const { cfg, log, metrics } = this.deps;
    const { clientSessionId, awaiting } = step;
    const status = Number(firstHeader(headerPairs(msg.response_headers), ':status') ?? 0);
    const lost = cfg.lostSessionStatuses.includes(status);
    if (awaiting.kind === 'refusal') {
      // This pod never held the session (its id is another pod's), so it ran
      // nothing: its lost-session status, or the 5xx of a pod that is
      // overloaded or failing, is a refusal, and the request goes where the
      // session lives. (Left standing, a 5xx would fail a healthy session.)
      if (lost || status >= 500) return this.redirect(clientSessionId, awaiting.location);
      // Any other answer is its own, and nothing is sent again.
      log.warn(
        { session: sessionTag(clientSessionId), status },
        'a pod answered a request of a session it does not hold with something other than a refusal: its answer stands',
      );
    } else if (awaiting.plan.onPath && status !== 400 && lost) {
      // The pod the plan counted on does not hold the session after all (it
      // restarted since another request recovered the session there). Its
      // "session not found" must not reach the client while the session can
      // be recovered (A1): Envoy starts the request again (a recovery then
      // runs from the stored pin), or, where it would not follow a second
      // redirect, the client is told to try again. (A 400 is left as it is:
      // only its body, not seen here, would say whether it means that.)
      log.warn({ session: sessionTag(clientSessionId), status }, "the session's pod no longer holds it: the request starts again");
      if (step.location !== undefined) return this.redirect(clientSessionId, step.location);
      return errorResponse('MCP_PIN_RECOVERY_UNAVAILABLE');
    } else if (countsAsRecovered(status, cfg.lostSessionStatuses)) {
      metrics.outcome('recovered');
    }
    // The client only ever sees its own session id.
    return continueResponseHeaders({ overwrite: [[SESSION_HEADER, clientSessionId]] });
  }
}

/** This attempt goes under `sessionId`; later attempts still know the client's. */
function sessionMutation(clientSessionId: string, sessionId: string): Mutation {
  return {
    set: [
      [SESSION_HEADER, sessionId],
      [CLIENT_SESSION_HEADER, clientSessionId],
    ],
  };
}
