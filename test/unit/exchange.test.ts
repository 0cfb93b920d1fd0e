import { expect } from 'chai';
import { ProtocolError } from '../../src/errors.js';
import { Exchange, type ExchangeDeps } from '../../src/extproc/exchange.js';
import { RecentlyUnknown } from '../../src/extproc/recently-unknown.js';
import type { ProcessingResponse } from '../../src/extproc/protocol.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { MAX_INIT_PATH_LENGTH } from '../../src/sessions/store.js';
import { StoreError } from '../../src/errors.js';
import { newMetrics, requestBody, requestHeaders, responseHeaders, silentLog } from './fakes.js';

const cfg = { pinHeader: 'x-mcp-pin-dst', maxInitBodyBytes: 1024, maxSessionIdLength: 64, lostSessionStatuses: [404] };
const INIT = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25' } });
const POST_JSON = { ':method': 'POST', ':path': '/mcp', 'content-type': 'application/json' };

function setHeaders(r: ProcessingResponse): Record<string, string> {
  const c = r.request_headers?.response ?? r.response_headers?.response;
  return Object.fromEntries((c?.header_mutation?.set_headers ?? []).map((s) => [s.header.key, s.header.raw_value.toString()]));
}

function make(over: Partial<ExchangeDeps> = {}): { ex: Exchange; store: MemoryStore; deps: ExchangeDeps } {
  const deps: ExchangeDeps = { store: new MemoryStore({ sessionTtlMs: 60_000 }), cfg, log: silentLog, metrics: newMetrics(), ...over };
  return { ex: new Exchange(deps), store: deps.store as MemoryStore, deps };
}

describe('Exchange', () => {
  it('strips a client pin header and skips the response for plain traffic', async () => {
    const { ex } = make();
    const [r] = await ex.handle(requestHeaders({ ':method': 'GET', ':path': '/', 'x-mcp-pin-dst': '127.0.0.1:6379' }, true));
    expect(r!.request_headers!.response!.header_mutation!.remove_headers).to.deep.equal([
      'x-mcp-pin-dst',
      'x-mcp-pin-client-session',
      'mcp-pin-redirected-session',
    ]);
    expect(r!.request_headers!.response!.clear_route_cache).to.equal(true);
    expect(r!.mode_override).to.deep.equal({ response_header_mode: 'SKIP' });
  });

  it('asks for the body of a JSON POST without session, and records an initialize with the pod Envoy reported', async () => {
    const { ex, store } = make();
    const [h] = await ex.handle(requestHeaders(POST_JSON));
    expect(h!.mode_override, 'the body, then the response').to.deep.equal({ request_body_mode: 'BUFFERED', response_header_mode: 'SEND' });
    await ex.handle(requestBody(INIT));
    const [r] = await ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'S1' }, { 'upstream.address': '10.1.2.3:8080' }));
    expect(r!.response_headers).to.deep.equal({ response: {} });
    const rec = await store.load('S1');
    expect(rec).to.include({ pod: '10.1.2.3:8080', backendSessionId: 'S1', generation: 1, initPath: '/mcp' });
    expect(rec!.initBody!.toString()).to.equal(INIT);
  });

  it('pins an initialize whose body is over the limit, without keeping the body', async () => {
    const { ex, store } = make();
    await ex.handle(requestHeaders(POST_JSON));
    const big = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { pad: 'x'.repeat(2000) } });
    await ex.handle(requestBody(big));
    await ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'S2' }, { 'upstream.address': '10.1.2.3:8080' }));
    const rec = await store.load('S2');
    expect(rec!.pod).to.equal('10.1.2.3:8080');
    expect(rec!.initBody).to.equal(null);
  });

  it('does not pin non-initialize bodies, failed initializes, or stateless servers', async () => {
    const cases: [string, Record<string, string>][] = [
      [JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), { ':status': '200', 'mcp-session-id': 'A' }],
      [INIT, { ':status': '500', 'mcp-session-id': 'B' }],
      [INIT, { ':status': '200' }],
      ['{not json initialize', { ':status': '200', 'mcp-session-id': 'C' }],
    ];
    for (const [body, resp] of cases) {
      const { ex, store } = make();
      await ex.handle(requestHeaders(POST_JSON));
      await ex.handle(requestBody(body));
      const [r] = await ex.handle(responseHeaders(resp, { 'upstream.address': '10.0.0.1:1' }));
      expect(r!.immediate_response).to.equal(undefined);
      expect(store.size, body).to.equal(0);
    }
  });

  it('fails an initialize loudly when Envoy reports no usable upstream address', async () => {
    for (const attrs of [{}, { 'upstream.address': 'mcp-service:80' }] as Record<string, string>[]) {
      const { ex, store } = make();
      await ex.handle(requestHeaders(POST_JSON));
      await ex.handle(requestBody(INIT));
      const [r] = await ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'S' }, attrs));
      expect(r!.immediate_response!.status.code).to.equal(502);
      expect(store.size).to.equal(0);
    }
  });

  it("never lets an initialize answer take another session's id: 502, the other session keeps its pin and its initialize", async () => {
    const { ex, store, deps } = make();
    await store.create('victim', { pod: '10.1.2.3:8080', backendSessionId: 'victim', initBody: Buffer.from(INIT), initPath: '/mcp' });
    await store.replacePin('victim', 1, '10.1.2.4:8080', 'backend-2');
    await ex.handle(requestHeaders(POST_JSON));
    await ex.handle(requestBody(INIT.replace('2025-11-25', '2025-06-18')));
    // A pod (buggy, or compromised) answers with the victim's id.
    const [r] = await ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'victim' }, { 'upstream.address': '10.1.2.9:8080' }));
    expect(r!.immediate_response!.status.code).to.equal(502);
    expect(r!.immediate_response!.details).to.equal('mcp_pin_session_id_taken');
    expect(await store.lookup('victim')).to.deep.equal({ pod: '10.1.2.4:8080', backendSessionId: 'backend-2', generation: 2 });
    expect((await store.load('victim'))!.initBody!.toString()).to.equal(INIT);
    expect(await deps.metrics.registry.getSingleMetricAsString('mcp_pin_requests_total')).to.match(/outcome="session_id_taken"} 1/);
  });

  it('answers a request of a known session in one message: its pod in the pin header, no body, no response phase', async () => {
    const { ex, store } = make();
    await store.create('K', { pod: '10.0.0.7:9000', backendSessionId: 'K', initBody: Buffer.from(INIT) });
    const [r] = await ex.handle(requestHeaders({ ...POST_JSON, 'mcp-session-id': 'K', 'x-mcp-pin-dst': '1.2.3.4:5', 'x-mcp-pin-client-session': 'other' }));
    expect(setHeaders(r!)).to.deep.equal({ 'x-mcp-pin-dst': '10.0.0.7:9000' });
    expect(r!.request_headers!.response!.header_mutation!.remove_headers).to.deep.equal(['x-mcp-pin-client-session']);
    expect(r!.request_headers!.response!.clear_route_cache).to.equal(true);
    expect(r!.mode_override).to.deep.equal({ response_header_mode: 'SKIP' });
    expect(ex.complete).to.equal(true);
  });

  it('routes a known session to its pod under its backend id when that differs, in one message: the client id rides along for Envoy to put back', async () => {
    const { ex, store } = make();
    await store.create('C', { pod: '10.0.0.7:9000', backendSessionId: 'C', initBody: null });
    await store.replacePin('C', 1, '10.0.0.8:9000', 'B2');
    const [r] = await ex.handle(requestHeaders({ ':method': 'GET', ':path': '/mcp', 'mcp-session-id': 'C', 'x-mcp-pin-dst': '1.2.3.4:5' }, true));
    expect(setHeaders(r!)).to.deep.equal({ 'x-mcp-pin-dst': '10.0.0.8:9000', 'mcp-session-id': 'B2', 'x-mcp-pin-client-session': 'C' });
    expect(r!.request_headers!.response!.clear_route_cache).to.equal(true);
    // The pinned routes' response_headers_to_add put x-mcp-pin-client-session back on the answer.
    expect(r!.mode_override, 'no response phase').to.deep.equal({ response_header_mode: 'SKIP' });
    expect(ex.complete).to.equal(true);
  });

  it('a DELETE of a session known by another backend id asks for its answer, and puts the client id back there too', async () => {
    const { ex, store } = make();
    await store.create('C', { pod: '10.0.0.7:9000', backendSessionId: 'C', initBody: null, initPath: '/mcp' });
    await store.replacePin('C', 1, '10.0.0.8:9000', 'B2');
    const [r] = await ex.handle(requestHeaders({ ':method': 'DELETE', ':path': '/mcp', 'mcp-session-id': 'C' }, true));
    expect(setHeaders(r!)).to.deep.equal({ 'x-mcp-pin-dst': '10.0.0.8:9000', 'mcp-session-id': 'B2', 'x-mcp-pin-client-session': 'C' });
    expect(r!.mode_override).to.deep.equal({ response_header_mode: 'SEND' });
    const [resp] = await ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'B2' }, { 'upstream.address': '10.0.0.8:9000' }));
    const set = resp!.response_headers!.response!.header_mutation!.set_headers!;
    expect(set.map((s) => [s.header.key, s.header.raw_value.toString(), s.append_action])).to.deep.equal([['mcp-session-id', 'C', 'OVERWRITE_IF_EXISTS']]);
    expect(await store.lookup('C'), 'ended').to.equal(null);
  });

  it('refuses a request with more than one session id (two header lines, or a list) with 400, touching no pin', async () => {
    for (const headers of [
      [
        ['mcp-session-id', 'K'],
        ['mcp-session-id', 'x'],
      ],
      [['mcp-session-id', 'K, x']],
      [['mcp-session-id', 'K,K']],
    ]) {
      const { ex, store } = make();
      await store.create('K', { pod: '10.0.0.7:9000', backendSessionId: 'K', initBody: null });
      let looked = false;
      const lookup = store.lookup.bind(store);
      store.lookup = async (id) => {
        looked = true;
        return lookup(id);
      };
      const msg = requestHeaders({ ':method': 'POST', ':path': '/mcp' });
      msg.request_headers!.headers!.headers!.push(...headers.map(([key, v]) => ({ key: key!, raw_value: Buffer.from(v!) })));
      const [r] = await ex.handle(msg);
      expect(r!.immediate_response!.status.code, JSON.stringify(headers)).to.equal(400);
      expect(JSON.parse(r!.immediate_response!.body!.toString()).error.code).to.equal(-32600);
      expect(looked).to.equal(false);
      expect(ex.complete).to.equal(true);
      expect(await store.load('K')).to.include({ generation: 1, pod: '10.0.0.7:9000' });
    }
  });

  it('answers invalid session ids 404 itself: never looked up, never sent to a pod', async () => {
    for (const sid of ['', 'has space', 'tab\there', 'x'.repeat(65), 'ünï']) {
      let looked = false;
      const store = new MemoryStore({ sessionTtlMs: 1000 });
      store.lookup = async () => {
        looked = true;
        return null;
      };
      const ex = new Exchange({ store, cfg, log: silentLog, metrics: newMetrics() });
      const [r] = await ex.handle(requestHeaders({ ':method': 'GET', ':path': '/', 'mcp-session-id': sid }, true));
      expect(looked, JSON.stringify(sid)).to.equal(false);
      expect(r!.immediate_response!.status.code, JSON.stringify(sid)).to.equal(404);
      expect(JSON.parse(r!.immediate_response!.body!.toString()).error).to.deep.equal({ code: -32001, message: 'Session not found' });
      expect(ex.complete).to.equal(true);
    }
  });

  it('remembers an id whose search ended in 404: a repeat is answered 404 after a store lookup, until the entry expires; a stored session wins', async () => {
    let now = 1_000;
    const recentlyUnknown = new RecentlyUnknown(5_000, 100, () => now);
    // The store remembers it too (for every replica), on the same clock.
    const { store, deps } = make({ recentlyUnknown, store: new MemoryStore({ sessionTtlMs: 60_000, now: () => now }) });
    const send = async (sid: string): Promise<ProcessingResponse> =>
      (await new Exchange(deps).handle(requestHeaders({ ...POST_JSON, 'mcp-session-id': sid })))[0]!;
    // First time: the search (the service route), then its 404.
    const ex = new Exchange(deps);
    const [first] = await ex.handle(requestHeaders({ ...POST_JSON, 'mcp-session-id': 'gone' }));
    expect(first!.immediate_response).to.equal(undefined);
    await ex.handle(responseHeaders({ ':status': '404' }, {}));
    // Then: answered here.
    expect((await send('gone')).immediate_response!.status.code).to.equal(404);
    // A search that ended otherwise (a pod down: 503) is not remembered.
    const ex2 = new Exchange(deps);
    await ex2.handle(requestHeaders({ ...POST_JSON, 'mcp-session-id': 'maybe' }));
    await ex2.handle(responseHeaders({ ':status': '503' }, {}));
    expect((await send('maybe')).immediate_response).to.equal(undefined);
    // A session recorded meanwhile (here: an initialize) is routed, not refused.
    await store.create('gone', { pod: '10.0.0.9:80', backendSessionId: 'gone', initBody: null });
    expect(setHeaders(await send('gone'))).to.deep.equal({ 'x-mcp-pin-dst': '10.0.0.9:80' });
    await store.remove('gone');
    expect((await send('gone')).immediate_response!.status.code).to.equal(404);
    now += 5_001;
    expect((await send('gone')).immediate_response, 'expired: searched again').to.equal(undefined);
  });

  it('remembers a search that ended in 404 only at the path it ran at: a wrong path never makes a session unknown at its own path', async () => {
    // Found by the protocol simulation: after a store flush, one request to a wrong path (every pod's router
    // answers 404) made the session unknown for --unknown-session-cache-ms, and its real requests got 404.
    for (const replicas of ['one', 'two'] as const) {
      const store = new MemoryStore({ sessionTtlMs: 60_000 });
      const replica = (): ExchangeDeps => ({ store, cfg, log: silentLog, metrics: newMetrics(), recentlyUnknown: new RecentlyUnknown(5_000) });
      const a = replica();
      const b = replicas === 'one' ? a : replica();
      const typo = new Exchange(a);
      await typo.handle(requestHeaders({ ...POST_JSON, ':path': '/typo', 'mcp-session-id': 'lost' }));
      await typo.handle(responseHeaders({ ':status': '404' }, {}));
      const at = async (path: string) => (await new Exchange(b).handle(requestHeaders({ ...POST_JSON, ':path': path, 'mcp-session-id': 'lost' })))[0]!;
      expect((await at('/mcp')).immediate_response, `${replicas}: its own path is searched`).to.equal(undefined);
      expect((await at('/typo')).immediate_response!.status.code, `${replicas}: the wrong path is remembered`).to.equal(404);
      expect((await at('/typo?x=1')).immediate_response!.status.code, `${replicas}: whatever the query`).to.equal(404);
    }
  });

  it("answers a made-up id another replica searched for moments ago without searching again (the store's memory)", async () => {
    const store = new MemoryStore({ sessionTtlMs: 60_000 });
    const replica = (): ExchangeDeps => ({ store, cfg, log: silentLog, metrics: newMetrics(), recentlyUnknown: new RecentlyUnknown(5_000) });
    const [a, b] = [replica(), replica()];
    const ex = new Exchange(a);
    await ex.handle(requestHeaders({ ...POST_JSON, 'mcp-session-id': 'made-up' }));
    await ex.handle(responseHeaders({ ':status': '404' }, {}));
    const [r] = await new Exchange(b).handle(requestHeaders({ ...POST_JSON, 'mcp-session-id': 'made-up' }));
    expect(r!.immediate_response!.status.code, 'the other replica answers it itself').to.equal(404);
    expect(await b.metrics.registry.getSingleMetricAsString('mcp_pin_requests_total')).to.match(/outcome="unknown_session_remembered"} 1/);
  });

  it('answers 503 with a JSON-RPC error when the store fails, instead of guessing a route', async () => {
    const store = new MemoryStore({ sessionTtlMs: 1000 });
    store.lookup = async () => {
      throw new StoreError('MCP_PIN_STORE_TIMEOUT', 'slow');
    };
    const ex = new Exchange({ store, cfg, log: silentLog, metrics: newMetrics() });
    const [r] = await ex.handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 'S' }));
    expect(r!.immediate_response!.status.code).to.equal(503);
    expect(JSON.parse(r!.immediate_response!.body!.toString()).error.code).to.equal(-32603);
  });

  it('forgets a session after a successful DELETE and after a DELETE to a dead pod, and asks for that response', async () => {
    for (const [status, attrs] of [
      ['200', {}],
      ['404', {}],
      ['503', { 'response.flags': 0x20 }],
    ] as const) {
      const { ex, store } = make();
      await store.create('D', { pod: '10.0.0.7:9000', backendSessionId: 'D', initBody: Buffer.from(INIT), initPath: '/mcp' });
      const [h] = await ex.handle(requestHeaders({ ':method': 'DELETE', ':path': '/mcp?x=1', 'mcp-session-id': 'D' }, true));
      expect(h!.mode_override, 'response phase wanted').to.deep.equal({ response_header_mode: 'SEND' });
      await ex.handle(responseHeaders({ ':status': status }, attrs));
      expect(await store.lookup('D'), status).to.equal(null);
    }
  });

  it("changes nothing for a DELETE off the session's MCP path (the pod's router answered), and without a known path ends it only on a 2xx", async () => {
    for (const [path, initPath, status, removed] of [
      ['/typo', '/mcp', '404', false],
      ['/typo', '/mcp', '200', false],
      ['/mcp/', '/mcp', '404', false],
      ['/mcp', null, '404', false],
      ['/mcp', null, '200', true],
    ] as const) {
      const { ex, store } = make();
      await store.create('D', { pod: '10.0.0.7:9000', backendSessionId: 'D', initBody: Buffer.from(INIT), initPath });
      await ex.handle(requestHeaders({ ':method': 'DELETE', ':path': path, 'mcp-session-id': 'D' }, true));
      await ex.handle(responseHeaders({ ':status': status }, {}));
      expect((await store.lookup('D')) === null, `${path} (session at ${initPath}) answered ${status}`).to.equal(removed);
    }
  });

  it('keeps a session whose DELETE failed otherwise (a 503 that was not a connection failure, a 500)', async () => {
    for (const [status, attrs] of [
      ['503', { 'response.flags': 0 }],
      ['500', {}],
    ] as const) {
      // At its MCP path, and where that path is not known.
      for (const initPath of ['/mcp', null]) {
        const { ex, store } = make();
        await store.create('N', { pod: '10.0.0.7:9000', backendSessionId: 'N', initBody: null, initPath });
        await ex.handle(requestHeaders({ ':method': 'DELETE', ':path': '/mcp', 'mcp-session-id': 'N' }, true));
        const [r] = await ex.handle(responseHeaders({ ':status': status }, attrs));
        // The client's own id is the one the pod knows: nothing on the answer changes.
        expect(r!.response_headers, status).to.deep.equal({ response: {} });
        expect(await store.lookup('N'), `${status} at ${initPath}`).to.not.equal(null);
      }
    }
  });

  describe("a request Envoy started again after mcp-pin's redirect (mcp-pin-redirected-session)", () => {
    it('names the session by the redirect, reads the shared store, and puts the backend id back on the request', async () => {
      const { ex, store } = make();
      await store.create('C', { pod: '10.0.0.1:80', backendSessionId: 'C', initBody: null });
      // Recovered meanwhile: another pod, another backend id.
      await store.replacePin('C', 1, '10.0.0.2:80', 'B2');
      const [r] = await ex.handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 'B1', 'mcp-pin-redirected-session': 'C' }));
      expect(setHeaders(r!)).to.deep.equal({ 'x-mcp-pin-dst': '10.0.0.2:80', 'mcp-session-id': 'B2', 'x-mcp-pin-client-session': 'C' });
      expect(r!.request_headers!.response!.header_mutation!.remove_headers).to.deep.equal(['mcp-pin-redirected-session']);
      // Envoy puts the client's id back on the answer (x-mcp-pin-client-session): no response phase.
      expect(r!.mode_override).to.deep.equal({ response_header_mode: 'SKIP' });
    });

    it('under its own id: that id goes back on the request, and no response phase', async () => {
      const { ex, store } = make();
      await store.create('C', { pod: '10.0.0.1:80', backendSessionId: 'C', initBody: null });
      const [r] = await ex.handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 'B-old', 'mcp-pin-redirected-session': 'C' }));
      expect(setHeaders(r!)).to.deep.equal({ 'x-mcp-pin-dst': '10.0.0.1:80', 'mcp-session-id': 'C' });
      expect(r!.request_headers!.response!.header_mutation!.remove_headers).to.deep.equal(['x-mcp-pin-client-session', 'mcp-pin-redirected-session']);
      expect(r!.mode_override).to.deep.equal({ response_header_mode: 'SKIP' });
      expect(ex.complete).to.equal(true);
    });

    it('a session the store no longer knows: searched for under the id the redirect names', async () => {
      const { ex } = make();
      const [r] = await ex.handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 'B-old', 'mcp-pin-redirected-session': 'C' }));
      expect(setHeaders(r!)).to.deep.equal({ 'mcp-session-id': 'C' });
      expect(r!.request_headers!.response!.header_mutation!.remove_headers).to.include('mcp-pin-redirected-session');
      // Routed afresh (the service route), and its answer wanted: a 2xx adopts the session.
      expect(r!.request_headers!.response!.clear_route_cache).to.equal(true);
      expect(r!.mode_override).to.deep.equal({ response_header_mode: 'SEND' });
    });

    it('an invalid id in it is refused like an invalid mcp-session-id', async () => {
      const { ex } = make();
      const [r] = await ex.handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 'C', 'mcp-pin-redirected-session': 'bad id\u0001' }));
      expect(r!.immediate_response?.details).to.equal('mcp_pin_invalid_session_id');
    });
  });

  it('drops a stored pin outside the allowlist and never routes there', async () => {
    const { PinAllowlist } = await import('../../src/pin-allowlist.js');
    const { ex, store } = make({ allowlist: new PinAllowlist('10.0.0.0/8') });
    await store.create('P', { pod: '127.0.0.1:6379', backendSessionId: 'P', initBody: null });
    const [r] = await ex.handle(requestHeaders({ ':method': 'GET', ':path': '/mcp', 'mcp-session-id': 'P' }, true));
    expect(setHeaders(r!)).to.deep.equal({});
    expect(r!.request_headers!.response!.header_mutation!.remove_headers).to.deep.equal([
      'x-mcp-pin-dst',
      'x-mcp-pin-client-session',
      'mcp-pin-redirected-session',
    ]);
    expect(await store.lookup('P')).to.equal(null);
  });

  it('refuses to pin an initialize to a pod outside the allowlist', async () => {
    const { PinAllowlist } = await import('../../src/pin-allowlist.js');
    const { ex, store } = make({ allowlist: new PinAllowlist('10.0.0.0/8') });
    await ex.handle(requestHeaders(POST_JSON));
    await ex.handle(requestBody(INIT));
    const [r] = await ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'S' }, { 'upstream.address': '127.0.0.1:9901' }));
    expect(r!.immediate_response!.status.code).to.equal(502);
    expect(store.size).to.equal(0);
  });

  it('adopts an unknown session when a pod answers 2xx naming it, never on 404, never unproven, never over an existing record', async () => {
    for (const [status, echoed, adopted] of [
      ['200', 'U', true],
      ['202', 'U', true],
      ['404', 'U', false],
      ['400', 'U', false],
      // A server that ignores session ids: 2xx, but it does not name the session.
      ['200', undefined, false],
      ['200', 'other', false],
    ] as const) {
      const { ex, store } = make();
      await ex.handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 'U', 'content-type': 'application/json' }));
      await ex.handle(responseHeaders({ ':status': status, ...(echoed ? { 'mcp-session-id': echoed } : {}) }, { 'upstream.address': '10.0.0.5:8080' }));
      expect((await store.lookup('U')) !== null, `${status} ${echoed}`).to.equal(adopted);
      // Adopted with the path it was found on: its MCP path from now on.
      if (adopted) expect((await store.load('U'))!.initPath).to.equal('/mcp');
    }
    const { store } = make();
    await store.create('E', { pod: '10.0.0.9:1', backendSessionId: 'E', initBody: null });
    expect(await store.adopt('E', '10.0.0.5:8080')).to.equal(false);
    expect((await store.lookup('E'))!.pod).to.equal('10.0.0.9:1');
    // A DELETE that a pod answered 2xx ended the session there: nothing to adopt.
    const del = make();
    await del.ex.handle(requestHeaders({ ':method': 'DELETE', ':path': '/mcp', 'mcp-session-id': 'U' }, true));
    await del.ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'U' }, { 'upstream.address': '10.0.0.5:8080' }));
    expect(await del.store.lookup('U')).to.equal(null);
    // Found at a path of the longest length kept: adopted with it; one longer: adopted without a path.
    for (const [path, kept] of [
      [`/${'p'.repeat(MAX_INIT_PATH_LENGTH - 1)}`, true],
      [`/${'p'.repeat(MAX_INIT_PATH_LENGTH)}`, false],
    ] as const) {
      const x = make();
      await x.ex.handle(requestHeaders({ ':method': 'GET', ':path': path, 'mcp-session-id': 'U' }, true));
      await x.ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'U' }, { 'upstream.address': '10.0.0.5:8080' }));
      expect((await x.store.load('U'))!.initPath, `${path.length}`).to.equal(kept ? path : null);
    }
  });

  it('keeps an initialize body of maxInitBodyBytes exactly, not one byte more', async () => {
    for (const extra of [0, 1]) {
      const { ex, store } = make();
      await ex.handle(requestHeaders(POST_JSON));
      const shell = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { pad: '' } });
      const body = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { pad: 'x'.repeat(cfg.maxInitBodyBytes - shell.length + extra) } });
      await ex.handle(requestBody(body));
      await ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'S' }, { 'upstream.address': '10.1.2.3:8080' }));
      expect((await store.load('S'))!.initBody === null, `${body.length} bytes`).to.equal(extra === 1);
    }
  });

  it('tells the stream when nothing more will come', async () => {
    const a = make().ex;
    await a.handle(requestHeaders({ ':method': 'GET', ':path': '/' }, true));
    expect(a.complete, 'passthrough skips the response').to.equal(true);
    const b = make().ex;
    await b.handle(requestHeaders(POST_JSON));
    expect(b.complete, 'body still to come').to.equal(false);
    await b.handle(requestBody('{}'));
    expect(b.complete, 'response headers still to come').to.equal(false);
    await b.handle(responseHeaders({ ':status': '200' }));
    expect(b.complete).to.equal(true);
  });

  it('passes through a reply Envoy made before ext_proc saw the request (response_headers first)', async () => {
    const { ex } = make();
    const [r] = await ex.handle(responseHeaders({ ':status': '413' }));
    expect(r).to.deep.equal({ response_headers: { response: {} } });
    expect(ex.complete).to.equal(true);
  });

  it('rejects out-of-order messages with a ProtocolError', async () => {
    const bad = [
      [requestBody('x')],
      [responseHeaders({ ':status': '200' }), requestHeaders({ ':method': 'GET' })],
      [requestHeaders({ ':method': 'GET' }), requestHeaders({ ':method': 'GET' })],
      [requestHeaders({ ':path': '/' })],
      [{} as never],
    ];
    for (const seq of bad) {
      const { ex } = make();
      let err: unknown;
      try {
        for (const m of seq) await ex.handle(m);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(seq)).to.be.instanceOf(ProtocolError);
    }
  });
});

describe('Exchange: what is read as a possible initialize, and the unknown-id memory at its edges', () => {
  it('asks for the body of a POST with a JSON body only: any other method, a POST without a body or with another type passes through', async () => {
    for (const [h, endOfStream] of [
      [{ ':method': 'GET', ':path': '/mcp', 'content-type': 'application/json' }, false],
      [{ ':method': 'PUT', ':path': '/mcp', 'content-type': 'application/json' }, false],
      [POST_JSON, true],
      [{ ':method': 'POST', ':path': '/mcp', 'content-type': 'text/plain' }, false],
      [{ ':method': 'POST', ':path': '/mcp' }, false],
    ] as const) {
      const { ex, deps } = make();
      const [r] = await ex.handle(requestHeaders(h, endOfStream));
      expect(r!.mode_override, JSON.stringify(h)).to.deep.equal({ response_header_mode: 'SKIP' });
      expect(ex.complete, JSON.stringify(h)).to.equal(true);
      expect(await deps.metrics.registry.getSingleMetricAsString('mcp_pin_requests_total')).to.match(/outcome="passthrough"} 1/);
    }
  });

  const unknownMetric = async (deps: ExchangeDeps, what: string) =>
    (await deps.metrics.registry.getSingleMetric('mcp_pin_ignored_errors_total')!.get()).values.find((v) => v.labels.op === what)?.value ?? 0;
  const search = async (deps: ExchangeDeps, sid: string, status: string): Promise<void> => {
    const ex = new Exchange(deps);
    await ex.handle(requestHeaders({ ...POST_JSON, 'mcp-session-id': sid }));
    await ex.handle(responseHeaders({ ':status': status }, {}));
  };

  it('with --unknown-session-cache-ms 0 remembers nothing: the store is neither told nor asked', async () => {
    const { store, deps } = make({ recentlyUnknown: new RecentlyUnknown(0) });
    let told = 0;
    let asked = 0;
    store.rememberUnknown = async () => void told++;
    store.isRememberedUnknown = async () => {
      asked++;
      return true;
    };
    await search(deps, 'gone', '404');
    const [r] = await new Exchange(deps).handle(requestHeaders({ ...POST_JSON, 'mcp-session-id': 'gone' }));
    expect(r!.immediate_response, 'searched again').to.equal(undefined);
    expect([told, asked]).to.deep.equal([0, 0]);
  });

  it('a store that cannot say whether an id was searched for is no reason to refuse it: the search runs, counted as ignored', async () => {
    const { store, deps } = make({ recentlyUnknown: new RecentlyUnknown(5_000) });
    store.isRememberedUnknown = () => Promise.reject(new StoreError('MCP_PIN_STORE_UNAVAILABLE', 'down'));
    const [r] = await new Exchange(deps).handle(requestHeaders({ ...POST_JSON, 'mcp-session-id': 'never-seen' }));
    expect(r!.immediate_response).to.equal(undefined);
    expect(r!.mode_override).to.deep.equal({ response_header_mode: 'SEND' });
    expect(await unknownMetric(deps, 'check_unknown_session')).to.equal(1);
  });

  it('a store that cannot keep a searched-for id: this replica still remembers it, counted as ignored', async () => {
    const { store, deps } = make({ recentlyUnknown: new RecentlyUnknown(5_000) });
    store.rememberUnknown = () => Promise.reject(new StoreError('MCP_PIN_STORE_UNAVAILABLE', 'down'));
    store.isRememberedUnknown = async () => false;
    await search(deps, 'gone', '404');
    expect(await unknownMetric(deps, 'remember_unknown_session')).to.equal(1);
    const [r] = await new Exchange(deps).handle(requestHeaders({ ...POST_JSON, 'mcp-session-id': 'gone' }));
    expect(r!.immediate_response!.status.code).to.equal(404);
  });
});

describe('store errors are counted under the store call that failed', () => {
  const errors = async (deps: ExchangeDeps) =>
    (await deps.metrics.registry.getSingleMetric('mcp_pin_store_errors_total')!.get()).values.filter((v) => v.value > 0).map((v) => [v.labels, v.value]);

  it('an initialize the store could not record counts op="create"', async () => {
    const { ex, store, deps } = make();
    store.create = () => Promise.reject(new StoreError('MCP_PIN_STORE_TIMEOUT', 'slow'));
    await ex.handle(requestHeaders(POST_JSON));
    await ex.handle(requestBody(INIT));
    const [r] = await ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'S9' }, { 'upstream.address': '10.1.2.3:8080' }));
    expect(r!.immediate_response?.status.code).to.equal(503);
    expect(await errors(deps)).to.deep.equal([[{ op: 'create', code: 'MCP_PIN_STORE_TIMEOUT' }, 1]]);
  });

  it('a record the store dropped as corrupt counts op and code', async () => {
    const { ex, store, deps } = make();
    store.lookup = () => Promise.reject(new StoreError('MCP_PIN_STORE_CORRUPT', 'not a session record'));
    await ex.handle(requestHeaders({ ...POST_JSON, 'mcp-session-id': 'odd' }));
    expect(await errors(deps)).to.deep.equal([[{ op: 'lookup', code: 'MCP_PIN_STORE_CORRUPT' }, 1]]);
  });

  it('a DELETE (which reads the full record) counts op="load"; any other request op="lookup"', async () => {
    const count = async (deps: ExchangeDeps, op: string): Promise<number> =>
      (await deps.metrics.registry.getSingleMetric('mcp_pin_store_errors_total')!.get()).values.find(
        (v) => v.labels.op === op && v.labels.code === 'MCP_PIN_STORE_UNAVAILABLE',
      )?.value ?? 0;
    const down = (): Promise<never> => Promise.reject(new StoreError('MCP_PIN_STORE_UNAVAILABLE', 'down'));
    const del = make();
    del.store.load = down;
    const [d] = await del.ex.handle(requestHeaders({ ':method': 'DELETE', ':path': '/mcp', 'mcp-session-id': 's' }, true));
    expect(d!.immediate_response?.status.code).to.equal(503);
    expect(await count(del.deps, 'load')).to.equal(1);
    expect(await count(del.deps, 'lookup')).to.equal(0);
    const post = make();
    post.store.lookup = down;
    await post.ex.handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 's' }));
    expect(await count(post.deps, 'lookup')).to.equal(1);
    expect(await count(post.deps, 'load')).to.equal(0);
  });
});
