/**
 * Issue 29: what mcp-pin keeps of the state a client sets in its session
 * (session-state.ts), the requests that set it, the answers that accept it,
 * and the recorder that keeps a change once the pod accepted it.
 */
import { expect } from 'chai';
import type { SessionStore } from '../../src/sessions/store.js';
import type { Recoverer, StateCatchUp } from '../../src/recovery/http-recoverer.js';
import { StoreError } from '../../src/errors.js';
import { sessionTag } from '../../src/log.js';
import { capturedLog, LOG_LEVEL } from './fakes.js';
import { StateRecorder } from '../../src/extproc/state-recorder.js';
import {
  EMPTY_STATE,
  MAX_SUBSCRIPTIONS,
  answerTo,
  applyChange,
  decodeState,
  encodeState,
  parseStateRequest,
  replayRequests,
  type SessionState,
} from '../../src/session-state.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { newMetrics, requestBody, requestHeaders, responseHeaders, silentLog } from './fakes.js';

const body = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));

describe('session state (issue 29)', () => {
  it('keeps the state, not a log: an unsubscribe cancels its subscribe, the last level wins, repeats change nothing', () => {
    let s: SessionState = EMPTY_STATE;
    const step = (c: Parameters<typeof applyChange>[1]): string => {
      const r = applyChange(s, c);
      s = r.state;
      return r.result;
    };
    expect(step({ op: 'subscribe', uri: 'a://1' })).to.equal('kept');
    expect(step({ op: 'subscribe', uri: 'a://2' })).to.equal('kept');
    expect(step({ op: 'subscribe', uri: 'a://1' })).to.equal('unchanged');
    expect(step({ op: 'unsubscribe', uri: 'a://1' })).to.equal('kept');
    expect(step({ op: 'unsubscribe', uri: 'a://9' })).to.equal('unchanged');
    expect(step({ op: 'setLevel', level: 'debug' })).to.equal('kept');
    expect(step({ op: 'setLevel', level: 'error' })).to.equal('kept');
    expect(s).to.deep.equal({ level: 'error', subscriptions: ['a://2'] });
    expect(replayRequests(s)).to.deep.equal([
      { method: 'logging/setLevel', params: { level: 'error' } },
      { method: 'resources/subscribe', params: { uri: 'a://2' } },
    ]);
    expect(decodeState(encodeState(s))).to.deep.equal(s);
    expect(encodeState(EMPTY_STATE), 'nothing stored for no state').to.equal(null);
  });

  it(`keeps at most ${MAX_SUBSCRIPTIONS} subscriptions and 64 KiB of their URIs: past either, a subscribe is not kept (over_limit) and the state is unchanged`, () => {
    let s: SessionState = EMPTY_STATE;
    for (let i = 0; i < MAX_SUBSCRIPTIONS; i++) s = applyChange(s, { op: 'subscribe', uri: `r://${i}` }).state;
    const over = applyChange(s, { op: 'subscribe', uri: 'r://one-more' });
    expect(over.result).to.equal('over_limit');
    expect(over.state).to.equal(s);
    // Bytes: long URIs reach 64 KiB before the count does.
    let big: SessionState = EMPTY_STATE;
    let result = 'kept';
    for (let i = 0; result === 'kept'; i++) {
      const r = applyChange(big, { op: 'subscribe', uri: `r://${i}/${'x'.repeat(2000)}` });
      big = r.state;
      result = r.result;
    }
    expect(result).to.equal('over_limit');
    expect(big.subscriptions.reduce((n, u) => n + Buffer.byteLength(u), 0)).to.be.at.most(64 * 1024);
    expect(big.subscriptions.length).to.be.lessThan(MAX_SUBSCRIPTIONS);
  });

  it('reads a stored state it cannot use as none (a bad state never costs the session), and drops unknown levels', () => {
    for (const raw of ['{', '[]', '{"l":"loud","s":"x"}', '"x"', '']) expect(decodeState(raw), raw).to.deep.equal({ level: null, subscriptions: [] });
    expect(decodeState('{"l":"info","s":["a://1",7,""]}')).to.deep.equal({ level: 'info', subscriptions: ['a://1'] });
  });

  it('understands the three state-setting requests and nothing else (malformed, batches, unknown levels, long URIs)', () => {
    expect(parseStateRequest(body({ jsonrpc: '2.0', id: 3, method: 'resources/subscribe', params: { uri: 'file:///a' } }))).to.deep.equal({
      id: 3,
      change: { op: 'subscribe', uri: 'file:///a' },
    });
    expect(parseStateRequest(body({ jsonrpc: '2.0', id: 'x', method: 'resources/unsubscribe', params: { uri: 'file:///a' } }))).to.deep.equal({
      id: 'x',
      change: { op: 'unsubscribe', uri: 'file:///a' },
    });
    expect(parseStateRequest(body({ jsonrpc: '2.0', id: 4, method: 'logging/setLevel', params: { level: 'warning' } }))).to.deep.equal({
      id: 4,
      change: { op: 'setLevel', level: 'warning' },
    });
    for (const bad of [
      Buffer.from('{'),
      body([{ jsonrpc: '2.0', id: 1, method: 'logging/setLevel', params: { level: 'info' } }]),
      body({ jsonrpc: '2.0', id: 1, method: 'logging/setLevel', params: { level: 'loud' } }),
      body({ jsonrpc: '2.0', method: 'logging/setLevel', params: { level: 'info' } }),
      body({ jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'x'.repeat(2049) } }),
      body({ jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: {} }),
      body({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } }),
    ]) {
      expect(parseStateRequest(bad), bad.toString().slice(0, 60)).to.equal(undefined);
    }
  });

  it("reads the pod's answer to one request id, JSON or SSE: a result accepts, an error refuses, anything else says nothing", () => {
    expect(answerTo(3, body({ jsonrpc: '2.0', id: 3, result: {} }), 'application/json')).to.equal('accepted');
    expect(answerTo(3, body({ jsonrpc: '2.0', id: 3, error: { code: -32602, message: 'no such resource' } }), 'application/json')).to.equal('refused');
    expect(answerTo(3, body({ jsonrpc: '2.0', id: 4, result: {} }), 'application/json')).to.equal(undefined);
    const sse =
      'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\nevent: message\ndata: {"jsonrpc":"2.0","id":"a","result":{}}\n\n';
    expect(answerTo('a', Buffer.from(sse), 'text/event-stream')).to.equal('accepted');
    expect(
      answerTo('a', Buffer.from('data: {"jsonrpc":"2.0","id":"a","error":{"code":1,"message":"x"}}\r\n\r\n'), 'text/event-stream; charset=utf-8'),
    ).to.equal('refused');
    expect(answerTo('a', Buffer.from('not json'), 'application/json')).to.equal(undefined);
  });

  describe("StateRecorder (the session-state route's ext_proc stream)", () => {
    async function run(opts: {
      sid?: string;
      client?: string;
      req: unknown;
      status: string;
      answer: Buffer;
      contentType?: string;
    }): Promise<{ store: MemoryStore; metrics: ReturnType<typeof newMetrics>; complete: boolean }> {
      const store = new MemoryStore({ sessionTtlMs: 60_000 });
      await store.create('C', { pod: '10.0.0.1:80', backendSessionId: 'C', initBody: null });
      const metrics = newMetrics();
      const r = new StateRecorder({ store, log: silentLog, metrics });
      await r.handle(
        requestHeaders({
          ':method': 'POST',
          ':path': '/mcp',
          'mcp-session-id': opts.sid ?? 'C',
          ...(opts.client ? { 'x-mcp-pin-client-session': opts.client } : {}),
        }),
      );
      await r.handle(requestBody(JSON.stringify(opts.req)));
      const [h] = await r.handle(responseHeaders({ ':status': opts.status, 'content-type': opts.contentType ?? 'application/json' }));
      if (!r.complete) await r.handle({ request: 'response_body', response_body: { body: opts.answer, end_of_stream: true } });
      else expect(h!.mode_override).to.deep.equal({ response_body_mode: 'NONE' });
      return { store, metrics, complete: r.complete };
    }
    const count = async (m: ReturnType<typeof newMetrics>, result: string): Promise<number> =>
      (await m.registry.getSingleMetric('mcp_pin_session_state_total')!.get()).values.find((v) => v.labels.result === result)?.value ?? 0;

    it("keeps a subscribe the pod accepted (JSON or SSE), under the client's own id when the pod knows the session by another", async () => {
      const { store, metrics } = await run({
        req: { jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'a://1' } },
        status: '200',
        answer: body({ jsonrpc: '2.0', id: 1, result: {} }),
      });
      expect((await store.load('C'))!.state).to.deep.equal({ level: null, subscriptions: ['a://1'] });
      expect(await count(metrics, 'kept')).to.equal(1);
      const rewritten = await run({
        sid: 'B2',
        client: 'C',
        req: { jsonrpc: '2.0', id: 'k', method: 'logging/setLevel', params: { level: 'error' } },
        status: '200',
        contentType: 'text/event-stream',
        answer: Buffer.from('event: message\ndata: {"jsonrpc":"2.0","id":"k","result":{}}\n\n'),
      });
      expect((await rewritten.store.load('C'))!.state.level).to.equal('error');
    });

    it('keeps nothing the pod refused (a JSON-RPC error, a 4xx) or did not answer, and never stands in the way of the answer', async () => {
      const refused = await run({
        req: { jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'a://gone' } },
        status: '200',
        answer: body({ jsonrpc: '2.0', id: 1, error: { code: -32002, message: 'not found' } }),
      });
      expect((await refused.store.load('C'))!.state.subscriptions).to.deep.equal([]);
      expect(await count(refused.metrics, 'refused')).to.equal(1);
      const status = await run({
        req: { jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'a://1' } },
        status: '404',
        answer: Buffer.alloc(0),
      });
      expect(status.complete).to.equal(true);
      expect((await status.store.load('C'))!.state.subscriptions).to.deep.equal([]);
      const malformed = await run({
        req: { jsonrpc: '2.0', id: 1, method: 'resources/subscribe' },
        status: '200',
        answer: body({ jsonrpc: '2.0', id: 1, result: {} }),
      });
      expect((await malformed.store.load('C'))!.state.subscriptions).to.deep.equal([]);
    });

    it('answers each response phase once, and counts as refused only a state request it understood', async () => {
      // A request that is no state request mcp-pin reads (a method it does not keep), answered 200: nothing counted.
      const other = await run({ req: { jsonrpc: '2.0', id: 1, method: 'tools/list' }, status: '200', answer: body({ jsonrpc: '2.0', id: 1, result: {} }) });
      expect(other.complete).to.equal(true);
      expect([await count(other.metrics, 'refused'), await count(other.metrics, 'kept')]).to.deep.equal([0, 0]);
      // A request whose body never came (Envoy sends none for an empty one): its response is answered, nothing counted.
      const store = new MemoryStore({ sessionTtlMs: 60_000 });
      const metrics = newMetrics();
      const r = new StateRecorder({ store, log: silentLog, metrics });
      await r.handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 'C' }));
      const answered = await r.handle(responseHeaders({ ':status': '202' }));
      expect(answered).to.have.length(1);
      expect(r.complete).to.equal(true);
      expect(await count(metrics, 'refused')).to.equal(0);
      // An accepted state request: its response headers answered once, then its body.
      const kept = new StateRecorder({ store, log: silentLog, metrics });
      await kept.handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 'C' }));
      await kept.handle(requestBody(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'logging/setLevel', params: { level: 'info' } })));
      const headers = await kept.handle(responseHeaders({ ':status': '200', 'content-type': 'application/json' }));
      expect(headers).to.deep.equal([{ response_headers: { response: {} } }]);
    });

    it('counts a store that failed, and the request still gets its answer', async () => {
      const store = new MemoryStore({ sessionTtlMs: 60_000 });
      const failing = Object.assign(Object.create(store) as MemoryStore, { changeState: async () => Promise.reject(new Error('down')) });
      const metrics = newMetrics();
      const r = new StateRecorder({ store: failing, log: silentLog, metrics });
      await r.handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 'C' }));
      await r.handle(requestBody(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'logging/setLevel', params: { level: 'info' } })));
      await r.handle(responseHeaders({ ':status': '200', 'content-type': 'application/json' }));
      const [out] = await r.handle({ request: 'response_body', response_body: { body: body({ jsonrpc: '2.0', id: 1, result: {} }), end_of_stream: true } });
      expect(out!.response_body).to.deep.equal({ response: {} });
      expect(await count(metrics, 'store_error')).to.equal(1);
    });
  });

  describe('StateRecorder: what operators see (metrics and log lines), and the catch-up after a move', () => {
    const SUB = { jsonrpc: '2.0', id: 1, method: 'resources/subscribe', params: { uri: 'a://1' } };
    async function record(store: SessionStore, recoverer?: Recoverer & StateCatchUp) {
      const { log, lines } = capturedLog();
      const metrics = newMetrics();
      const r = new StateRecorder({ store, log, metrics, ...(recoverer ? { recoverer } : {}) });
      await r.handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 'C' }));
      await r.handle(requestBody(JSON.stringify(SUB)));
      await r.handle(responseHeaders({ ':status': '200', 'content-type': 'application/json' }));
      await r.handle({ request: 'response_body', response_body: { body: body({ jsonrpc: '2.0', id: 1, result: {} }), end_of_stream: true } });
      const result = async (x: string) =>
        (await metrics.registry.getSingleMetric('mcp_pin_session_state_total')!.get()).values.find((v) => v.labels.result === x)?.value ?? 0;
      const storeErrors = (await metrics.storeErrors.get()).values.filter((v) => v.labels.op === 'change_state').map((v) => v.labels.code);
      expect(JSON.stringify(lines), 'the raw session id is not logged').to.not.include('"C"');
      return { lines, result, storeErrors };
    }
    const fresh = async (): Promise<MemoryStore> => {
      const store = new MemoryStore({ sessionTtlMs: 60_000 });
      await store.create('C', { pod: '10.0.0.1:80', backendSessionId: 'C', initBody: null });
      return store;
    };
    const catching = (answer: 'current' | 'sent' | 'refused' | 'failed', asked: unknown[][]): Recoverer & StateCatchUp => ({
      messageTimeoutMs: 1,
      deadline: (c) => c,
      planRetry: async () => ({ kind: 'unknown' }),
      relay: async () => ({ kind: 'failed', code: 'MCP_PIN_RECOVERY_UNAVAILABLE' }),
      catchUpState: async (...args) => {
        asked.push(args);
        return answer as never;
      },
    });

    it('a change over the bounds: counted over_limit, one warning with the op', async () => {
      const store = await fresh();
      store.changeState = async () => 'over_limit';
      const { lines, result } = await record(store);
      expect(await result('over_limit')).to.equal(1);
      expect(lines).to.have.length(1);
      expect(lines[0]).to.include({ level: LOG_LEVEL.warn, op: 'subscribe', session: sessionTag('C') });
      expect(lines[0]!.msg).to.match(/^session state over its bounds/);
    });

    it('a kept change is caught up on the pod the session moved to meanwhile: said when it was, silent when the pin was current', async () => {
      const asked: unknown[][] = [];
      const quiet = await record(await fresh(), catching('current', asked));
      expect(quiet.lines).to.deep.equal([]);
      expect(asked).to.have.length(1);
      expect(asked[0]!.slice(0, 3)).to.deep.equal(['C', 'C', { op: 'subscribe', uri: 'a://1' }]);
      const moved = await record(await fresh(), catching('sent', asked));
      expect(moved.lines).to.have.length(1);
      expect(moved.lines[0]).to.include({ level: LOG_LEVEL.info, op: 'subscribe', result: 'sent', session: sessionTag('C') });
      expect(moved.lines[0]!.msg).to.equal('a change of session state reached the pod the session moved to meanwhile');
      const overLimit = await fresh();
      overLimit.changeState = async () => 'over_limit';
      await record(overLimit, catching('sent', asked));
      expect(asked, 'a change not kept is not caught up').to.have.length(2);
    });

    it('a store that failed: counted store_error, a store error by code when it was the store, and a warning with the error', async () => {
      const coded = await fresh();
      coded.changeState = async () => Promise.reject(new StoreError('MCP_PIN_STORE_TIMEOUT', 'slow'));
      const a = await record(coded);
      expect(await a.result('store_error')).to.equal(1);
      expect(a.storeErrors).to.deep.equal(['MCP_PIN_STORE_TIMEOUT']);
      expect(a.lines[0]).to.include({
        level: LOG_LEVEL.warn,
        op: 'subscribe',
        err: 'slow',
        msg: 'could not keep a change of session state: a recovery will not restore it',
      });
      const plain = await fresh();
      plain.changeState = async () => Promise.reject(new Error('bug'));
      const b = await record(plain);
      expect(b.storeErrors, 'not a store error').to.deep.equal([]);
      expect(b.lines[0]).to.include({ err: 'bug' });
    });
  });
});
