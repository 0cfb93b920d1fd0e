/**
 * A request that sets per-session server state (resources/subscribe,
 * resources/unsubscribe, logging/setLevel: session-state.ts), as the public
 * listener's session-state ext_proc filter streams it. Envoy's MCP filter
 * names the method, and only the route for these methods runs this filter:
 * every other pinned request stays one message without a body. Request
 * headers (whose session), the body (which change), the answer's headers
 * and body (did the pod accept it); a change the pod accepted is stored with
 * the session, which a recovery replays on the new pod.
 *
 * Recording never stands in the request's way: whatever happens here, the
 * client gets the pod's answer unchanged.
 */
import { ProtocolError, StoreError } from '../errors.js';
import { sessionTag, type Logger } from '../log.js';
import { SESSION_HEADER, clientSessionIdOf, is2xx, firstHeader, type HeaderPairs } from '../mcp-headers.js';
import type { Metrics } from '../metrics.js';
import { answerTo, parseStateRequest, type StateChange } from '../session-state.js';
import type { StateCatchUp } from '../recovery/http-recoverer.js';
import type { SessionStore } from '../sessions/store.js';
import { headerPairs } from './headers.js';
import type { StreamHandler } from './stream-handler.js';
import type { ProcessingRequest, ProcessingResponse } from './protocol.js';
import {
  continueRequestBody,
  continueRequestHeaders,
  continueRequestTrailers,
  continueResponseBody,
  continueResponseHeaders,
  continueResponseTrailers,
} from './responses.js';

export interface StateRecorderDeps {
  store: SessionStore;
  log: Logger;
  metrics: Metrics;
  /** Carries a kept change to where the session moved meanwhile (without it, the next recovery does). */
  recoverer?: StateCatchUp;
}

type Step =
  | { phase: 'request-headers' }
  | { phase: 'request-body'; clientSessionId: string | undefined; sent: Sent }
  | { phase: 'response-headers'; clientSessionId: string | undefined; sent: Sent; request: { id: string | number; change: StateChange } | undefined }
  | { phase: 'response-body'; clientSessionId: string; sent: Sent; request: { id: string | number; change: StateChange }; contentType: string | undefined }
  | { phase: 'done' };

const SKIP_BODY = { mode: { response_body_mode: 'NONE' as const } };

/** How the request went to its pod: under which backend session id, with which headers (for a catch-up). */
interface Sent {
  backendSessionId: string | undefined;
  headers: HeaderPairs;
}

export class StateRecorder implements StreamHandler {
  private step: Step = { phase: 'request-headers' };

  constructor(private readonly deps: StateRecorderDeps) {}

  get complete(): boolean {
    return this.step.phase === 'done';
  }

  async handle(msg: ProcessingRequest): Promise<ProcessingResponse[]> {
    const step = this.step;
    switch (msg.request) {
      case 'request_headers': {
        if (step.phase !== 'request-headers') break;
        const pairs = headerPairs(msg.request_headers);
        // The client's own id: mcp-pin's downstream filter put it here when the pod knows the session by another.
        const clientSessionId = clientSessionIdOf(pairs);
        this.step = { phase: 'request-body', clientSessionId, sent: { backendSessionId: firstHeader(pairs, SESSION_HEADER), headers: pairs } };
        return [continueRequestHeaders()];
      }
      case 'request_body':
        if (step.phase !== 'request-body') break;
        this.step = {
          phase: 'response-headers',
          clientSessionId: step.clientSessionId,
          sent: step.sent,
          request: parseStateRequest(msg.request_body?.body ?? Buffer.alloc(0)),
        };
        return [continueRequestBody()];
      case 'request_trailers':
        return [continueRequestTrailers()];
      case 'response_headers': {
        if (step.phase !== 'response-headers' && step.phase !== 'request-body') break;
        const pairs = headerPairs(msg.response_headers);
        const status = Number(firstHeader(pairs, ':status') ?? 0);
        const request = step.phase === 'response-headers' ? step.request : undefined;
        if (!request || !step.clientSessionId || !is2xx(status)) {
          // Nothing to keep (not a state request mcp-pin understands, or refused outright).
          if (request && step.clientSessionId) this.deps.metrics.sessionState.inc({ result: 'refused' });
          this.step = { phase: 'done' };
          return [{ ...continueResponseHeaders(), mode_override: SKIP_BODY.mode }];
        }
        this.step = {
          phase: 'response-body',
          clientSessionId: step.clientSessionId,
          sent: step.sent,
          request,
          contentType: firstHeader(pairs, 'content-type'),
        };
        return [continueResponseHeaders()];
      }
      case 'response_body': {
        if (step.phase !== 'response-body') break;
        this.step = { phase: 'done' };
        await this.record(step.clientSessionId, step.request, msg.response_body?.body ?? Buffer.alloc(0), step.contentType, step.sent);
        return [continueResponseBody()];
      }
      case 'response_trailers':
        return [continueResponseTrailers()];
      default:
        break;
    }
    throw new ProtocolError(`${msg.request ?? 'no phase'} not expected in a session-state request's ${step.phase} phase`);
  }

  /** Stores the change if the pod's answer accepted it; never fails the request. */
  private async record(
    clientSessionId: string,
    request: { id: string | number; change: StateChange },
    body: Buffer,
    contentType: string | undefined,
    sent: Sent,
  ): Promise<void> {
    const { store, log, metrics } = this.deps;
    const tag = sessionTag(clientSessionId);
    if (answerTo(request.id, body, contentType) !== 'accepted') {
      metrics.sessionState.inc({ result: 'refused' });
      return;
    }
    try {
      const result = await store.changeState(clientSessionId, request.change);
      metrics.sessionState.inc({ result });
      if (result === 'over_limit')
        log.warn({ session: tag, op: request.change.op }, 'session state over its bounds: this change is not kept, and a recovery will not restore it');
      // The session may have moved while the pod answered (it died, and a
      // recovery that ran meanwhile did not see this change yet).
      if (result === 'kept' && sent.backendSessionId && this.deps.recoverer) {
        const caught = await this.deps.recoverer.catchUpState(clientSessionId, sent.backendSessionId, request.change, sent.headers);
        if (caught !== 'current')
          log.info({ session: tag, op: request.change.op, result: caught }, 'a change of session state reached the pod the session moved to meanwhile');
      }
    } catch (err) {
      metrics.sessionState.inc({ result: 'store_error' });
      if (err instanceof StoreError) metrics.storeErrors.inc({ op: 'change_state', code: err.code });
      log.warn(
        { session: tag, op: request.change.op, err: (err as Error).message },
        'could not keep a change of session state: a recovery will not restore it',
      );
    }
  }
}
