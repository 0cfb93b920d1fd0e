import { expect } from 'chai';
import type { ProcessingRequest, ProcessingResponse } from '../../src/extproc/protocol.js';
import { SEARCHED_HEADER, SearchAttempt } from '../../src/extproc/search-attempt.js';
import { wireHeaders } from '../helpers/grpc-clients.js';
import { newMetrics } from './fakes.js';

function attempt(pod: string | undefined, h: Record<string, string>): ProcessingRequest {
  return {
    request: 'request_headers',
    request_headers: { headers: { headers: wireHeaders({ ':method': 'POST', ':path': '/mcp', ...h }) }, end_of_stream: false },
    ...(pod ? { attributes: { 'envoy.filters.http.ext_proc': { fields: { 'upstream.address': { kind: 'stringValue', stringValue: pod } } } } } : {}),
  } as ProcessingRequest;
}
const setOf = (r: ProcessingResponse): Record<string, string> =>
  Object.fromEntries(r.request_headers?.response?.header_mutation?.set_headers?.map((s) => [s.header.key, s.header.raw_value.toString()]) ?? []);

describe('SearchAttempt (one attempt of a session search)', () => {
  it('lets an attempt go to a pod not yet asked, adding it to the pods asked', () => {
    const [first] = new SearchAttempt({ metrics: newMetrics() }).handle(attempt('10.0.0.1:8080', { 'mcp-session-id': 's' }));
    expect(setOf(first!)).to.deep.equal({ [SEARCHED_HEADER]: '10.0.0.1:8080' });
    const [second] = new SearchAttempt({ metrics: newMetrics() }).handle(
      attempt('10.0.0.2:8080', { 'mcp-session-id': 's', [SEARCHED_HEADER]: '10.0.0.1:8080' }),
    );
    expect(setOf(second!)).to.deep.equal({ [SEARCHED_HEADER]: '10.0.0.1:8080,10.0.0.2:8080' });
  });

  it('answers 404 (-32001) to an attempt bound for a pod already asked: every pod said no', () => {
    const metrics = newMetrics();
    const [r] = new SearchAttempt({ metrics }).handle(attempt('10.0.0.1:8080', { 'mcp-session-id': 's', [SEARCHED_HEADER]: '10.0.0.1:8080,10.0.0.2:8080' }));
    expect(r!.immediate_response?.status?.code).to.equal(404);
    expect(JSON.parse(r!.immediate_response!.body!.toString()).error.code).to.equal(-32001);
  });

  it('lets an attempt through untouched when Envoy named no pod, and refuses any other message', () => {
    const ex = new SearchAttempt({ metrics: newMetrics() });
    const [r] = ex.handle(attempt(undefined, { 'mcp-session-id': 's' }));
    expect(setOf(r!)).to.deep.equal({});
    expect(r!.immediate_response).to.equal(undefined);
    expect(ex.complete).to.equal(true);
    expect(() => ex.handle(attempt('10.0.0.1:8080', {}))).to.throw(/not expected/);
    // Nor without a session id: there is no search to keep track of, even where a pod is named and asked before.
    const [n] = new SearchAttempt({ metrics: newMetrics() }).handle(attempt('10.0.0.1:8080', { [SEARCHED_HEADER]: '10.0.0.1:8080' }));
    expect(n!.immediate_response).to.equal(undefined);
    expect(setOf(n!)).to.deep.equal({});
  });
});
