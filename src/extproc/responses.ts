/**
 * Every ProcessingResponse mcp-pin sends is built here, by pure functions, so
 * no branch builds its own variant inline.
 */
import { CLIENT_SESSION_HEADER, REDIRECTED_SESSION_HEADER } from '../mcp-headers.js';
import { precoded } from '../protos.js';
import type { AppendAction, CommonResponse, HeaderMutation, ProcessingMode, ProcessingResponse } from './protocol.js';

export interface Mutation {
  /** Headers to set (replace), as name/value. */
  set?: [string, string][];
  /** Set only where the header already exists (rewrites, never adds). */
  overwrite?: [string, string][];
  remove?: string[];
}

function headerMutation(m: Mutation | undefined): HeaderMutation | undefined {
  if (!m) return undefined;
  const set_headers: NonNullable<HeaderMutation['set_headers']> = [];
  const add = (list: [string, string][] | undefined, append_action: AppendAction): void => {
    for (const [key, value] of list ?? []) {
      // raw_value only: Envoy ignores `value` when applying mutations.
      set_headers.push({ header: { key, raw_value: Buffer.from(value, 'latin1') }, append_action });
    }
  };
  add(m.set, 'OVERWRITE_IF_EXISTS_OR_ADD');
  add(m.overwrite, 'OVERWRITE_IF_EXISTS');
  const out: HeaderMutation = {};
  if (set_headers.length > 0) out.set_headers = set_headers;
  if (m.remove && m.remove.length > 0) out.remove_headers = m.remove;
  return out.set_headers || out.remove_headers ? out : undefined;
}

function common(m?: Mutation, clearRouteCache = false): CommonResponse {
  const r: CommonResponse = {};
  const hm = headerMutation(m);
  if (hm) r.header_mutation = hm;
  if (clearRouteCache) r.clear_route_cache = true;
  return r;
}

/**
 * The response phase, asked for per request: the public ext_proc skips it by
 * default, so a reply another filter makes before mcp-pin saw the request
 * (an auth filter's 401, a CORS preflight, a 413 or 431) opens no stream to
 * mcp-pin. Both are said explicitly, so a config rendered before that
 * default changed gets the same answer.
 */
export const WITH_RESPONSE: ProcessingMode = { response_header_mode: 'SEND' };
export const WITHOUT_RESPONSE: ProcessingMode = { response_header_mode: 'SKIP' };

export function continueRequestHeaders(m?: Mutation, opts: { clearRouteCache?: boolean; mode?: ProcessingMode } = {}): ProcessingResponse {
  const r: ProcessingResponse = { request_headers: { response: common(m, opts.clearRouteCache) } };
  if (opts.mode) r.mode_override = opts.mode;
  return r;
}

// Constant replies, built and encoded once (src/protos.ts precoded).
const CONTINUE_RESPONSE_HEADERS = precoded({ response_headers: { response: {} } });
const CONTINUE_REQUEST_BODY = precoded({ request_body: { response: {} } });
const CONTINUE_RESPONSE_BODY = precoded({ response_body: { response: {} } });
const CONTINUE_REQUEST_TRAILERS = precoded({ request_trailers: {} });
const CONTINUE_RESPONSE_TRAILERS = precoded({ response_trailers: {} });

export function continueResponseHeaders(m?: Mutation): ProcessingResponse {
  return m ? { response_headers: { response: common(m) } } : CONTINUE_RESPONSE_HEADERS;
}

export function continueRequestBody(): ProcessingResponse {
  return CONTINUE_REQUEST_BODY;
}

export function continueResponseBody(): ProcessingResponse {
  return CONTINUE_RESPONSE_BODY;
}

/** The answer's body (this piece of it, when streamed) replaced. */
export function replaceResponseBody(body: Buffer): ProcessingResponse {
  return { response_body: { response: { body_mutation: { body } } } };
}

export function continueRequestTrailers(): ProcessingResponse {
  return CONTINUE_REQUEST_TRAILERS;
}

export function continueResponseTrailers(): ProcessingResponse {
  return CONTINUE_RESPONSE_TRAILERS;
}

/** Pods whose pinned replies are kept; past it the cache starts over (pods come and go; a rebuild is cheap). */
export const MAX_PINNED_REPLIES = 4096;

/**
 * The answers to request headers that repeat: per pin header, the ones
 * without a session, and per pod, the pinned one. Each is built and encoded
 * once; a pinned request's answer is then a Map read.
 */
export class HeaderReplies {
  /** No session id and nothing to learn from the answer: strip the client's routing headers, skip the response. */
  readonly passthrough: ProcessingResponse;
  /** A POST that may be an initialize: its body, then its response headers. */
  readonly maybeInitialize: ProcessingResponse;
  /** A session the store does not know: the service route finds it; its response headers may adopt it. */
  readonly unknownSession: ProcessingResponse;
  private readonly pinned = new Map<string, ProcessingResponse>();

  constructor(private readonly pinHeader: string) {
    const strip = { remove: [pinHeader, CLIENT_SESSION_HEADER, REDIRECTED_SESSION_HEADER] };
    this.passthrough = precoded(continueRequestHeaders(strip, { clearRouteCache: true, mode: WITHOUT_RESPONSE }));
    this.maybeInitialize = precoded(continueRequestHeaders(strip, { clearRouteCache: true, mode: { request_body_mode: 'BUFFERED', ...WITH_RESPONSE } }));
    this.unknownSession = precoded(continueRequestHeaders(strip, { clearRouteCache: true, mode: WITH_RESPONSE }));
  }

  /** Routes to `pod` (the pin header), strips the client-session header; the response phase only when `withResponse`. */
  pinnedTo(pod: string, withResponse: boolean): ProcessingResponse {
    const key = withResponse ? `r${pod}` : pod;
    let r = this.pinned.get(key);
    if (r === undefined) {
      if (this.pinned.size >= MAX_PINNED_REPLIES) this.pinned.clear();
      const m: Mutation = { set: [[this.pinHeader, pod]], remove: [CLIENT_SESSION_HEADER] };
      r = precoded(continueRequestHeaders(m, { clearRouteCache: true, mode: withResponse ? WITH_RESPONSE : WITHOUT_RESPONSE }));
      this.pinned.set(key, r);
    }
    return r;
  }

  private static readonly byPinHeader = new Map<string, HeaderReplies>();

  /** One set per pin header, shared by every exchange. */
  static for(pinHeader: string): HeaderReplies {
    const known = HeaderReplies.byPinHeader.get(pinHeader);
    if (known) return known;
    const made = new HeaderReplies(pinHeader);
    HeaderReplies.byPinHeader.set(pinHeader, made);
    return made;
  }
}

/** Gives mcp-pin longer than message_timeout to answer the current message (Envoy caps it at max_message_timeout). */
export function extendMessageTimeout(ms: number): ProcessingResponse {
  const seconds = Math.floor(ms / 1000);
  return { override_message_timeout: { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1e6 } };
}

/** Ends the HTTP exchange with this answer instead of the upstream's. */
export function immediate(status: number, headers: [string, string][], body: Buffer, details: string): ProcessingResponse {
  const hm = headerMutation({ set: headers });
  return {
    immediate_response: { status: { code: status }, ...(hm ? { headers: hm } : {}), body, details },
  };
}

/** An HTTP error with a JSON-RPC error body, as MCP clients expect. */
export function jsonRpcError(status: number, code: number, message: string, details: string, extraHeaders: [string, string][] = []): ProcessingResponse {
  const body = Buffer.from(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
  return immediate(status, [['content-type', 'application/json'], ...extraHeaders], body, details);
}
