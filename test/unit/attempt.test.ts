/**
 * A retry attempt of a pinned request (AttemptExchange), with a fake
 * Recoverer: what Envoy is told for each plan recovery returns.
 */
import { expect } from 'chai';
import { AttemptExchange, redirectLocation } from '../../src/extproc/attempt.js';
import type { ProcessingRequest, ProcessingResponse } from '../../src/extproc/protocol.js';
import type { Recoverer } from '../../src/recovery/http-recoverer.js';
import type { RelayOutcome, RelayRequest, RetryAttempt, RetryPlan } from '../../src/recovery/plans.js';
import { wireHeaders } from '../helpers/grpc-clients.js';
import { capturedLog, LOG_LEVEL, newMetrics, requestBody, responseHeaders, silentLog } from './fakes.js';
import { sessionTag } from '../../src/log.js';

const cfg = { pinHeader: 'x-mcp-pin-dst', maxSessionIdLength: 64, lostSessionStatuses: [404] };
const POD = '10.0.1.1:8080';

function attemptHeaders(h: Record<string, string>, pod = POD, endOfStream = false): ProcessingRequest {
  return {
    request: 'request_headers',
    request_headers: {
      headers: { headers: wireHeaders({ ':method': 'POST', ':path': '/mcp', 'x-envoy-attempt-count': '2', ...h }) },
      end_of_stream: endOfStream,
    },
    attributes: { 'envoy.filters.http.ext_proc': { fields: { 'upstream.address': { kind: 'stringValue', stringValue: pod } } } },
  };
}

function make(
  outcome: RetryPlan,
  relayed: RelayOutcome = {
    kind: 'answered',
    status: 200,
    headers: [
      ['content-type', 'application/json'],
      ['mcp-session-id', 'b'],
      ['content-length', '9'],
      ['x-mcp-pin-upstream', '10.0.2.2:8080'],
    ],
    body: Buffer.from('{"r":"ok"}'),
  },
  log = silentLog,
  lostSessionStatuses = cfg.lostSessionStatuses,
) {
  const asked: RetryAttempt[] = [];
  const relays: RelayRequest[] = [];
  const recoverer: Recoverer = {
    messageTimeoutMs: 3500,
    deadline: (c) => c,
    planRetry: async (a) => {
      asked.push(a);
      return outcome;
    },
    relay: async (r) => {
      relays.push(r);
      return relayed;
    },
  };
  const interim: ProcessingResponse[] = [];
  const metrics = newMetrics();
  const ex = new AttemptExchange({ cfg: { ...cfg, lostSessionStatuses }, log, metrics, recoverer }, (r) => interim.push(r), new AbortController().signal);
  return { ex, asked, relays, interim, metrics };
}

const setOf = (r: ProcessingResponse): Record<string, [string, string]> =>
  Object.fromEntries(
    (r.request_headers?.response ?? r.response_headers?.response)?.header_mutation?.set_headers?.map((s) => [
      s.header.key,
      [s.header.raw_value.toString(), s.append_action],
    ]) ?? [],
  );

describe('AttemptExchange (a retry of a pinned request)', () => {
  it('sends the attempt under the recovered backend id, extending the message timeout first, and puts the client id back', async () => {
    const { ex, asked, interim, metrics } = make({
      kind: 'send',
      reinitialized: true,
      onPath: true,
      pin: { pod: POD, backendSessionId: 'backend-2', generation: 2 },
    });
    const [r] = await ex.handle(attemptHeaders({ 'mcp-session-id': 'client-1' }));
    expect(interim).to.deep.equal([{ override_message_timeout: { seconds: '3', nanos: 500_000_000 } }]);
    expect(asked[0]).to.include({ clientSessionId: 'client-1', failedSessionId: 'client-1', pod: POD, path: '/mcp' });
    expect(setOf(r!)).to.deep.equal({
      'mcp-session-id': ['backend-2', 'OVERWRITE_IF_EXISTS_OR_ADD'],
      'x-mcp-pin-client-session': ['client-1', 'OVERWRITE_IF_EXISTS_OR_ADD'],
    });
    expect(r!.mode_override).to.equal(undefined);
    expect(ex.complete).to.equal(false);
    const [resp] = await ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'backend-2' }));
    expect(setOf(resp!)).to.deep.equal({ 'mcp-session-id': ['client-1', 'OVERWRITE_IF_EXISTS'] });
    expect(ex.complete).to.equal(true);
    expect((await metrics.registry.getSingleMetric('mcp_pin_requests_total')!.get()).values.find((v) => v.labels.outcome === 'recovered')?.value).to.equal(1);
  });

  it('never hands the client a lost-session status from the pod a plan counted on (it restarted since): Envoy starts the request again, or the client is told to retry (A1)', async () => {
    const pin = { pod: POD, backendSessionId: 'backend-2', generation: 2 };
    const fresh = make({ kind: 'send', reinitialized: false, onPath: true, pin });
    await fresh.ex.handle(attemptHeaders({ ':authority': 'h', 'mcp-session-id': 'client-1' }));
    const [r] = await fresh.ex.handle(responseHeaders({ ':status': '404' }));
    expect(setOf(r!)[':status']).to.deep.equal(['308', 'OVERWRITE_IF_EXISTS_OR_ADD']);
    const again = make({ kind: 'send', reinitialized: false, onPath: true, pin });
    await again.ex.handle(attemptHeaders({ ':authority': 'h', 'x-envoy-original-url': 'http://h/mcp', 'mcp-session-id': 'client-1' }));
    const [e] = await again.ex.handle(responseHeaders({ ':status': '404' }));
    expect(e!.immediate_response!.status.code).to.equal(503);
    expect(e!.immediate_response!.details).to.equal('mcp_pin_recovery_unavailable');
    // Off the session's MCP path the 404 is the pod's router; a 400 says nothing without its body: both stand.
    for (const [onPath, status] of [
      [false, '404'],
      [true, '400'],
    ] as const) {
      const x = make({ kind: 'send', reinitialized: false, onPath, pin });
      await x.ex.handle(attemptHeaders({ ':authority': 'h', 'mcp-session-id': 'client-1' }));
      const [o] = await x.ex.handle(responseHeaders({ ':status': status }));
      expect(setOf(o!), `${status} on path ${onPath}`).to.deep.equal({ 'mcp-session-id': ['client-1', 'OVERWRITE_IF_EXISTS'] });
    }
  });

  it('finds the client by its client-session header when the failed attempt carried a backend id', async () => {
    const { ex, asked } = make({ kind: 'unknown' });
    await ex.handle(attemptHeaders({ 'mcp-session-id': 'backend-1', 'x-mcp-pin-client-session': 'client-1' }));
    expect(asked[0]).to.include({ clientSessionId: 'client-1', failedSessionId: 'backend-1' });
  });

  it("redirects a request whose session another request moved to another pod meanwhile: this attempt's pod refuses it, and that answer becomes a 308 to the same URL, naming the client's session, that Envoy follows", async () => {
    const pin = { pod: '10.0.2.2:8080', backendSessionId: 'b', generation: 3 };
    const { ex, relays, metrics } = make({ kind: 'relay', pin, why: 'moved' });
    const [h] = await ex.handle(
      attemptHeaders({ ':authority': 'mcp.example:8080', ':path': '/mcp?x=1', 'mcp-session-id': 'backend-1', 'x-mcp-pin-client-session': 'client-1' }),
    );
    expect(h!.immediate_response).to.equal(undefined);
    expect(h!.request_headers!.response!.header_mutation, 'sent as Envoy built it').to.equal(undefined);
    expect(h!.mode_override, 'its response headers are wanted').to.equal(undefined);
    const [r] = await ex.handle(responseHeaders({ ':status': '404', 'content-type': 'application/json' }));
    expect(setOf(r!)).to.deep.equal({
      ':status': ['308', 'OVERWRITE_IF_EXISTS_OR_ADD'],
      location: ['http://mcp.example:8080/mcp?x=1', 'OVERWRITE_IF_EXISTS_OR_ADD'],
      'mcp-pin-redirected-session': ['client-1', 'OVERWRITE_IF_EXISTS_OR_ADD'],
    });
    // The refusing pod's session id (another pod's backend id) never reaches the client.
    expect(r!.response_headers!.response!.header_mutation!.remove_headers).to.deep.equal(['mcp-session-id']);
    expect(relays, 'nothing relayed').to.have.length(0);
    expect(ex.complete).to.equal(true);
    expect((await metrics.registry.getSingleMetric('mcp_pin_requests_total')!.get()).values.find((v) => v.labels.outcome === 'redirected')?.value).to.equal(1);
    // The client's scheme, as Envoy reported it.
    const tls = make({ kind: 'relay', pin, why: 'moved' });
    await tls.ex.handle(attemptHeaders({ ':authority': 'h', 'x-forwarded-proto': 'https', 'mcp-session-id': 'client-1' }));
    const [t] = await tls.ex.handle(responseHeaders({ ':status': '404' }));
    expect(setOf(t!).location![0]).to.equal('https://h/mcp');
  });

  it("redirects also when this attempt's pod answers 5xx (overloaded or failing: it never held the session, so nothing ran)", async () => {
    for (const status of ['500', '502', '503']) {
      const { ex } = make({ kind: 'relay', pin: { pod: '10.0.2.2:8080', backendSessionId: 'b', generation: 3 }, why: 'moved' });
      await ex.handle(attemptHeaders({ ':authority': 'h', 'mcp-session-id': 'backend-1', 'x-mcp-pin-client-session': 'client-1' }));
      const [r] = await ex.handle(responseHeaders({ ':status': status }));
      expect(setOf(r!)[':status'], status).to.deep.equal(['308', 'OVERWRITE_IF_EXISTS_OR_ADD']);
      expect(setOf(r!)['mcp-pin-redirected-session'], status).to.deep.equal(['client-1', 'OVERWRITE_IF_EXISTS_OR_ADD']);
    }
  });

  it('lets an answer other than a refusal stand (a 2xx, or a 4xx other than a lost-session status): no redirect, the client id put back', async () => {
    for (const status of ['200', '401']) {
      const { ex, metrics } = make({ kind: 'relay', pin: { pod: '10.0.2.2:8080', backendSessionId: 'b', generation: 3 }, why: 'moved' });
      await ex.handle(attemptHeaders({ ':authority': 'h', 'mcp-session-id': 'client-1' }));
      const [r] = await ex.handle(responseHeaders({ ':status': status, 'mcp-session-id': 'client-1' }));
      expect(setOf(r!), status).to.deep.equal({ 'mcp-session-id': ['client-1', 'OVERWRITE_IF_EXISTS'] });
      expect((await metrics.registry.getSingleMetric('mcp_pin_requests_total')!.get()).values.find((v) => v.labels.outcome === 'redirected')?.value).to.equal(
        0,
      );
    }
  });

  it('never redirects a session that was not lost, a wrong path, or a request Envoy already started again (it would not follow a second redirect)', async () => {
    const pin = { pod: '10.0.2.2:8080', backendSessionId: 'b', generation: 3 };
    for (const [why, extra] of [
      ['not-lost', {}],
      ['off-path', {}],
      ['moved', { 'x-envoy-original-url': 'http://h/mcp' }],
    ] as const) {
      const { ex } = make({ kind: 'relay', pin, why });
      const [h] = await ex.handle(attemptHeaders({ ':authority': 'h', 'mcp-session-id': 'client-1', ...extra }));
      expect(h!.immediate_response, why).to.equal(undefined);
      expect(h!.mode_override, `${why}: relayed (asks for the body)`).to.deep.equal({ request_body_mode: 'BUFFERED' });
    }
  });

  it("relays a request whose session moved again after Envoy started it again, answering with that pod's answer", async () => {
    const pin = { pod: '10.0.2.2:8080', backendSessionId: 'b', generation: 3 };
    const plan = { kind: 'relay', pin, why: 'moved' } as const;
    const { ex, relays, interim } = make(plan);
    const [h] = await ex.handle(attemptHeaders({ ':authority': 'h', 'x-envoy-original-url': 'http://h/mcp', 'mcp-session-id': 'client-1' }));
    expect(h!.mode_override, 'asks for the body').to.deep.equal({ request_body_mode: 'BUFFERED' });
    expect(h!.request_headers!.response!.header_mutation).to.equal(undefined);
    const [r] = await ex.handle(requestBody('{"jsonrpc":"2.0","id":4,"method":"tools/call"}'));
    // The relay runs while Envoy waits for the answer to the body: its timeout is extended for that message too.
    expect(interim, 'one extension per message').to.deep.equal([
      { override_message_timeout: { seconds: '3', nanos: 500_000_000 } },
      { override_message_timeout: { seconds: '3', nanos: 500_000_000 } },
    ]);
    expect(relays[0]).to.deep.include({ plan, method: 'POST' });
    expect(relays[0]!.attempt).to.deep.include({ clientSessionId: 'client-1', path: '/mcp' });
    expect(relays[0]!.body!.toString()).to.contain('tools/call');
    expect(r!.immediate_response!.status.code).to.equal(200);
    expect(r!.immediate_response!.body!.toString()).to.equal('{"r":"ok"}');
    const set = Object.fromEntries(r!.immediate_response!.headers!.set_headers!.map((x) => [x.header.key, x.header.raw_value.toString()]));
    expect(set).to.deep.equal({ 'content-type': 'application/json', 'mcp-session-id': 'client-1' });
    expect(ex.complete).to.equal(true);
  });

  it("answers a relayed GET with an ended SSE stream (the reconnect goes to the session's pod), and a failed relay from the error table", async () => {
    const get = make({ kind: 'relay', why: 'moved', pin: { pod: '10.0.2.2:8080', backendSessionId: 'b', generation: 3 } }, { kind: 'reconnect' });
    const [g] = await get.ex.handle({ ...attemptHeaders({ ':method': 'GET', 'mcp-session-id': 'client-1' }, POD, true) });
    expect(g!.immediate_response!.status.code).to.equal(200);
    const gh = Object.fromEntries(g!.immediate_response!.headers!.set_headers!.map((s) => [s.header.key, s.header.raw_value.toString()]));
    expect(gh).to.deep.equal({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'mcp-session-id': 'client-1' });
    expect(g!.immediate_response!.details).to.equal('mcp_pin_relayed_reconnect');
    expect(get.relays[0]!.method).to.equal('GET');
    const big = make(
      { kind: 'relay', why: 'moved', pin: { pod: '10.0.2.2:8080', backendSessionId: 'b', generation: 3 } },
      { kind: 'failed', code: 'MCP_PIN_RELAY_TOO_LARGE' },
    );
    await big.ex.handle(attemptHeaders({ 'mcp-session-id': 'client-1' }));
    const [r] = await big.ex.handle(requestBody('{}'));
    expect(r!.immediate_response!.status.code).to.equal(502);
    expect(JSON.parse(r!.immediate_response!.body!.toString()).error.message).to.match(/ran .*do not send it again/);
    const cut = make(
      { kind: 'relay', why: 'moved', pin: { pod: '10.0.2.2:8080', backendSessionId: 'b', generation: 3 } },
      { kind: 'failed', code: 'MCP_PIN_RELAY_MAY_HAVE_RUN' },
    );
    await cut.ex.handle(attemptHeaders({ 'mcp-session-id': 'client-1' }));
    const [c] = await cut.ex.handle(requestBody('{}'));
    expect(c!.immediate_response!.status.code).to.equal(502);
    expect(JSON.parse(c!.immediate_response!.body!.toString()).error.message).to.match(/may have run/);
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
      ['MCP_PIN_RECOVERY_REINIT_REFUSED', 404, -32001],
      ['MCP_PIN_RECOVERY_UNAVAILABLE', 503, -32603],
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

  it('rejects, in each phase, every message but the one it waits for', async () => {
    const pin = { pod: '10.0.2.2:8080', backendSessionId: 'b', generation: 3 };
    const refused = async (ex: AttemptExchange, msg: ProcessingRequest): Promise<string | undefined> =>
      ex.handle(msg).then(
        () => undefined,
        (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
      );
    // Waiting for the response (the attempt was sent): neither more request headers nor a body.
    for (const msg of [attemptHeaders({ 'mcp-session-id': 'client-1' }), requestBody('{}')]) {
      const sent = make({ kind: 'send', reinitialized: false, onPath: true, pin: { ...pin, pod: POD } });
      await sent.ex.handle(attemptHeaders({ 'mcp-session-id': 'client-1' }));
      expect(await refused(sent.ex, msg), msg.request).to.equal(`MCP_PIN_PROTOCOL: ${msg.request} not expected in a retry attempt's response phase`);
    }
    // Waiting for the body of a request to relay: not its response headers, nor its headers again.
    for (const msg of [responseHeaders({ ':status': '200' }), attemptHeaders({ 'mcp-session-id': 'client-1' })]) {
      const relay = make({ kind: 'relay', why: 'not-lost', pin });
      await relay.ex.handle(attemptHeaders({ 'mcp-session-id': 'client-1' }));
      expect(await refused(relay.ex, msg), msg.request).to.equal(`MCP_PIN_PROTOCOL: ${msg.request} not expected in a retry attempt's body phase`);
      expect(relay.relays, 'nothing relayed').to.have.length(0);
    }
  });

  it('takes what Envoy left out as the defaults: no path is "/", no method is POST; a message with no phase is named so', async () => {
    const pin = { pod: '10.0.2.2:8080', backendSessionId: 'b', generation: 3 };
    const bare = (h: Record<string, string>): ProcessingRequest => {
      const m = attemptHeaders({ 'mcp-session-id': 'client-1' }, POD, true);
      m.request_headers!.headers!.headers = wireHeaders(h);
      return m;
    };
    const { ex, asked, relays } = make({ kind: 'relay', why: 'not-lost', pin });
    await ex.handle(bare({ 'mcp-session-id': 'client-1' }));
    expect(asked[0]!.path).to.equal('/');
    expect(relays[0]!.method).to.equal('POST');
    const odd = make({ kind: 'unknown' });
    const err = await odd.ex.handle({} as ProcessingRequest).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(err).to.equal("no phase not expected in a retry attempt's request phase");
  });

  it('leaves a 400 of the pod the plan counted on as it is, though 400 is a lost-session status (only its body would say)', async () => {
    const { ex, metrics } = make(
      { kind: 'send', reinitialized: false, onPath: true, pin: { pod: POD, backendSessionId: 'b', generation: 2 } },
      undefined,
      silentLog,
      [404, 400],
    );
    await ex.handle(attemptHeaders({ ':authority': 'h', 'mcp-session-id': 'client-1' }));
    const [r] = await ex.handle(responseHeaders({ ':status': '400' }));
    expect(setOf(r!)).to.deep.equal({ 'mcp-session-id': ['client-1', 'OVERWRITE_IF_EXISTS'] });
    expect((await metrics.registry.getSingleMetric('mcp_pin_requests_total')!.get()).values.find((v) => v.labels.outcome === 'recovered')?.value).to.equal(0);
  });

  it("counts a sent attempt as recovered unless its answer is a lost-session status (a tool's 500 is the session's own answer)", async () => {
    for (const [onPath, status, recovered] of [
      [true, '500', 1],
      [false, '404', 0],
    ] as const) {
      const { ex, metrics } = make({ kind: 'send', reinitialized: true, onPath, pin: { pod: POD, backendSessionId: 'b', generation: 2 } });
      await ex.handle(attemptHeaders({ 'mcp-session-id': 'client-1' }));
      await ex.handle(responseHeaders({ ':status': status }));
      const counted = (await metrics.registry.getSingleMetric('mcp_pin_requests_total')!.get()).values.find((v) => v.labels.outcome === 'recovered')?.value;
      expect(counted, status).to.equal(recovered);
    }
  });

  it('builds the redirect URL only for an origin-form path (a "*" or an absolute path has none)', () => {
    expect(
      redirectLocation([
        [':authority', 'h:1'],
        [':path', '/mcp?a=1'],
      ]),
    ).to.equal('http://h:1/mcp?a=1');
    expect(
      redirectLocation([
        [':authority', 'h:1'],
        [':path', '/mcp'],
        ['x-forwarded-proto', 'https'],
      ]),
    ).to.equal('https://h:1/mcp');
    for (const path of ['*', 'mcp', ''])
      expect(
        redirectLocation([
          [':authority', 'h:1'],
          [':path', path],
        ]),
        path,
      ).to.equal(undefined);
  });
});

describe('AttemptExchange: what it logs (the session by its tag, never its id)', () => {
  const pin = { pod: '10.0.2.2:8080', backendSessionId: 'backend-2', generation: 2 };
  const CLIENT = 'client-session-4e7b19';
  const run = async (plan: RetryPlan, headers: Record<string, string>, status?: string) => {
    const { log, lines } = capturedLog();
    const { ex } = make(plan, undefined, log);
    await ex.handle(attemptHeaders(headers));
    if (status !== undefined) await ex.handle(responseHeaders({ ':status': status }));
    expect(JSON.stringify(lines)).to.not.include(CLIENT);
    return lines;
  };

  it('an attempt it cannot plan: warn, with the pod', async () => {
    const lines = await run({ kind: 'unknown' }, {});
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: LOG_LEVEL.warn, pod: POD, msg: 'retry attempt without a usable session id or pod: sent untouched' });
    // Envoy named no pod: said so.
    const { log, lines: noPod } = capturedLog();
    const { ex } = make({ kind: 'unknown' }, undefined, log);
    const m = attemptHeaders({ 'mcp-session-id': CLIENT });
    delete m.attributes;
    await ex.handle(m);
    expect(noPod[0]).to.include({ pod: 'unknown' });
  });

  it('a retry sent to the recovered session: info, with the pod and whether it was re-initialized', async () => {
    const lines = await run({ kind: 'send', reinitialized: true, onPath: true, pin }, { 'mcp-session-id': CLIENT });
    expect(lines).to.deep.equal([
      { ...lines[0], level: LOG_LEVEL.info, session: sessionTag(CLIENT), pod: POD, reinitialized: true, msg: 'retry sent to the recovered session' },
    ]);
  });

  it('a redirect, a relay: info, with the pod it came from, the one it goes to and the method or why', async () => {
    const redirect = await run({ kind: 'relay', pin, why: 'moved' }, { ':authority': 'h', 'mcp-session-id': CLIENT });
    expect(redirect[0]).to.include({
      level: LOG_LEVEL.info,
      session: sessionTag(CLIENT),
      pod: POD,
      to: pin.pod,
      method: 'POST',
      msg: "redirecting to the session's pod",
    });
    const relay = await run({ kind: 'relay', pin, why: 'moved' }, { 'mcp-session-id': CLIENT });
    expect(relay[0]).to.include({
      level: LOG_LEVEL.info,
      session: sessionTag(CLIENT),
      pod: POD,
      to: pin.pod,
      why: 'moved',
      msg: "relaying the request to the session's pod",
    });
  });

  it('answers that are not what the plan counted on: warn, with the status', async () => {
    const stands = await run({ kind: 'relay', pin, why: 'moved' }, { ':authority': 'h', 'mcp-session-id': CLIENT }, '200');
    expect(stands[1]).to.include({ level: LOG_LEVEL.warn, session: sessionTag(CLIENT), status: 200 });
    expect(stands[1]!.msg).to.match(/^a pod answered a request of a session it does not hold with something other than a refusal/);
    const gone = await run({ kind: 'send', reinitialized: false, onPath: true, pin }, { ':authority': 'h', 'mcp-session-id': CLIENT }, '404');
    expect(gone[1]).to.include({
      level: LOG_LEVEL.warn,
      session: sessionTag(CLIENT),
      status: 404,
      msg: "the session's pod no longer holds it: the request starts again",
    });
  });
});
