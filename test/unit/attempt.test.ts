/**
 * A retry attempt of a pinned request (AttemptExchange), with a fake
 * Recoverer: what Envoy is told for each plan recovery returns.
 */
import { expect } from 'chai';
import { AttemptExchange, REDIRECT_SESSION_ID } from '../../src/extproc/attempt.js';
import type { ProcessingRequest, ProcessingResponse } from '../../src/extproc/protocol.js';
import type { Recoverer, RetryOutcome } from '../../src/recovery/http-recoverer.js';
import type { RetryAttempt } from '../../src/recovery/recovery.js';
import { newMetrics, responseHeaders, silentLog, wireHeaders } from './fakes.js';

const cfg = { pinHeader: 'x-mcp-pin-dst', maxSessionIdLength: 64, lostSessionStatuses: [404] };
const POD = '10.0.1.1:8080';

function attemptHeaders(h: Record<string, string>, pod = POD): ProcessingRequest {
  return {
    request: 'request_headers',
    request_headers: { headers: { headers: wireHeaders({ ':method': 'POST', ':path': '/mcp', 'x-envoy-attempt-count': '2', ...h }) } },
    attributes: { 'envoy.filters.http.ext_proc': { fields: { 'upstream.address': { kind: 'stringValue', stringValue: pod } } } },
  };
}

function make(outcome: RetryOutcome) {
  const asked: RetryAttempt[] = [];
  const recoverer: Recoverer = { timeoutMs: 3500, planRetry: async (a) => (asked.push(a), outcome) };
  const interim: ProcessingResponse[] = [];
  const metrics = newMetrics();
  const ex = new AttemptExchange({ cfg, log: silentLog, metrics, recoverer }, (r) => interim.push(r), new AbortController().signal);
  return { ex, asked, interim, metrics };
}

const setOf = (r: ProcessingResponse): Record<string, [string, string]> =>
  Object.fromEntries(
    (r.request_headers?.response ?? r.response_headers?.response)?.header_mutation?.set_headers?.map((s) => [s.header.key, [s.header.raw_value.toString(), s.append_action]]) ?? [],
  );

describe('AttemptExchange (a retry of a pinned request)', () => {
  it('sends the attempt under the recovered backend id, extending the message timeout first, and puts the client id back', async () => {
    const { ex, asked, interim, metrics } = make({ kind: 'send', reinitialized: true, pin: { pod: POD, backendSessionId: 'backend-2', generation: 2 } });
    const [r] = await ex.handle(attemptHeaders({ 'mcp-session-id': 'client-1' }));
    expect(interim).to.deep.equal([{ override_message_timeout: { seconds: '3', nanos: 500_000_000 } }]);
    expect(asked[0]).to.include({ clientSessionId: 'client-1', failedSessionId: 'client-1', pod: POD, path: '/mcp' });
    expect(setOf(r!)).to.deep.equal({ 'mcp-session-id': ['backend-2', 'OVERWRITE_IF_EXISTS_OR_ADD'], 'x-mcp-pin-client-session': ['client-1', 'OVERWRITE_IF_EXISTS_OR_ADD'] });
    expect(r!.mode_override).to.equal(undefined);
    expect(ex.complete).to.equal(false);
    const [resp] = await ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'backend-2' }));
    expect(setOf(resp!)).to.deep.equal({ 'mcp-session-id': ['client-1', 'OVERWRITE_IF_EXISTS'] });
    expect(ex.complete).to.equal(true);
    expect((await metrics.registry.getSingleMetric('mcp_pin_requests_total')!.get()).values.find((v) => v.labels.outcome === 'recovered')?.value).to.equal(1);
  });

  it('finds the client by its client-session header when the failed attempt carried a backend id', async () => {
    const { ex, asked } = make({ kind: 'unknown' });
    await ex.handle(attemptHeaders({ 'mcp-session-id': 'backend-1', 'x-mcp-pin-client-session': 'client-1' }));
    expect(asked[0]).to.include({ clientSessionId: 'client-1', failedSessionId: 'backend-1' });
  });

  it('redirects: pins the next attempt to the pod that holds the session and makes this one fail with an id no pod knows', async () => {
    const { ex } = make({ kind: 'redirect', pin: { pod: '10.0.2.2:8080', backendSessionId: 'b', generation: 3 } });
    const [r] = await ex.handle(attemptHeaders({ 'mcp-session-id': 'client-1' }));
    expect(setOf(r!)).to.deep.include({ 'x-mcp-pin-dst': ['10.0.2.2:8080', 'OVERWRITE_IF_EXISTS_OR_ADD'], 'mcp-session-id': [REDIRECT_SESSION_ID, 'OVERWRITE_IF_EXISTS_OR_ADD'] });
    const [resp] = await ex.handle(responseHeaders({ ':status': '404', 'mcp-session-id': REDIRECT_SESSION_ID }));
    expect(setOf(resp!)).to.deep.equal({ 'mcp-session-id': ['client-1', 'OVERWRITE_IF_EXISTS'] });
  });

  it('sends an attempt untouched when the store does not know the session, or nothing usable came', async () => {
    for (const h of [{ 'mcp-session-id': 'client-1' }, {}, { 'mcp-session-id': 'has space' }] as Record<string, string>[]) {
      const { ex } = make({ kind: 'unknown' });
      const [r] = await ex.handle(attemptHeaders(h));
      expect(r!.request_headers!.response!.header_mutation, JSON.stringify(h)).to.equal(undefined);
      expect(r!.mode_override).to.deep.equal({ response_header_mode: 'SKIP' });
      expect(ex.complete).to.equal(true);
    }
  });

  it('answers a failed recovery from the one error table', async () => {
    for (const [code, status, rpc] of [
      ['MCP_PIN_RECOVERY_NO_INIT_BODY', 404, -32001],
      ['MCP_PIN_RECOVERY_REINIT_FAILED', 404, -32001],
      ['MCP_PIN_RECOVERY_TIMEOUT', 504, -32603],
      ['MCP_PIN_STORE_UNAVAILABLE', 503, -32603],
    ] as const) {
      const { ex } = make({ kind: 'failed', code });
      const [r] = await ex.handle(attemptHeaders({ 'mcp-session-id': 'client-1' }));
      expect(r!.immediate_response!.status.code, code).to.equal(status);
      expect(JSON.parse(r!.immediate_response!.body!.toString()).error.code, code).to.equal(rpc);
    }
  });

  it('rejects messages out of order', async () => {
    const { ex } = make({ kind: 'unknown' });
    let err: unknown;
    await ex.handle(responseHeaders({ ':status': '200' })).catch((e) => (err = e));
    expect((err as { code?: string })?.code).to.equal('MCP_PIN_PROTOCOL');
  });
});
