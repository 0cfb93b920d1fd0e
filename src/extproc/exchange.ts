/**
 * One client request as the public listener's ext_proc filter streams it to
 * mcp-pin: request headers, maybe the request body (a possible initialize),
 * then response headers where they are needed. Decides where the request
 * goes. A pinned request in the common case is one message: its session's
 * pod goes into the pin header and nothing more is asked for; a retry after
 * a lost session reaches mcp-pin as a separate attempt (attempt.ts).
 */
import type { Config } from '../config.js';
import { StoreError, ProtocolError } from '../errors.js';
import { sessionTag, type Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { MAX_INIT_PATH_LENGTH, type Pin, type SessionStore } from '../sessions/store.js';
import { firstHeader, type HeaderPairs, CLIENT_SESSION_HEADER, REDIRECTED_SESSION_HEADER, SESSION_HEADER, is2xx } from '../mcp-headers.js';
import { headerPairs } from './headers.js';
import { isInitializeRequest, isJsonContentType } from './mcp-body.js';
import type { StreamHandler } from './stream-handler.js';
import type { ProcessingRequest, ProcessingResponse, WireHttpBody, WireHttpHeaders } from './protocol.js';
import { errorResponse } from './error-responses.js';
import {
  continueRequestBody,
  continueRequestHeaders,
  continueRequestTrailers,
  continueResponseBody,
  continueResponseHeaders,
  continueResponseTrailers,
  HeaderReplies,
  type Mutation,
} from './responses.js';
import { isValidSessionId } from '../session-id.js';
import { onSessionPath } from '../session-path.js';
import type { RecentlyUnknown } from './recently-unknown.js';
import type { PinAllowlist } from '../pin-allowlist.js';
import { parsePodAddress } from '../pod-address.js';
import { isConnectFailure, upstreamReport } from './upstream.js';

export interface ExchangeDeps {
  store: SessionStore;
  /** Ids searched for and found on no pod, shared by this replica's exchanges; without it, none are remembered. */
  recentlyUnknown?: RecentlyUnknown;
  /** Where pins may point; default: anywhere. */
  allowlist?: PinAllowlist;
  cfg: Pick<Config, 'pinHeader' | 'maxInitBodyBytes' | 'maxSessionIdLength' | 'lostSessionStatuses'>;
  log: Logger;
  metrics: Metrics;
}

type Kind =
  /** Nothing to do: no session, not an initialize. */
  | 'passthrough'
  /** A POST without session id whose body may be an initialize. */
  | 'maybe-initialize'
  /** A request of a session the store knows. */
  | 'pinned'
  /** A session id the store does not know: the service route decides. */
  | 'unknown-session';

/**
 * What the exchange waits for next. Set where the decision is made (the
 * answer to request headers says which phases Envoy will still send), never
 * inferred from the mode overrides afterwards.
 */
type Phase = 'request-headers' | 'request-body' | 'response-headers' | 'done';

interface Decision {
  response: ProcessingResponse;
  next: Phase;
}

export class Exchange implements StreamHandler {
  private kind: Kind | undefined;
  private method = '';
  private clientSessionId: string | undefined;
  private pin: Pin | undefined;
  /** A DELETE's session MCP path (from the full record it reads). */
  private sessionPath: string | null = null;
  private isInitialize = false;
  private initBody: Buffer | null = null;
  private path = '';
  private phase: Phase = 'request-headers';
  /** Started again by Envoy after mcp-pin's redirect (attempt.ts): the session is named by the redirect, not by mcp-session-id. */
  private redirected = false;

  /**
   * True once Envoy will send nothing more on this stream (the response phase
   * was skipped or answered, or an immediate response ended the exchange):
   * the server then closes the stream itself rather than wait for Envoy to
   * reset it.
   */
  get complete(): boolean {
    return this.phase === 'done';
  }

  private readonly replies: HeaderReplies;

  constructor(private readonly deps: ExchangeDeps) {
    this.replies = HeaderReplies.for(deps.cfg.pinHeader);
  }

  /** Answers one message. Throws ProtocolError for messages that do not fit the exchange. */
  async handle(msg: ProcessingRequest): Promise<ProcessingResponse[]> {
    switch (msg.request) {
      case 'request_headers': {
        if (this.phase !== 'request-headers') throw new ProtocolError('request_headers received twice');
        const { response, next } = await this.onRequestHeaders(msg.request_headers);
        this.phase = next;
        return [response];
      }
      case 'request_body': {
        this.requireRequest('request_body');
        const response = this.onRequestBody(msg.request_body);
        if (this.phase === 'request-body') this.phase = 'response-headers';
        return [response];
      }
      case 'request_trailers':
        this.requireRequest('request_trailers');
        return [continueRequestTrailers()];
      case 'response_headers': {
        // A reply Envoy made before ext_proc saw the request (e.g. the buffer
        // filter's 413) reaches us with no request phase: nothing to decide.
        if (this.phase === 'request-headers') {
          this.kind = 'passthrough';
          this.phase = 'done';
          return [continueResponseHeaders()];
        }
        // Also when the body never came: Envoy answered before it was read.
        this.phase = 'done';
        return this.onResponseHeaders(msg);
      }
      case 'response_body':
        this.requireRequest('response_body');
        return [continueResponseBody()];
      case 'response_trailers':
        this.requireRequest('response_trailers');
        return [continueResponseTrailers()];
      default:
        throw new ProtocolError('ProcessingRequest carries no known phase');
    }
  }

  private requireRequest(phase: string): void {
    if (this.phase === 'request-headers') throw new ProtocolError(`${phase} received before request_headers`);
  }

  private async onRequestHeaders(h: WireHttpHeaders | undefined): Promise<Decision> {
    const { metrics } = this.deps;
    const pairs = headerPairs(h);
    this.method = firstHeader(pairs, ':method') ?? '';
    if (!this.method) throw new ProtocolError('request_headers without :method');
    this.path = firstHeader(pairs, ':path') ?? '';
    // The client's own pin (and client-session) header never reaches routing
    // or a pod: every answer below strips them (HeaderReplies).
    const sids = pairs.filter(([k]) => k === SESSION_HEADER);
    const sid = sids[0]?.[1];
    if (sids.length > 1 || sid?.includes(',')) {
      // Which session is meant? A pod would see them joined ("a, b"), answer
      // 404, and a retry would then recover a healthy session: refuse instead.
      this.kind = 'passthrough';
      metrics.outcome('ambiguous_session_id');
      return { response: errorResponse('MCP_PIN_AMBIGUOUS_SESSION_ID'), next: 'done' };
    }

    if (sid === undefined) {
      if (this.method === 'POST' && !h?.end_of_stream && isJsonContentType(firstHeader(pairs, 'content-type'))) {
        this.kind = 'maybe-initialize';
        return { response: this.replies.maybeInitialize, next: 'request-body' };
      }
      this.kind = 'passthrough';
      metrics.outcome('passthrough');
      return { response: this.replies.passthrough, next: 'done' };
    }

    // mcp-pin's own redirect names the client's session: the request's
    // mcp-session-id may be the backend id its failed attempt used.
    const redirectedSid = firstHeader(pairs, REDIRECTED_SESSION_HEADER);
    if (redirectedSid !== undefined) this.redirected = true;
    return this.forSession(redirectedSid ?? sid);
  }

  private async forSession(sid: string): Promise<Decision> {
    const { cfg, metrics } = this.deps;
    if (!isValidSessionId(sid, cfg.maxSessionIdLength)) {
      // No pod can hold it: answered here, never looked up, never searched for on the pods.
      this.kind = 'passthrough';
      metrics.outcome('invalid_session_id');
      return { response: errorResponse('MCP_PIN_INVALID_SESSION_ID'), next: 'done' };
    }

    this.clientSessionId = sid;
    let pin: Pin | null;
    // Which store call this is, as mcp_pin_store_errors_total{op} names it.
    const op = this.method === 'DELETE' || this.redirected ? 'load' : 'lookup';
    try {
      // A DELETE reads the shared store, not this replica's pin cache: a
      // stale cached pin would send it to a pod that no longer holds the
      // session, and the 404 there would end a session that lives elsewhere.
      // So does a redirected request: its session has just moved.
      if (this.method === 'DELETE' || this.redirected) {
        const rec = await this.deps.store.load(sid);
        this.sessionPath = rec?.initPath ?? null;
        pin = rec;
      } else pin = await this.deps.store.lookup(sid);
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 'MCP_PIN_STORE_CORRUPT')) {
        this.kind = 'passthrough';
        return { response: this.storeFailure(op, err), next: 'done' };
      }
      // The store dropped a record it could not use: find the session on the
      // pods as for any id the store does not know (and adopt it there).
      this.storeCorrupt(op, sid, err);
      pin = null;
    }
    const allowed = pin ? this.allowed(pin.pod) : true;
    if (pin && allowed !== true && !(await allowed)) {
      // A poisoned or stale entry: never route there. Drop it and let the
      // service route find the session (and re-adopt it from what Envoy reports).
      metrics.outcome('rejected_pin');
      this.deps.log.error({ session: sessionTag(sid), pod: pin.pod }, 'stored pin outside --pin-allow: dropped, not routed');
      // Not routed either way; a stale record left behind is checked again next time.
      await this.deps.store.removeIfGeneration(sid, pin.generation).catch(() => metrics.ignored('drop_poisoned_pin'));
      pin = null;
    }
    if (!pin && (this.deps.recentlyUnknown?.has(sid) || (await this.rememberedUnknown(sid)))) {
      // Searched for moments ago (by this replica or another) and found on no pod: not again.
      this.kind = 'passthrough';
      metrics.outcome('unknown_session_remembered');
      return { response: errorResponse('MCP_PIN_UNKNOWN_SESSION'), next: 'done' };
    }
    if (!pin) {
      // Response headers are still wanted: if a pod answers 2xx, the session
      // it holds is adopted (the store lost it: flushed, or restarted without
      // persistence).
      this.kind = 'unknown-session';
      metrics.outcome('unknown_session');
      const response = this.redirected
        ? continueRequestHeaders(
            { set: [[SESSION_HEADER, sid]], remove: [cfg.pinHeader, CLIENT_SESSION_HEADER, REDIRECTED_SESSION_HEADER] },
            { clearRouteCache: true },
          )
        : this.replies.unknownSession;
      return { response, next: 'response-headers' };
    }

    this.kind = 'pinned';
    this.pin = pin;
    metrics.outcome('pinned');
    // The response matters only to put the client's id back, or to forget a
    // deleted session. Everything else is one message: a lost session is
    // retried by Envoy and recovered on that attempt.
    if (pin.backendSessionId === sid && !this.redirected) {
      const needResponse = this.method === 'DELETE';
      return { response: this.replies.pinnedTo(pin.pod, needResponse), next: needResponse ? 'response-headers' : 'done' };
    }
    const needResponse = this.method === 'DELETE';
    const mode = needResponse ? { clearRouteCache: true } : { clearRouteCache: true, mode: { response_header_mode: 'SKIP' as const } };
    const next: Phase = needResponse ? 'response-headers' : 'done';
    if (pin.backendSessionId === sid) {
      // Redirected, under its own id: that id goes back on the request.
      return {
        response: continueRequestHeaders(
          {
            set: [
              [cfg.pinHeader, pin.pod],
              [SESSION_HEADER, sid],
            ],
            remove: [CLIENT_SESSION_HEADER, REDIRECTED_SESSION_HEADER],
          },
          mode,
        ),
        next,
      };
    }
    // The pod knows the session by its backend id. The client's own goes in
    // x-mcp-pin-client-session: a retry attempt finds the session by it, and
    // Envoy puts it back on the answer (the pinned routes'
    // response_headers_to_add), so the response needs no message here.
    const mutation: Mutation = {
      set: [
        [cfg.pinHeader, pin.pod],
        [SESSION_HEADER, pin.backendSessionId],
        [CLIENT_SESSION_HEADER, sid],
      ],
    };
    if (this.redirected) mutation.remove = [REDIRECTED_SESSION_HEADER];
    return { response: continueRequestHeaders(mutation, mode), next };
  }

  private onRequestBody(b: WireHttpBody | undefined): ProcessingResponse {
    const body = b?.body ?? Buffer.alloc(0);
    if (this.kind === 'maybe-initialize') {
      this.isInitialize = isInitializeRequest(body);
      // Copy: the decoded Buffer may be a view into a larger gRPC frame.
      if (this.isInitialize && body.length <= this.deps.cfg.maxInitBodyBytes) this.initBody = Buffer.from(body);
    }
    return continueRequestBody();
  }

  private async onResponseHeaders(msg: ProcessingRequest): Promise<ProcessingResponse[]> {
    const pairs = headerPairs(msg.response_headers);
    const status = Number(firstHeader(pairs, ':status') ?? 0);
    switch (this.kind) {
      case 'maybe-initialize':
        return [await this.afterInitialize(msg, pairs, status)];
      case 'pinned':
        // Both set together when the request was pinned (onRequestHeaders).
        if (this.clientSessionId === undefined || this.pin === undefined) throw new ProtocolError('response_headers of a pinned request without its pin');
        return [await this.afterPinned(msg, status, this.clientSessionId, this.pin)];
      case 'unknown-session':
        if (this.clientSessionId === undefined) throw new ProtocolError('response_headers of an unknown session without its id');
        return [await this.afterUnknownSession(msg, status, this.clientSessionId)];
      default:
        return [continueResponseHeaders()];
    }
  }

  private async afterInitialize(msg: ProcessingRequest, pairs: HeaderPairs, status: number): Promise<ProcessingResponse> {
    const { metrics, log } = this.deps;
    const sid = firstHeader(pairs, SESSION_HEADER);
    // Stateless servers (and newer MCP revisions) send no session id: nothing to pin.
    if (!this.isInitialize || !is2xx(status) || sid === undefined) return continueResponseHeaders();
    const reported = upstreamReport(msg).address;
    const pod = await this.allowedPod(reported);
    const validSessionId = isValidSessionId(sid, this.deps.cfg.maxSessionIdLength);
    if (!pod || !validSessionId) {
      // Without the real pod address the session could not be routed later:
      // fail this initialize loudly rather than hand out a session that breaks.
      metrics.outcome('initialize_unrecorded');
      log.error(
        { reported, validSessionId },
        'initialize not pinned: Envoy reported no usable upstream.address (check response_attributes and --pin-allow) or the session id is invalid',
      );
      return errorResponse('MCP_PIN_NO_UPSTREAM_ADDRESS');
    }
    let created: boolean;
    try {
      created = await this.deps.store.create(sid, { pod, backendSessionId: sid, initBody: this.initBody, initPath: this.keptPath() });
    } catch (err) {
      // The client must not get a session that no replica can route.
      return this.storeFailure('create', err);
    }
    if (!created) {
      // Another session holds this id: its pin stays. The pod is buggy or
      // compromised (ids are random); this client gets no session.
      metrics.outcome('session_id_taken');
      log.error({ session: sessionTag(sid), pod }, 'initialize answered with a session id already pinned: refused, the existing session keeps its pin');
      return errorResponse('MCP_PIN_SESSION_ID_TAKEN');
    }
    metrics.outcome('initialize_recorded');
    log.info({ session: sessionTag(sid), pod, initBodyKept: this.initBody !== null }, 'pin recorded');
    return continueResponseHeaders();
  }

  private async afterPinned(msg: ProcessingRequest, status: number, sid: string, pin: Pin): Promise<ProcessingResponse> {
    const { cfg, log, metrics } = this.deps;
    // The client only ever sees its own session id.
    const rewrite = pin.backendSessionId !== sid ? { overwrite: [[SESSION_HEADER, sid]] as [string, string][] } : undefined;
    if (this.method === 'DELETE') {
      const lost = cfg.lostSessionStatuses.includes(status) || isConnectFailure(status, upstreamReport(msg));
      // The end of the session only at its MCP path (a DELETE of /typo is the
      // pod's router answering); where that path is not known, only a 2xx.
      const onPath = onSessionPath(this.path, this.sessionPath);
      if (onPath === true ? is2xx(status) || lost : onPath === undefined && is2xx(status)) {
        try {
          // Only the pin this DELETE went to: a newer one (another replica
          // recovered the session meanwhile) stays.
          if (await this.deps.store.removeIfGeneration(sid, pin.generation)) {
            metrics.outcome('session_deleted');
            log.info({ session: sessionTag(sid), status }, 'session forgotten');
          }
        } catch (err) {
          // The pin expires by its TTL; the DELETE itself went through.
          metrics.ignored('forget_deleted_session');
          if (err instanceof StoreError) metrics.storeErrors.inc({ op: 'remove', code: err.code });
          log.warn({ session: sessionTag(sid), err: (err as Error).message }, 'could not forget deleted session');
        }
      }
    }
    return continueResponseHeaders(rewrite);
  }

  /** Remembered by another replica (through the store); a store that cannot say is no reason to refuse: the search then runs. */
  private async rememberedUnknown(sid: string): Promise<boolean> {
    const local = this.deps.recentlyUnknown;
    if (!local || local.ttlMs <= 0) return false;
    const known = await this.deps.store.isRememberedUnknown(sid).catch(() => {
      this.deps.metrics.ignored('check_unknown_session');
      return false;
    });
    // Seen once from the store, kept here too: a burst of repeats asks the store once.
    if (known) local.remember(sid);
    return known;
  }

  /** Whether pins may point at `pod`: an allowed pod is answered at once (no await on the hot path); only a miss may wait for a DNS refresh. */
  private allowed(pod: string): boolean | Promise<boolean> {
    const a = this.deps.allowlist;
    return !a || a.allows(pod) || a.allowsFresh(pod);
  }

  /** The pod Envoy reported, if it is a usable address that pins may point to. */
  private async allowedPod(reported: string | undefined): Promise<string | null> {
    const pod = parsePodAddress(reported);
    return pod && (await this.allowed(pod)) ? pod : null;
  }

  /** A pod answered 2xx for a session the store did not know: it holds it, so pin it there. */
  private async afterUnknownSession(msg: ProcessingRequest, status: number, sid: string): Promise<ProcessingResponse> {
    // The search ended in "no such session" (a lost-session status: Envoy
    // retries other pods on it first, and mcp-pin ends it with 404 once every
    // pod was asked): remember that, so repeats cost no pod a request.
    if (this.deps.cfg.lostSessionStatuses.includes(status) && this.deps.recentlyUnknown) {
      this.deps.recentlyUnknown.remember(sid);
      // And for every replica: the store keeps it as long.
      const ttl = this.deps.recentlyUnknown.ttlMs;
      if (ttl > 0) await this.deps.store.rememberUnknown(sid, ttl).catch(() => this.deps.metrics.ignored('remember_unknown_session'));
    }
    if (!is2xx(status) || this.method === 'DELETE') return continueResponseHeaders();
    // Proof that the pod holds this session: it names it in its answer (the
    // SDK servers do on every response to a request). A 2xx alone is not: a
    // server that ignores session ids answers 2xx to any made-up id, and each
    // would become a stored pin.
    if (firstHeader(headerPairs(msg.response_headers), SESSION_HEADER) !== sid) {
      this.deps.metrics.outcome('adoption_unproven');
      return continueResponseHeaders();
    }
    const pod = await this.allowedPod(upstreamReport(msg).address);
    if (!pod) return continueResponseHeaders();
    try {
      // The path it was found on is its MCP path (a pod answered 2xx there, naming the session).
      if (await this.deps.store.adopt(sid, pod, this.keptPath())) {
        this.deps.metrics.outcome('adopted');
        this.deps.log.info({ session: sessionTag(sid), pod }, 'pin adopted from a pod that holds the session');
      }
    } catch (err) {
      // The answer itself is fine; the next request will try again.
      this.deps.metrics.ignored('adopt_session');
      if (err instanceof StoreError) this.deps.metrics.storeErrors.inc({ op: 'adopt', code: err.code });
      this.deps.log.warn({ session: sessionTag(sid), err: (err as Error).message }, 'could not adopt session');
    }
    return continueResponseHeaders();
  }

  /** The request's path as a session's MCP path is stored: a path too long to keep is not kept. */
  private keptPath(): string | null {
    return this.path.length <= MAX_INIT_PATH_LENGTH ? this.path : null;
  }

  private storeCorrupt(op: string, sid: string, err: StoreError): void {
    this.deps.metrics.storeErrors.inc({ op, code: err.code });
    this.deps.metrics.outcome('corrupt_record');
    this.deps.log.error(
      { op, code: err.code, session: sessionTag(sid), err: err.message },
      'session record unreadable: dropped; the session is searched for on the pods',
    );
  }

  private storeFailure(op: string, err: unknown): ProcessingResponse {
    const code = err instanceof StoreError ? err.code : 'MCP_PIN_STORE_UNAVAILABLE';
    this.deps.metrics.storeErrors.inc({ op, code });
    this.deps.metrics.outcome('store_error');
    this.deps.log.error({ op, code, err: (err as Error).message }, 'session store failed');
    return errorResponse(code);
  }
}
