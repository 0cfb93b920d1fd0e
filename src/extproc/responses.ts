/**
 * Every ProcessingResponse mcp-pin sends is built here, by pure functions, so
 * no branch builds its own variant inline.
 */
import type {
  AppendAction,
  CommonResponse,
  HeaderMutation,
  ProcessingMode,
  ProcessingResponse,
} from './protocol.js';

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

export function continueRequestHeaders(m?: Mutation, opts: { clearRouteCache?: boolean; mode?: ProcessingMode } = {}): ProcessingResponse {
  const r: ProcessingResponse = { request_headers: { response: common(m, opts.clearRouteCache) } };
  if (opts.mode) r.mode_override = opts.mode;
  return r;
}

export function continueResponseHeaders(m?: Mutation): ProcessingResponse {
  return { response_headers: { response: common(m) } };
}

export function continueRequestBody(): ProcessingResponse {
  return { request_body: { response: {} } };
}

export function continueResponseBody(): ProcessingResponse {
  return { response_body: { response: {} } };
}

export function continueRequestTrailers(): ProcessingResponse {
  return { request_trailers: {} };
}

export function continueResponseTrailers(): ProcessingResponse {
  return { response_trailers: {} };
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
