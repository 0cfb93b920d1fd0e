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
  WITH_RESPONSE,
  WITHOUT_RESPONSE,
  continueRequestTrailers,
  continueResponseBody,
  continueResponseHeaders,
  continueResponseTrailers,
  HeaderReplies,
  type Mutation,
} from './responses.js';
import { isValidSessionId } from '../session-id.js';
import { onSessionPath } from '../session-path.js';
import { type RecentlyUnknown, unknownKey } from './recently-unknown.js';
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

/**
 * Where the exchange is, and exactly what the next message needs from the
 * messages before. Set where the decision is made (the answer to request
 * headers says which phases Envoy will still send), never inferred from the
 * mode overrides afterwards.
 */
type State =
  /** Nothing seen yet. */
  | { phase: 'request-headers' }
  /** A POST without session id whose body may be an initialize. */
  | { phase: 'request-body'; kind: 'maybe-initialize'; path: string }
  /** Its body read: whether it was an initialize, and the body kept for recoveries. */
  | { phase: 'response-headers'; kind: 'maybe-initialize'; path: string; isInitialize: boolean; initBody: Buffer | null }
  /** A DELETE of a pinned session (the only pinned request whose answer mcp-pin reads): forgotten when it ended the session. */
  | { phase: 'response-headers'; kind: 'delete'; path: string; clientSessionId: string; pin: Pin; sessionPath: string | null }
  /** A session id the store does not know: the service route decides, a pod's answer may prove where it lives. */
  | { phase: 'response-headers'; kind: 'unknown-session'; path: string; method: string; clientSessionId: string }
  /** Envoy sends nothing more that mcp-pin acts on. */
  | { phase: 'done' };

type Decision = { response: ProcessingResponse; next: State };
const DONE: State = { phase: 'done' };

export class Exchange implements StreamHandler {
  private state: State = { phase: 'request-headers' };

  /**
   * True once Envoy will send nothing more on this stream (the response phase
   * was skipped or answered, or an immediate response ended the exchange):
   * the server then closes the stream itself rather than wait for Envoy to
   * reset it.
   */
  get complete(): boolean {
    return this.state.phase === 'done';
  }

  private readonly replies: HeaderReplies;

  constructor(private readonly deps: ExchangeDeps) {
    this.replies = HeaderReplies.for(deps.cfg.pinHeader);
  }

  /** Answers one message. Throws ProtocolError for messages that do not fit the exchange. */
  async handle(msg: ProcessingRequest): Promise<ProcessingResponse[]> {
    switch (msg.request) {
      case 'request_headers': {
        if (this.state.phase !== 'request-headers') throw new ProtocolError('request_headers received twice');
        const { response, next } = await this.onRequestHeaders(msg.request_headers);
        this.state = next;
        return [response];
      }
      case 'request_body':
        this.requireRequest('request_body');
        this.onRequestBody(msg.request_body);
        return [continueRequestBody()];
      case 'request_trailers':
        this.requireRequest('request_trailers');
        return [continueRequestTrailers()];
      case 'response_headers': {
        // A reply Envoy made before ext_proc saw the request (e.g. the buffer
        // filter's 413) reaches us with no request phase: nothing to decide.
        const state = this.state;
        this.state = DONE;
        if (state.phase === 'request-headers') return [continueResponseHeaders()];
        // Also when the body never came: Envoy answered before it was read.
        return [await this.onResponseHeaders(state, msg)];
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
    if (this.state.phase === 'request-headers') throw new ProtocolError(`${phase} received before request_headers`);
  }

  private async onRequestHeaders(h: WireHttpHeaders | undefined): Promise<Decision> {
    const { metrics } = this.deps;
    const pairs = headerPairs(h);
    const method = firstHeader(pairs, ':method') ?? '';
    if (!method) throw new ProtocolError('request_headers without :method');
    const path = firstHeader(pairs, ':path') ?? '';
    // The client's own pin (and client-session) header never reaches routing
    // or a pod: every answer below strips them (HeaderReplies).
    const sids = pairs.filter(([k]) => k === SESSION_HEADER);
    const sid = sids[0]?.[1];
    if (sids.length > 1 || sid?.includes(',')) {
      // Which session is meant? A pod would see them joined ("a, b"), answer
      // 404, and a retry would then recover a healthy session: refuse instead.
      metrics.outcome('ambiguous_session_id');
      return { response: errorResponse('MCP_PIN_AMBIGUOUS_SESSION_ID'), next: DONE };
    }

    if (sid === undefined) {
      if (method === 'POST' && !h?.end_of_stream && isJsonContentType(firstHeader(pairs, 'content-type'))) {
        return { response: this.replies.maybeInitialize, next: { phase: 'request-body', kind: 'maybe-initialize', path } };
      }
      metrics.outcome('passthrough');
      return { response: this.replies.passthrough, next: DONE };
    }

    // mcp-pin's own redirect names the client's session: the request's
    // mcp-session-id may be the backend id its failed attempt used.
    const redirectedSid = firstHeader(pairs, REDIRECTED_SESSION_HEADER);
    return this.forSession({ sid: redirectedSid ?? sid, method, path, redirected: redirectedSid !== undefined });
  }

  /**
   * A request that names a session. `redirected`: started again by Envoy
   * after mcp-pin's redirect (attempt.ts), the session named by the redirect,
   * not by mcp-session-id.
   */
  private async forSession(req: { sid: string; method: string; path: string; redirected: boolean }): Promise<Decision> {
    const { cfg, metrics } = this.deps;
    const { sid, method, path, redirected } = req;
    if (!isValidSessionId(sid, cfg.maxSessionIdLength)) {
      // No pod can hold it: answered here, never looked up, never searched for on the pods.
      metrics.outcome('invalid_session_id');
      return { response: errorResponse('MCP_PIN_INVALID_SESSION_ID'), next: DONE };
    }

    let pin: Pin | null;
    let sessionPath: string | null = null;
    // Which store call this is, as mcp_pin_store_errors_total{op} names it.
    const op = method === 'DELETE' || redirected ? 'load' : 'lookup';
    try {
      // A DELETE reads the shared store, not this replica's pin cache: a
      // stale cached pin would send it to a pod that no longer holds the
      // session, and the 404 there would end a session that lives elsewhere.
      // So does a redirected request: its session has just moved.
      if (method === 'DELETE' || redirected) {
        const rec = await this.deps.store.load(sid);
        sessionPath = rec?.initPath ?? null;
        pin = rec;
      } else pin = await this.deps.store.lookup(sid);
    } catch (err) {
      if (!(err instanceof StoreError && err.code === 'MCP_PIN_STORE_CORRUPT')) {
        return { response: this.storeFailure(op, err), next: DONE };
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
    const unknownAs = pin ? null : unknownKey(sid, path);
    if (unknownAs !== null && (this.deps.recentlyUnknown?.has(unknownAs) || (await this.rememberedUnknown(unknownAs)))) {
      // Searched for moments ago at this path (by this replica or another) and found on no pod: not again.
      metrics.outcome('unknown_session_remembered');
      return { response: errorResponse('MCP_PIN_UNKNOWN_SESSION'), next: DONE };
    }
    if (!pin) {
      // Response headers are still wanted: if a pod answers 2xx, the session
      // it holds is adopted (the store lost it: flushed, or restarted without
      // persistence).
      metrics.outcome('unknown_session');
      const response = redirected
        ? continueRequestHeaders(
            { set: [[SESSION_HEADER, sid]], remove: [cfg.pinHeader, CLIENT_SESSION_HEADER, REDIRECTED_SESSION_HEADER] },
            { clearRouteCache: true, mode: WITH_RESPONSE },
          )
        : this.replies.unknownSession;
      return { response, next: { phase: 'response-headers', kind: 'unknown-session', path, method, clientSessionId: sid } };
    }

    metrics.outcome('pinned');
    // The response matters only to forget a deleted session (the pinned
    // routes put the client's id back themselves). Everything else is one
    // message: a lost session is retried by Envoy and recovered on that attempt.
    const needResponse = method === 'DELETE';
    const next: State = needResponse ? { phase: 'response-headers', kind: 'delete', path, clientSessionId: sid, pin, sessionPath } : DONE;
    if (pin.backendSessionId === sid && !redirected) return { response: this.replies.pinnedTo(pin.pod, needResponse), next };
    const mode = { clearRouteCache: true, mode: needResponse ? WITH_RESPONSE : WITHOUT_RESPONSE };
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
    if (redirected) mutation.remove = [REDIRECTED_SESSION_HEADER];
    return { response: continueRequestHeaders(mutation, mode), next };
  }

  /** Reads a possible initialize's body; any other request's body passes untouched. */
  private onRequestBody(b: WireHttpBody | undefined): void {
    const state = this.state;
    if (state.phase === 'request-headers' || state.phase === 'done' || state.kind !== 'maybe-initialize') return;
    const body = b?.body ?? Buffer.alloc(0);
    const isInitialize = isInitializeRequest(body);
    // Copy: the decoded Buffer may be a view into a larger gRPC frame.
    const initBody = isInitialize && body.length <= this.deps.cfg.maxInitBodyBytes ? Buffer.from(body) : null;
    this.state = { phase: 'response-headers', kind: 'maybe-initialize', path: state.path, isInitialize, initBody };
  }

  private async onResponseHeaders(state: Exclude<State, { phase: 'request-headers' }>, msg: ProcessingRequest): Promise<ProcessingResponse> {
    if (state.phase === 'done') return continueResponseHeaders();
    const pairs = headerPairs(msg.response_headers);
    const status = Number(firstHeader(pairs, ':status') ?? 0);
    switch (state.kind) {
      case 'maybe-initialize':
        // The body never came (Envoy answered before it was read): not an initialize.
        if (state.phase === 'request-body') return continueResponseHeaders();
        return this.afterInitialize(state, msg, pairs, status);
      case 'delete':
        return this.afterDelete(state, msg, status);
      case 'unknown-session':
        return this.afterUnknownSession(state, msg, status);
    }
  }

  private async afterInitialize(
    init: Extract<State, { kind: 'maybe-initialize'; phase: 'response-headers' }>,
    msg: ProcessingRequest,
    pairs: HeaderPairs,
    status: number,
  ): Promise<ProcessingResponse> {
    const { metrics, log } = this.deps;
    const sid = firstHeader(pairs, SESSION_HEADER);
    // Stateless servers (and newer MCP revisions) send no session id: nothing to pin.
    if (!init.isInitialize || !is2xx(status) || sid === undefined) return continueResponseHeaders();
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
      created = await this.deps.store.create(sid, { pod, backendSessionId: sid, initBody: init.initBody, initPath: keptPath(init.path) });
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
    log.info({ session: sessionTag(sid), pod, initBodyKept: init.initBody !== null }, 'pin recorded');
    return continueResponseHeaders();
  }

  private async afterDelete(del: Extract<State, { kind: 'delete' }>, msg: ProcessingRequest, status: number): Promise<ProcessingResponse> {
    const { cfg, log, metrics } = this.deps;
    const { clientSessionId: sid, pin } = del;
    // The client only ever sees its own session id.
    const rewrite = pin.backendSessionId !== sid ? { overwrite: [[SESSION_HEADER, sid]] as [string, string][] } : undefined;
    const lost = cfg.lostSessionStatuses.includes(status) || isConnectFailure(status, upstreamReport(msg));
    // The end of the session only at its MCP path (a DELETE of /typo is the
    // pod's router answering); where that path is not known, only a 2xx.
    const onPath = onSessionPath(del.path, del.sessionPath);
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
    return continueResponseHeaders(rewrite);
  }

  /** Remembered by another replica (through the store); a store that cannot say is no reason to refuse: the search then runs. */
  private async rememberedUnknown(key: string): Promise<boolean> {
    const local = this.deps.recentlyUnknown;
    if (!local || local.ttlMs <= 0) return false;
    const known = await this.deps.store.isRememberedUnknown(key).catch(() => {
      this.deps.metrics.ignored('check_unknown_session');
      return false;
    });
    // Seen once from the store, kept here too: a burst of repeats asks the store once.
    if (known) local.remember(key);
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
  private async afterUnknownSession(unknown: Extract<State, { kind: 'unknown-session' }>, msg: ProcessingRequest, status: number): Promise<ProcessingResponse> {
    const sid = unknown.clientSessionId;
    // The search ended in "no such session" (a lost-session status: Envoy
    // retries other pods on it first, and mcp-pin ends it with 404 once every
    // pod was asked): remember that, so repeats cost no pod a request.
    const key = unknownKey(sid, unknown.path);
    if (this.deps.cfg.lostSessionStatuses.includes(status) && this.deps.recentlyUnknown && key !== null) {
      this.deps.recentlyUnknown.remember(key);
      // And for every replica: the store keeps it as long.
      const ttl = this.deps.recentlyUnknown.ttlMs;
      if (ttl > 0) await this.deps.store.rememberUnknown(key, ttl).catch(() => this.deps.metrics.ignored('remember_unknown_session'));
    }
    if (!is2xx(status) || unknown.method === 'DELETE') return continueResponseHeaders();
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
      if (await this.deps.store.adopt(sid, pod, keptPath(unknown.path))) {
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

/** A request's path as a session's MCP path is stored: a path too long to keep is not kept. */
function keptPath(path: string): string | null {
  return path.length <= MAX_INIT_PATH_LENGTH ? path : null;
}
