import { expect } from 'chai';
import type { LostRequest } from '../../src/extproc/exchange.js';
import type { ProcessingResponse } from '../../src/extproc/protocol.js';
import { HttpRecoverer } from '../../src/recovery/http-recoverer.js';
import type { ForwardRequest, ForwardResponse, Forwarder } from '../../src/recovery/forwarder.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { newMetrics, silentLog } from './fakes.js';

const INIT = Buffer.from('{"jsonrpc":"2.0","id":0,"method":"initialize"}');

/** Plays a service of pods: initialize picks the next pod; other requests answer per `replay`. */
class FakeService implements Forwarder {
  sent: ForwardRequest[] = [];
  nextPod = 1;
  init: (req: ForwardRequest) => Partial<ForwardResponse> | Error = () => ({});
  notify: (req: ForwardRequest) => Partial<ForwardResponse> = () => ({ status: 202 });
  replay: (req: ForwardRequest) => Partial<ForwardResponse> | Error = () => ({ status: 200, body: Buffer.from('{"result":"ok"}') });
  delayMs = 0;

  async send(req: ForwardRequest): Promise<ForwardResponse> {
    this.sent.push(req);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    const body = req.body?.toString() ?? '';
    let out: Partial<ForwardResponse> | Error;
    if (body.includes('"initialize"')) {
      const n = this.nextPod++;
      const custom = this.init(req);
      if (custom instanceof Error) throw custom;
      out = { status: 200, headers: [['mcp-session-id', `backend-${n}`], ['content-type', 'text/event-stream']], upstream: `10.0.1.${n}:8080`, ...custom };
    } else if (body.includes('notifications/initialized')) out = this.notify(req);
    else out = this.replay(req);
    if (out instanceof Error) throw out;
    return { status: 200, headers: [], body: Buffer.alloc(0), upstream: req.pod, ...out };
  }
  async close(): Promise<void> {}
  count(what: string): number {
    return this.sent.filter((r) => (r.body?.toString() ?? '').includes(what)).length;
  }
}

const cfg = {
  recoveryUrl: 'http://127.0.0.1:1',
  recoveryTimeoutMs: 2000,
  pinHeader: 'x-mcp-pin-dst',
  upstreamHeader: 'x-mcp-pin-upstream',
  maxReplayBodyBytes: 1 << 20,
  lostSessionStatuses: [404],
};

async function setup(initBody: Buffer | null = INIT) {
  const store = new MemoryStore({ sessionTtlMs: 60_000 });
  await store.create('client-1', { pod: '10.0.0.9:8080', backendSessionId: 'client-1', initBody });
  const service = new FakeService();
  const recoverer = new HttpRecoverer({ cfg, store, log: silentLog, metrics: newMetrics(), forwarder: service });
  const lost = async (method = 'POST', body = '{"jsonrpc":"2.0","id":5,"method":"tools/call"}'): Promise<LostRequest> => ({
    clientSessionId: 'client-1',
    pin: (await store.lookup('client-1'))!,
    method,
    path: '/mcp',
    headers: [
      [':method', method],
      [':path', '/mcp'],
      [':authority', 'mcp.example:10000'],
      ['mcp-session-id', 'client-1'],
      ['authorization', 'Bearer t0k'],
      ['mcp-protocol-version', '2025-11-25'],
      ['accept', method === 'GET' ? 'text/event-stream' : 'application/json, text/event-stream'],
      ['x-mcp-pin-dst', '6.6.6.6:1'],
      ['connection', 'keep-alive'],
    ],
    body: method === 'GET' ? null : Buffer.from(body),
    status: 404,
    upstream: {},
  });
  return { store, service, recoverer, lost };
}

const statusOf = (r: ProcessingResponse): number => r.immediate_response!.status.code;
const jsonOf = (r: ProcessingResponse): { error?: { code: number } } => JSON.parse(r.immediate_response!.body!.toString());
const headerOf = (r: ProcessingResponse, name: string): string | undefined =>
  r.immediate_response!.headers?.set_headers?.find((s) => s.header.key === name)?.header.raw_value.toString();

describe('recovery', () => {
  it('re-initializes, notifies, stores the new pin and replays, answering with the client id', async () => {
    const { store, service, recoverer, lost } = await setup();
    service.replay = () => ({ status: 200, headers: [['mcp-session-id', 'backend-1'], ['content-type', 'application/json']], body: Buffer.from('{"r":1}') });
    const r = await recoverer.recover(await lost());
    expect(statusOf(r)).to.equal(200);
    expect(r.immediate_response!.body!.toString()).to.equal('{"r":1}');
    expect(headerOf(r, 'mcp-session-id')).to.equal('client-1');
    expect(await store.lookup('client-1')).to.deep.equal({ pod: '10.0.1.1:8080', backendSessionId: 'backend-1', generation: 2 });
    expect((await store.load('client-1'))!.initBody!.equals(INIT), 'init body kept').to.equal(true);

    const [init, note, replay] = service.sent;
    const h = (req: ForwardRequest) => Object.fromEntries(req.headers);
    // Re-init: to the service (no pod), JSON + SSE accept, the client's end-to-end headers, no session id.
    expect(init!.pod).to.equal(undefined);
    expect(h(init!)).to.include({ 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: 'Bearer t0k', 'mcp-protocol-version': '2025-11-25', host: 'mcp.example:10000' });
    expect(h(init!)).to.not.have.any.keys('mcp-session-id', 'x-mcp-pin-dst', 'connection', ':method');
    // notifications/initialized to the new pod under the new id.
    expect(note!.pod).to.equal('10.0.1.1:8080');
    expect(h(note!)['mcp-session-id']).to.equal('backend-1');
    // Replay: same method/path/body, new pod, backend id.
    expect(replay!.pod).to.equal('10.0.1.1:8080');
    expect(h(replay!)['mcp-session-id']).to.equal('backend-1');
    expect(replay!.body!.toString()).to.contain('tools/call');
  });

  it('re-inits a GET with a POST that accepts JSON and SSE, then ends the stream so the client reconnects', async () => {
    const { service, recoverer, lost } = await setup();
    const r = await recoverer.recover(await lost('GET'));
    expect(statusOf(r)).to.equal(200);
    expect(headerOf(r, 'content-type')).to.equal('text/event-stream');
    expect(headerOf(r, 'mcp-session-id')).to.equal('client-1');
    expect(service.sent.map((s) => s.method)).to.deep.equal(['POST', 'POST']);
    expect(Object.fromEntries(service.sent[0]!.headers).accept).to.equal('application/json, text/event-stream');
  });

  it('answers 404 / -32001 and drops the pin when no init body was stored', async () => {
    const { store, service, recoverer, lost } = await setup(null);
    const r = await recoverer.recover(await lost());
    expect(statusOf(r)).to.equal(404);
    expect(jsonOf(r).error!.code).to.equal(-32001);
    expect(service.sent).to.have.length(0);
    expect(await store.lookup('client-1')).to.equal(null);
  });

  it('answers 404 / -32001 and drops the pin when the session is no longer stored', async () => {
    const { store, service, recoverer, lost } = await setup();
    const l = await lost();
    await store.remove('client-1');
    const r = await recoverer.recover(l);
    expect(statusOf(r)).to.equal(404);
    expect(service.sent).to.have.length(0);
  });

  for (const [name, init] of [
    ['re-init answers non-2xx', () => ({ status: 503 })],
    ['re-init answers without a session id', () => ({ headers: [] })],
    ['re-init request fails', () => new Error('ECONNREFUSED')],
    ['Envoy reports no pod address', () => ({ upstream: undefined })],
  ] as const) {
    it(`answers 404 / -32001 and drops the pin when ${name}`, async () => {
      const { store, service, recoverer, lost } = await setup();
      service.init = init as never;
      const r = await recoverer.recover(await lost());
      expect(statusOf(r)).to.equal(404);
      expect(jsonOf(r).error!.code).to.equal(-32001);
      expect(await store.lookup('client-1')).to.equal(null);
      expect(service.count('tools/call'), 'no replay').to.equal(0);
    });
  }

  it('answers 404 when notifications/initialized is refused', async () => {
    const { store, service, recoverer, lost } = await setup();
    service.notify = () => ({ status: 400 });
    expect(statusOf(await recoverer.recover(await lost()))).to.equal(404);
    expect(await store.lookup('client-1')).to.equal(null);
  });

  it('reports a failed replay as a JSON-RPC error once (no loop), keeping the consistent new pin', async () => {
    for (const replay of [() => ({ status: 404 }), () => new Error('socket hang up')]) {
      const { store, service, recoverer, lost } = await setup();
      service.replay = replay as never;
      const r = await recoverer.recover(await lost());
      expect(statusOf(r)).to.equal(502);
      expect(jsonOf(r).error!.code).to.equal(-32603);
      expect(service.count('"initialize"'), 'one re-init').to.equal(1);
      expect(service.count('tools/call'), 'one replay').to.equal(1);
      expect(await store.lookup('client-1')).to.deep.include({ pod: '10.0.1.1:8080', generation: 2 });
    }
  });

  it('runs one re-init for 20 concurrent failures of a session, each replaying its own request', async () => {
    const { service, recoverer, lost } = await setup();
    service.delayMs = 20;
    service.replay = (req) => ({ status: 200, body: req.body! });
    const reqs = await Promise.all(Array.from({ length: 20 }, (_, i) => lost('POST', `{"id":${i},"method":"tools/call"}`)));
    const answers = await Promise.all(reqs.map((l) => recoverer.recover(l)));
    expect(service.count('"initialize"')).to.equal(1);
    expect(answers.map((a) => a.immediate_response!.body!.toString())).to.deep.equal(reqs.map((l) => l.body!.toString()));
  });

  it('waits for a recovery held by another replica (lock contention) and uses its result', async () => {
    const { store, service, recoverer, lost } = await setup();
    const l = await lost();
    expect(await store.tryLock('client-1', 'other-replica', 5000)).to.equal(true);
    const pending = recoverer.recover(l);
    await new Promise((r) => setTimeout(r, 60));
    // The other replica finishes its recovery and releases the lock.
    await store.replacePin('client-1', 1, '10.0.2.2:8080', 'their-backend');
    await store.unlock('client-1', 'other-replica');
    const r = await pending;
    expect(statusOf(r)).to.equal(200);
    expect(service.count('"initialize"'), 'no second re-init').to.equal(0);
    expect(service.sent[0]!.pod).to.equal('10.0.2.2:8080');
    expect(Object.fromEntries(service.sent[0]!.headers)['mcp-session-id']).to.equal('their-backend');
  });

  it('gives up with 504 when another replica holds the lock past the recovery timeout', async () => {
    const store = new MemoryStore({ sessionTtlMs: 60_000 });
    await store.create('client-1', { pod: '10.0.0.9:8080', backendSessionId: 'client-1', initBody: INIT });
    const service = new FakeService();
    const recoverer = new HttpRecoverer({ cfg: { ...cfg, recoveryTimeoutMs: 150 }, store, log: silentLog, metrics: newMetrics(), forwarder: service });
    await store.tryLock('client-1', 'stuck', 60_000);
    const r = await recoverer.recover({ clientSessionId: 'client-1', pin: (await store.lookup('client-1'))!, method: 'POST', path: '/mcp', headers: [], body: Buffer.from('{}'), status: 404, upstream: {} });
    expect(statusOf(r)).to.equal(504);
    expect(service.sent).to.have.length(0);
    expect(await store.lookup('client-1'), 'pin kept for the lock holder').to.not.equal(null);
  });
});

describe('recovery races', () => {
  it('uses the winner pin when its compare-and-set loses (lock expired under it)', async () => {
    const store = new MemoryStore({ sessionTtlMs: 60_000 });
    await store.create('client-1', { pod: '10.0.0.9:8080', backendSessionId: 'client-1', initBody: INIT });
    const service = new FakeService();
    // While our re-init is on the wire, another replica stores its own recovery.
    service.init = () => {
      void store.replacePin('client-1', 1, '10.0.3.3:8080', 'winner');
      return {};
    };
    service.replay = (req) => ({ status: 200, body: Buffer.from(Object.fromEntries(req.headers)['mcp-session-id']!) });
    const recoverer = new HttpRecoverer({ cfg, store, log: silentLog, metrics: newMetrics(), forwarder: service });
    const r = await recoverer.recover({ clientSessionId: 'client-1', pin: (await store.lookup('client-1'))!, method: 'POST', path: '/mcp', headers: [], body: Buffer.from('{"method":"tools/call"}'), status: 404, upstream: {} });
    expect(statusOf(r)).to.equal(200);
    expect(r.immediate_response!.body!.toString(), 'replayed under the winner id').to.equal('winner');
    expect(await store.lookup('client-1')).to.deep.include({ pod: '10.0.3.3:8080', backendSessionId: 'winner' });
  });
});
