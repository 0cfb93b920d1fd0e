/** HTTP header names and lists every layer agrees on (ext_proc, recovery, tests). */

/** The MCP session id header (Streamable HTTP). */
export const SESSION_HEADER = 'mcp-session-id';

/**
 * Carries the client's own session id on a request whose mcp-session-id was
 * rewritten to the backend's, so a retry attempt can find the session. Envoy
 * drops any a client sends (envoy/envoy.template.yaml).
 */
export const CLIENT_SESSION_HEADER = 'x-mcp-pin-client-session';

/**
 * The client's session id on mcp-pin's own redirect (308) of a retry to the
 * pod that holds the session now. Envoy follows the redirect itself and
 * copies this header into the request it starts again
 * (internal_redirect_policy), whose mcp-session-id may still be the backend
 * id the failed attempt used. Not x-mcp-pin-: the public listener drops those
 * before mcp-pin sees them. A client that sends it names its own session by
 * it, which its mcp-session-id already does: it gains nothing.
 */
export const REDIRECTED_SESSION_HEADER = 'mcp-pin-redirected-session';

/** Headers of one hop (RFC 9110 7.6.1) and the body length: never carried over to another message. */
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'content-length',
]);

/** Set by Envoy or mcp-pin, never copied between a client and a pod. */
export const isProxyHeader = (name: string): boolean => name.startsWith('x-envoy-') || name.startsWith('x-mcp-pin');

/** All headers in order, keys lower-cased, values as text. */
export type HeaderPairs = [name: string, value: string][];

/** First value of a header, or undefined. */
export function firstHeader(pairs: HeaderPairs, name: string): string | undefined {
  for (const [k, v] of pairs) if (k === name) return v;
  return undefined;
}

/**
 * The client's own session id on a request mcp-pin pinned: the one it put
 * in CLIENT_SESSION_HEADER when the pod knows the session by another id,
 * else mcp-session-id (client and pod share the id).
 */
export function clientSessionIdOf(pairs: HeaderPairs): string | undefined {
  return firstHeader(pairs, CLIENT_SESSION_HEADER) ?? firstHeader(pairs, SESSION_HEADER);
}

/** A 2xx status. */
export const is2xx = (status: number): boolean => status >= 200 && status < 300;
