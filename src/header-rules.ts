/**
 * Which headers cross from one hop to the next when mcp-pin makes a request
 * itself (a re-initialize, a replayed state change, a relay) or hands a
 * relayed answer back: the one place for those rules. Hop-by-hop headers,
 * HTTP/2 pseudo-headers and the proxies' own (Envoy's x-envoy-*, mcp-pin's
 * x-mcp-pin-*) never cross.
 */
import { HOP_BY_HOP_HEADERS, SESSION_HEADER, isProxyHeader, type HeaderPairs } from './mcp-headers.js';

const crossesHops = (name: string): boolean => !(name.startsWith(':') || HOP_BY_HOP_HEADERS.has(name) || isProxyHeader(name));

/** Besides hop-by-hop ones: headers of this hop's routing, which the pod's own request gets anew. */
const ROUTING_HEADERS = new Set(['host', 'x-request-id', 'x-forwarded-proto']);

/** Client headers a re-initialize keeps: end-to-end ones (Authorization, MCP-Protocol-Version, ...). */
export function endToEndHeaders(headers: HeaderPairs, drop: Set<string>): HeaderPairs {
  const out: HeaderPairs = [];
  let authority: string | undefined;
  for (const [k, v] of headers) {
    if (k === ':authority') authority = v;
    if (!crossesHops(k) || ROUTING_HEADERS.has(k) || drop.has(k)) continue;
    out.push([k, v]);
  }
  // Pods may check Host (the SDK's DNS-rebinding guard): keep the client's.
  if (authority) out.push(['host', authority]);
  return out;
}

/** A relayed answer's headers for the client: no hop headers, nothing of Envoy's or mcp-pin's, and its own session id. */
export function clientResponseHeaders(headers: HeaderPairs, clientSessionId: string): [string, string][] {
  const merged = new Map<string, string>();
  for (const [k, v] of headers) {
    if (!crossesHops(k)) continue;
    const value = k === SESSION_HEADER ? clientSessionId : v;
    const prev = merged.get(k);
    merged.set(k, prev === undefined || k === SESSION_HEADER ? value : `${prev}, ${value}`);
  }
  return [...merged];
}
