/**
 * How recovery talks to the pods: through Envoy's internal listener, so
 * re-initialize uses the same discovery and load balancing as normal traffic,
 * and Envoy reports the pod it picked. A narrow interface, faked in unit tests.
 */
import { Pool } from 'undici';
import { PinError } from '../errors.js';
import { parseListenAddress } from '../listen-address.js';
import type { HeaderPairs } from '../mcp-headers.js';
import type { Lease } from './byte-budget.js';

/** Set by the internal listener on every answer Envoy made itself (local reply). */
export const ENVOY_REPLY_HEADER = 'x-mcp-pin-envoy-reply';

export interface ForwardRequest {
  method: string;
  path: string;
  headers: HeaderPairs;
  body: Buffer | null;
  /** Send to this pod ("ip:port"); without it, the service route picks one. */
  pod?: string;
  signal: AbortSignal;
  /** Larger responses fail rather than fill memory. */
  maxBodyBytes: number;
  /** Every byte read is taken from this lease first (a budget shared by relays); when it is refused the read fails as too large. */
  lease?: Lease;
}

export interface ForwardResponse {
  status: number;
  headers: HeaderPairs;
  body: Buffer;
  /** The pod Envoy connected to, as it reported; undefined when Envoy answered itself (no pod answered). */
  upstream: string | undefined;
  /** Envoy answered itself: its response code details (why no pod answered), e.g. "upstream_reset_before_response_started{connection_failure}". */
  envoyReply?: string;
}

export interface Forwarder {
  send(req: ForwardRequest): Promise<ForwardResponse>;
  close(): Promise<void>;
}

export class ResponseTooLargeError extends PinError {
  constructor(limit: number) {
    super('MCP_PIN_RELAY_TOO_LARGE', `response body over ${limit} bytes (or over the shared relay budget)`);
  }
}

/** undici's errors for a connection that never opened: the request was not sent. */
const NOT_CONNECTED = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL', 'ENOENT', 'EACCES']);

/** The request never left: connecting failed (to Envoy's internal listener). */
export function neverSent(err: unknown): boolean {
  const code = (err as { code?: string } | undefined)?.code ?? (err as { cause?: { code?: string } } | undefined)?.cause?.code;
  return code !== undefined && NOT_CONNECTED.has(code);
}

/** Envoy answered itself because it could not connect to any pod: no pod saw the request. */
export function envoyNeverConnected(details: string): boolean {
  return details.includes('connection_failure') || details.includes('no_healthy_upstream');
}

export class EnvoyForwarder implements Forwarder {
  private readonly pool: Pool;

  constructor(
    recoveryUrl: string,
    private readonly pinHeader: string,
    private readonly upstreamHeader: string,
    timeoutMs: number,
  ) {
    // unix:/path: HTTP over the internal listener's Unix socket (only what can open the file reaches it).
    const socket = parseListenAddress(recoveryUrl);
    const socketPath = socket?.kind === 'unix' ? socket.path : undefined;
    this.pool = new Pool(socketPath ? 'http://localhost' : recoveryUrl, {
      ...(socketPath ? { socketPath } : {}),
      connections: 32,
      connectTimeout: Math.min(timeoutMs, 2000),
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
  }

  async send(req: ForwardRequest): Promise<ForwardResponse> {
    const headers: string[] = [];
    for (const [k, v] of req.headers) headers.push(k, v);
    if (req.pod) headers.push(this.pinHeader, req.pod);
    const res = await this.pool.request({
      method: req.method as 'POST',
      path: req.path,
      headers,
      body: req.body ?? undefined,
      signal: req.signal,
    });
    const chunks: Buffer[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > req.maxBodyBytes || (req.lease && !req.lease.take((chunk as Buffer).length))) throw new ResponseTooLargeError(req.maxBodyBytes);
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      res.body.destroy();
      throw err;
    }
    const out: HeaderPairs = [];
    let upstream: string | undefined;
    let envoyReply: string | undefined;
    for (const [k, v] of Object.entries(res.headers)) {
      if (v === undefined) continue;
      if (k === this.upstreamHeader) {
        upstream = Array.isArray(v) ? v[0] : v;
        continue;
      }
      if (k === ENVOY_REPLY_HEADER) {
        envoyReply = Array.isArray(v) ? v[0] : v;
        continue;
      }
      for (const one of Array.isArray(v) ? v : [v]) out.push([k, one]);
    }
    // Envoy answered itself (the pod refused or reset the connection): no pod
    // answered, whatever host Envoy tried.
    const body = Buffer.concat(chunks);
    if (envoyReply !== undefined) return { status: res.statusCode, headers: out, body, upstream: undefined, envoyReply };
    return { status: res.statusCode, headers: out, body, upstream };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
