/**
 * How recovery talks to the pods: through Envoy's internal listener, so
 * re-initialize uses the same discovery and load balancing as normal traffic,
 * and Envoy reports the pod it picked. A narrow interface, faked in unit tests.
 */
import { Pool } from 'undici';
import type { HeaderPairs } from '../mcp-headers.js';

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
}

export interface ForwardResponse {
  status: number;
  headers: HeaderPairs;
  body: Buffer;
  /** The pod Envoy connected to, as it reported; undefined when Envoy answered itself (no pod answered). */
  upstream: string | undefined;
}

export interface Forwarder {
  send(req: ForwardRequest): Promise<ForwardResponse>;
  close(): Promise<void>;
}

export class ResponseTooLargeError extends Error {
  constructor(limit: number) {
    super(`response body over ${limit} bytes`);
  }
}

export class EnvoyForwarder implements Forwarder {
  private readonly pool: Pool;

  constructor(
    recoveryUrl: string,
    private readonly pinHeader: string,
    private readonly upstreamHeader: string,
    timeoutMs: number,
  ) {
    this.pool = new Pool(recoveryUrl, {
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
        if (size > req.maxBodyBytes) throw new ResponseTooLargeError(req.maxBodyBytes);
        chunks.push(chunk as Buffer);
      }
    } catch (err) {
      res.body.destroy();
      throw err;
    }
    const out: HeaderPairs = [];
    let upstream: string | undefined;
    let envoyReply = false;
    for (const [k, v] of Object.entries(res.headers)) {
      if (v === undefined) continue;
      if (k === this.upstreamHeader) {
        upstream = Array.isArray(v) ? v[0] : v;
        continue;
      }
      if (k === ENVOY_REPLY_HEADER) {
        envoyReply = true;
        continue;
      }
      for (const one of Array.isArray(v) ? v : [v]) out.push([k, one]);
    }
    // Envoy answered itself (the pod refused or reset the connection): no pod
    // answered, whatever host Envoy tried.
    return { status: res.statusCode, headers: out, body: Buffer.concat(chunks), upstream: envoyReply ? undefined : upstream };
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
