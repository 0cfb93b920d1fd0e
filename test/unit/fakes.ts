/** Fakes behind the narrow interfaces the units depend on. */
import { pino, type Logger } from 'pino';
import { Metrics } from '../../src/metrics.js';
import type { ProcessingRequest } from '../../src/extproc/protocol.js';
import { wireHeaders } from '../helpers/grpc-clients.js';

export const silentLog = pino({ level: 'silent' });

/** One JSON log line as pino writes it. */
export type LogLine = Record<string, unknown> & { level: number; msg: string };
export const LOG_LEVEL = { info: 30, warn: 40, error: 50 } as const;

/** A logger at info whose lines the test reads. */
export function capturedLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}
export const newMetrics = (): Metrics => new Metrics();

/** One series' value as Prometheus would scrape it (a counter, a gauge, a histogram's `_count` or `_sum`) for these labels; 0 before it has any. */
export async function metricValue(metrics: Metrics, series: string, labels: Record<string, string> = {}): Promise<number> {
  for (const m of await metrics.registry.getMetricsAsJSON())
    for (const v of m.values as { labels: Record<string, unknown>; value: number; metricName?: string }[])
      if ((v.metricName ?? m.name) === series && Object.entries(labels).every(([k, want]) => v.labels[k] === want)) return Number(v.value);
  return 0;
}

export function requestHeaders(h: Record<string, string>, endOfStream = false): ProcessingRequest {
  return { request: 'request_headers', request_headers: { headers: { headers: wireHeaders(h) }, end_of_stream: endOfStream } };
}

export function requestBody(body: string | Buffer): ProcessingRequest {
  return { request: 'request_body', request_body: { body: Buffer.isBuffer(body) ? body : Buffer.from(body), end_of_stream: true } };
}

export function responseHeaders(h: Record<string, string>, attrs: Record<string, string | number> = {}): ProcessingRequest {
  const fields: Record<string, { kind: string; stringValue?: string; numberValue?: number }> = {};
  for (const [k, v] of Object.entries(attrs)) {
    fields[k] = typeof v === 'number' ? { kind: 'numberValue', numberValue: v } : { kind: 'stringValue', stringValue: v };
  }
  return {
    request: 'response_headers',
    response_headers: { headers: { headers: wireHeaders(h) } },
    attributes: { 'envoy.filters.http.ext_proc': { fields } },
  };
}

/** A recoverer's config whose recovery URL answers nothing: only its pods (a fake forwarder) and its store are reached. */
export const recovererCfg = {
  recoveryUrl: 'http://127.0.0.1:1',
  recoveryTimeoutMs: 2000,
  pinHeader: 'x-mcp-pin-dst',
  upstreamHeader: 'x-mcp-pin-upstream',
  lostSessionStatuses: [404],
  maxSessionIdLength: 256,
  relayBudgetBytes: 64 << 20,
};
