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
import { CLIENT_SESSION_HEADER, SESSION_HEADER } from '../mcp-headers.js';
import type { Metrics } from '../metrics.js';
import type { Recoverer } from '../recovery/http-recoverer.js';
import type { RetryPlan } from '../recovery/recovery.js';
import { errorResponse } from './error-responses.js';
import { firstHeader, headerPairs } from './headers.js';
import type { ProcessingRequest, ProcessingResponse } from './protocol.js';
import { continueRequestHeaders, continueResponseHeaders, extendMessageTimeout, type Mutation } from './responses.js';
import { isValidSessionId } from './session-id.js';
import { parsePodAddress, upstreamReport } from './upstream.js';

export interface AttemptDeps {
  cfg: { pinHeader: string; maxSessionIdLength: number; lostSessionStatuses: number[] };
  log: Logger;
  metrics: Metrics;
  recoverer: Recoverer;
}

/**
 * The id a redirected attempt carries: no pod holds it, so the pod answers
 * 404 and Envoy's next attempt goes where the session now lives.
 */
export const REDIRECT_SESSION_ID = 'mcp-pin-moved';

const SKIP_RESPONSE = { mode: { response_header_mode: 'SKIP' as const } };

export class AttemptExchange {
  private phase: 'request' | 'response' | 'done' = 'request';
  private clientSessionId: string | undefined;
  private plan: RetryPlan | undefined;

  /**
   * @param sendInterim writes a message ahead of the answer to the current
   * one (extends Envoy's message timeout before a recovery).
   * @param cancelled aborts when Envoy gives up on the stream.
   */
  constructor(
    private readonly deps: AttemptDeps,
    private readonly sendInterim: (r: ProcessingResponse) => void,
    private readonly cancelled: AbortSignal,
  ) {}

  get complete(): boolean {
    return this.phase === 'done';
  }

  async handle(msg: ProcessingRequest): Promise<ProcessingResponse[]> {
    if (msg.request === 'request_headers' && this.phase === 'request') return [await this.onRequestHeaders(msg)];
    if (msg.request === 'response_headers' && this.phase === 'response') {
      this.phase = 'done';
      return [this.onResponseHeaders(msg)];
    }
    throw new ProtocolError(`${msg.request ?? 'no phase'} not expected in a retry attempt's ${this.phase} phase`);
  }

  private async onRequestHeaders(msg: ProcessingRequest): Promise<ProcessingResponse> {
    const { cfg, log, metrics, recoverer } = this.deps;
    const pairs = headerPairs(msg.request_headers);
    const failedSessionId = firstHeader(pairs, SESSION_HEADER);
    const clientSessionId = firstHeader(pairs, CLIENT_SESSION_HEADER) ?? failedSessionId;
    const pod = parsePodAddress(upstreamReport(msg).address);
    const valid = (id: string | undefined): id is string => id !== undefined && isValidSessionId(id, cfg.maxSessionIdLength);
    if (!valid(clientSessionId) || !valid(failedSessionId) || !pod) {
      // Nothing mcp-pin can plan: the attempt goes as Envoy built it.
      log.warn({ pod: pod ?? 'unknown' }, 'retry attempt without a usable session id or pod: sent untouched');
      this.phase = 'done';
      return continueRequestHeaders(undefined, SKIP_RESPONSE);
    }
    this.clientSessionId = clientSessionId;
    // A re-initialize may take longer than Envoy's message timeout.
    this.sendInterim(extendMessageTimeout(recoverer.timeoutMs));
    const path = firstHeader(pairs, ':path') ?? '/';
    const outcome = await recoverer.planRetry({ clientSessionId, failedSessionId, pod, path, headers: pairs }, this.cancelled);
    const tag = sessionTag(clientSessionId);
    switch (outcome.kind) {
      case 'failed':
        this.phase = 'done';
        return errorResponse(outcome.code);
      case 'unknown':
        // Deleted or expired meanwhile: the pod answers as it would without mcp-pin.
        this.phase = 'done';
        return continueRequestHeaders(undefined, SKIP_RESPONSE);
      case 'send': {
        this.plan = outcome;
        this.phase = 'response';
        log.info({ session: tag, pod, reinitialized: outcome.reinitialized }, 'retry sent to the recovered session');
        return continueRequestHeaders(this.sessionMutation(outcome.pin.backendSessionId));
      }
      case 'redirect': {
        this.plan = outcome;
        this.phase = 'response';
        metrics.outcome('redirected');
        log.info({ session: tag, pod, to: outcome.pin.pod }, 'session lives on another pod: next attempt goes there');
        const m = this.sessionMutation(REDIRECT_SESSION_ID);
        m.set!.push([cfg.pinHeader, outcome.pin.pod]);
        return continueRequestHeaders(m);
      }
    }
  }

  /** This attempt goes under `sessionId`; later attempts still know the client's. */
  private sessionMutation(sessionId: string): Mutation {
    return { set: [[SESSION_HEADER, sessionId], [CLIENT_SESSION_HEADER, this.clientSessionId!]] };
  }

  private onResponseHeaders(msg: ProcessingRequest): ProcessingResponse {
    const status = Number(firstHeader(headerPairs(msg.response_headers), ':status') ?? 0);
    if (this.plan?.kind === 'send' && !this.deps.cfg.lostSessionStatuses.includes(status)) {
      this.deps.metrics.outcome('recovered');
    }
    // The client only ever sees its own session id.
    return continueResponseHeaders({ overwrite: [[SESSION_HEADER, this.clientSessionId!]] });
  }
}
