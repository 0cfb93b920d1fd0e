/**
 * The order of ext_proc messages each route's handler accepts (StateRecorder,
 * TaskAnswer, SearchAttempt): trailers pass at any point, each phase is
 * answered with exactly one message of its own kind, and a message out of
 * order ends the stream with a ProtocolError that names it and the phase.
 */
import { expect } from 'chai';
import { ProtocolError } from '../../src/errors.js';
import type { ProcessingRequest, ProcessingResponse } from '../../src/extproc/protocol.js';
import { Exchange } from '../../src/extproc/exchange.js';
import { SearchAttempt } from '../../src/extproc/search-attempt.js';
import { StateRecorder } from '../../src/extproc/state-recorder.js';
import type { StreamHandler } from '../../src/extproc/stream-handler.js';
import { TaskAnswer } from '../../src/extproc/task-answer.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { newMetrics, requestBody, requestHeaders, responseHeaders, silentLog } from './fakes.js';

const REQUEST_TRAILERS: ProcessingRequest = { request: 'request_trailers', request_trailers: {} } as ProcessingRequest;
const RESPONSE_TRAILERS: ProcessingRequest = { request: 'response_trailers', response_trailers: {} } as ProcessingRequest;
const NO_PHASE = {} as ProcessingRequest;
const HEADERS = requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 'C', 'content-type': 'application/json' });

const refusal = async (h: StreamHandler, msg: ProcessingRequest): Promise<string> => {
  const err = await Promise.resolve()
    .then(() => h.handle(msg))
    .then(
      () => null,
      (e: unknown) => e,
    );
  expect(err, 'a ProtocolError').to.be.instanceOf(ProtocolError);
  return (err as Error).message;
};

const kinds = (rs: ProcessingResponse[]): string[] =>
  rs.map((r) =>
    Object.keys(r)
      .filter((k) => k !== 'mode_override')
      .join('+'),
  );

describe('route handlers: the order of messages they accept', () => {
  const store = new MemoryStore({ sessionTtlMs: 60_000 });
  after(() => store.close());
  const handlers = {
    'session-state request': () => new StateRecorder({ store, log: silentLog, metrics: newMetrics() }),
    'task request': () => new TaskAnswer({ store, log: silentLog, metrics: newMetrics() }),
  };

  for (const [what, make] of Object.entries(handlers)) {
    it(`${what}: one answer of its kind per message, trailers at any point, anything out of order refused by name and phase`, async () => {
      const h = make();
      expect(kinds(await h.handle(REQUEST_TRAILERS))).to.deep.equal(['request_trailers']);
      expect(await refusal(make(), NO_PHASE)).to.equal(`no phase not expected in a ${what}'s request-headers phase`);
      expect(await refusal(make(), requestBody('{}'))).to.equal(`request_body not expected in a ${what}'s request-headers phase`);
      expect(kinds(await h.handle(HEADERS))).to.deep.equal(['request_headers']);
      const again = await refusal(h, HEADERS);
      expect(again).to.match(new RegExp(`^request_headers not expected in a ${what}'s (request-body|response-headers) phase$`));
      expect(kinds(await h.handle(REQUEST_TRAILERS))).to.deep.equal(['request_trailers']);
      expect(kinds(await h.handle(RESPONSE_TRAILERS))).to.deep.equal(['response_trailers']);
    });
  }

  it('session-state request: its body is answered once, then the response headers; a refused state request is counted as refused', async () => {
    const metrics = newMetrics();
    const h = new StateRecorder({ store, log: silentLog, metrics });
    expect(kinds(await h.handle(HEADERS))).to.deep.equal(['request_headers']);
    expect(
      kinds(await h.handle(requestBody(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'x://a' } })))),
    ).to.deep.equal(['request_body']);
    expect(await refusal(h, requestBody('{}'))).to.equal("request_body not expected in a session-state request's response-headers phase");
    expect(kinds(await h.handle(responseHeaders({ ':status': '500' })))).to.deep.equal(['response_headers']);
    expect(h.complete).to.equal(true);
    const refused = (await metrics.registry.getSingleMetric('mcp_pin_session_state_total')!.get()).values.find((v) => v.labels.result === 'refused');
    expect(refused?.value).to.equal(1);
  });

  it('session search attempt: request headers once, nothing else', async () => {
    const make = () => new SearchAttempt({ metrics: newMetrics() });
    expect(await refusal(make(), NO_PHASE)).to.equal('no phase not expected in a session search attempt');
    expect(await refusal(make(), REQUEST_TRAILERS)).to.equal('request_trailers not expected in a session search attempt');
    const h = make();
    expect(kinds(await h.handle(HEADERS))).to.deep.equal(['request_headers']);
    expect(h.complete).to.equal(true);
    expect(await refusal(h, HEADERS)).to.equal('request_headers not expected in a session search attempt');
  });

  it("client request (Exchange): one answer of each phase's kind while it waits for the response, and anything out of order refused by name", async () => {
    const cfg = { pinHeader: 'x-mcp-pin-dst', maxInitBodyBytes: 1024, maxSessionIdLength: 64, lostSessionStatuses: [404] };
    const make = () => new Exchange({ store, cfg, log: silentLog, metrics: newMetrics() });
    const h = make();
    expect(kinds(await h.handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'content-type': 'application/json' })))).to.deep.equal([
      'request_headers',
    ]);
    expect(await refusal(h, requestHeaders({ ':method': 'POST', ':path': '/mcp' }))).to.equal('request_headers received twice');
    expect(kinds(await h.handle(requestBody('{"jsonrpc":"2.0","id":1,"method":"tools/list"}')))).to.deep.equal(['request_body']);
    expect(kinds(await h.handle(REQUEST_TRAILERS))).to.deep.equal(['request_trailers']);
    expect(kinds(await h.handle(responseHeaders({ ':status': '200' })))).to.deep.equal(['response_headers']);
    expect(
      kinds(await h.handle({ request: 'response_body', response_body: { body: Buffer.from('{}'), end_of_stream: true } } as ProcessingRequest)),
    ).to.deep.equal(['response_body']);
    expect(kinds(await h.handle(RESPONSE_TRAILERS))).to.deep.equal(['response_trailers']);
    expect(await refusal(make(), NO_PHASE)).to.equal('ProcessingRequest carries no known phase');
    expect(await refusal(make(), RESPONSE_TRAILERS)).to.equal('response_trailers received before request_headers');
    expect(await refusal(make(), { request: 'response_body', response_body: { body: Buffer.alloc(0), end_of_stream: true } } as ProcessingRequest)).to.equal(
      'response_body received before request_headers',
    );
    expect(await refusal(make(), requestHeaders({ ':path': '/mcp' }))).to.equal('request_headers without :method');
  });
});
