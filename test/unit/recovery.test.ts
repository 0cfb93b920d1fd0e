/**
 * Recovery as the ext_proc layer calls it for a retry attempt
 * (HttpRecoverer.planRetry over SessionRecovery): a fake service of pods
 * behind the Forwarder interface, the memory store.
 */
import { expect } from 'chai';
import { eventually } from '../helpers/net.js';
import { HttpRecoverer } from '../../src/recovery/http-recoverer.js';
import { ResponseTooLargeError, type ForwardRequest, type ForwardResponse, type Forwarder } from '../../src/recovery/forwarder.js';
import type { RelayPlan, RetryAttempt, RetryPlan } from '../../src/recovery/plans.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import type { Metrics } from '../../src/metrics.js';
import { MESSAGE_TIMEOUT_MARGIN_MS } from '../../src/timeouts.js';
import { StoreError } from '../../src/errors.js';
import { sessionTag } from '../../src/log.js';
import { capturedLog, metricValue, newMetrics, silentLog, recovererCfg } from './fakes.js';
import { VirtualClock } from '../protocol/virtual-clock.js';
import { abortedByDeadline } from '../../src/clock.js';
import { SessionRecovery, type RecoveryOptions } from '../../src/recovery/recovery.js';
import type { SessionStore } from '../../src/sessions/store.js';

const INIT = Buffer.from('{"jsonrpc":"2.0","id":0,"method":"initialize"}');
const OLD_POD = '10.0.0.9:8080';
const RETRY_POD = '10.0.1.1:8080';

/** Plays the pods: initialize answers with a new backend id; notifications/initialized per `notify`. */
class FakePods implements Forwarder {
  sent: ForwardRequest[] = [];
  n = 0;
  init: (req: ForwardRequest) => Partial<ForwardResponse> | Error = () => ({});
  notify: (req: ForwardRequest) => Partial<ForwardResponse> | Error = () => ({ status: 202 });
  /** Requests that never get an answer: they end only when their signal does. */
  hangs: (req: ForwardRequest) => boolean = () => false;
  /** The ping that asks the failed pod whether it still holds the session: by default it does not. */
  probe: (req: ForwardRequest) => Partial<ForwardResponse> | Error = () => ({ status: 404 });
  delayMs = 0;

  async send(req: ForwardRequest): Promise<ForwardResponse> {
    this.sent.push(req);
    if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
    if (this.hangs(req))
      await new Promise((_, reject) => {
        if (req.signal.aborted) reject(req.signal.reason);
        req.signal.addEventListener('abort', () => reject(req.signal.reason), { once: true });
      });
    const body = req.body?.toString() ?? '';
    let out: Partial<ForwardResponse> | Error;
    if (body.includes('"initialize"')) {
      const custom = this.init(req);
      if (custom instanceof Error) throw custom;
      out = {
        status: 200,
        headers: [
          ['mcp-session-id', `backend-${++this.n}`],
          ['content-type', 'text/event-stream'],
        ],
        ...custom,
      };
    } else if (body.includes('"ping"')) out = this.probe(req);
    else out = this.notify(req);
    if (out instanceof Error) throw out;
    return { status: 200, headers: [], body: Buffer.alloc(0), upstream: req.pod, ...out };
  }
  async close(): Promise<void> {}
  count(what: string): number {
    return this.sent.filter((r) => (r.body?.toString() ?? '').includes(what)).length;
  }
}

const cfg = recovererCfg;
const never = new AbortController().signal;

async function setup(
  initBody: Buffer | null = INIT,
  recoveryTimeoutMs = cfg.recoveryTimeoutMs,
  more: Partial<typeof cfg> & { allows?: (pod: string) => boolean } = {},
) {
  const store = new MemoryStore({ sessionTtlMs: 60_000 });
  await store.create('client-1', { pod: OLD_POD, backendSessionId: 'client-1', initBody, initPath: '/mcp' });
  const pods = new FakePods();
  const allowlist = more.allows ? ({ allowsFresh: async (p: string) => more.allows!(p) } as never) : undefined;
  // What an operator sees: the metrics, and the log lines (captured, as pino writes them).
  const metrics = newMetrics();
  const { log, lines: logs } = capturedLog();
  const recoverer = new HttpRecoverer({
    cfg: { ...cfg, recoveryTimeoutMs, ...more },
    store,
    log,
    metrics,
    forwarder: pods,
    ...(allowlist ? { allowlist } : {}),
  });
  const attempt = (over: Partial<RetryAttempt> = {}): RetryAttempt => ({
    clientSessionId: 'client-1',
    failedSessionId: 'client-1',
    pod: RETRY_POD,
    path: '/mcp',
    headers: [
      [':method', 'GET'],
      [':path', '/mcp'],
      [':authority', 'mcp.example:10000'],
      ['mcp-session-id', 'client-1'],
      ['authorization', 'Bearer t0k'],
      ['mcp-protocol-version', '2025-11-25'],
      ['accept', 'text/event-stream'],
      ['x-mcp-pin-client-session', 'client-1'],
      ['x-envoy-attempt-count', '2'],
      ['connection', 'keep-alive'],
    ],
    ...over,
  });
  return { store, pods, recoverer, attempt, metrics, logs };
}

const failed = (o: RetryPlan): string => (o.kind === 'failed' ? o.code : `not failed: ${o.kind}`);

/** Counts the store's tryLock calls (how a test sees a recovery waiting for a lock). */
function countLockTries(store: MemoryStore): () => number {
  const tryLock = store.tryLock.bind(store);
  let tries = 0;
  store.tryLock = async (...args) => {
    tries++;
    return tryLock(...args);
  };
  return () => tries;
}

/** Runs `meanwhile` just before each removeIfGeneration reaches the store (what another request or replica did in between). */
function beforeRemoval(store: MemoryStore, meanwhile: (sid: string, generation: number) => Promise<unknown>): void {
  const remove = store.removeIfGeneration.bind(store);
  store.removeIfGeneration = async (sid, generation) => {
    await meanwhile(sid, generation);
    return remove(sid, generation);
  };
}

/** A SessionRecovery of its own (no HttpRecoverer around it), with the limits the unit tests use. */
const sessionRecovery = (store: SessionStore, forwarder: Forwarder, more: Partial<RecoveryOptions> = {}) =>
  new SessionRecovery({
    store,
    forwarder,
    timeoutMs: 2000,
    maxResponseBytes: 1 << 20,
    maxRelayBytes: 1 << 20,
    maxSessionIdLength: 256,
    lostSessionStatuses: [404],
    ...more,
  });

describe('recovery: planning a retry attempt', () => {
  it("re-initializes on the attempt's pod, notifies, and stores the new pin", async () => {
    const { store, pods, recoverer, attempt } = await setup();
    const o = await recoverer.planRetry(attempt(), never);
    expect(o).to.deep.equal({ kind: 'send', reinitialized: true, onPath: true, pin: { pod: RETRY_POD, backendSessionId: 'backend-1', generation: 2 } });
    expect(await store.lookup('client-1')).to.deep.equal({ pod: RETRY_POD, backendSessionId: 'backend-1', generation: 2 });
    expect((await store.load('client-1'))!.initBody!.equals(INIT), 'init body kept').to.equal(true);

    const [probe, init, note] = pods.sent;
    // First the proof: a ping in the session, to the pod that failed.
    expect(probe!.pod).to.equal(OLD_POD);
    expect(probe!.body!.toString()).to.contain('"ping"');
    expect(Object.fromEntries(probe!.headers)['mcp-session-id']).to.equal('client-1');
    const h = (req: ForwardRequest) => Object.fromEntries(req.headers);
    // Re-init: a POST to the attempt's pod, JSON + SSE accept (a GET is being recovered), the client's end-to-end headers, no session id.
    expect(init!.pod).to.equal(RETRY_POD);
    expect(init!.method).to.equal('POST');
    expect(h(init!)).to.include({
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      authorization: 'Bearer t0k',
      host: 'mcp.example:10000',
    });
    // An initialize negotiates the version: it carries none (not the client's header).
    expect(h(init!)).to.not.have.any.keys(
      'mcp-session-id',
      'x-mcp-pin-client-session',
      'x-envoy-attempt-count',
      'connection',
      ':method',
      'mcp-protocol-version',
    );
    // notifications/initialized to the same pod under the new id.
    expect(note!.pod).to.equal(RETRY_POD);
    expect(h(note!)['mcp-session-id']).to.equal('backend-1');
    expect(pods.sent).to.have.length(3);
  });

  it('does not re-initialize a session its pod still holds: the request goes back there by relay', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    pods.probe = () => ({ status: 200 });
    expect(await recoverer.planRetry(attempt(), never)).to.deep.equal({
      kind: 'relay',
      why: 'not-lost',
      pin: { pod: OLD_POD, backendSessionId: 'client-1', generation: 1 },
    });
    expect(pods.count('"initialize"')).to.equal(0);
    expect(await store.lookup('client-1')).to.deep.include({ pod: OLD_POD, generation: 1 });
  });

  it("proves loss in the session's own protocol version, never the failing request's; notifies in the version the new pod settled on", async () => {
    const init = Buffer.from('{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}');
    const { pods, recoverer, attempt } = await setup(init);
    pods.init = () => ({ body: Buffer.from('event: message\ndata: {"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-03-26"}}\n\n') });
    // The client's request carried a version no pod supports.
    const bad = attempt({ headers: [...attempt().headers.filter(([k]) => k !== 'mcp-protocol-version'), ['mcp-protocol-version', '2026-01-26']] });
    expect(await recoverer.planRetry(bad, never)).to.deep.include({ kind: 'send', reinitialized: true });
    const version = (what: string) => Object.fromEntries(pods.sent.find((r) => (r.body?.toString() ?? '').includes(what))!.headers)['mcp-protocol-version'];
    expect(version('"ping"'), 'the ping speaks what the session was initialized with').to.equal('2025-06-18');
    expect(version('"initialize"'), 'the initialize negotiates').to.equal(undefined);
    expect(version('notifications/initialized'), 'the notification speaks what the new pod settled on').to.equal('2025-03-26');
  });

  it('counts a 400 as loss only in the words the SDKs use for an unknown session', async () => {
    const lost400 = { lostSessionStatuses: [404, 400] };
    for (const [body, lost] of [
      ['Bad Request: No valid session ID provided', true],
      ['{"jsonrpc":"2.0","error":{"code":-32000,"message":"Session not found"},"id":null}', true],
      ['{"jsonrpc":"2.0","error":{"code":-32000,"message":"Bad Request: Unsupported protocol version (supported versions: 2025-11-25)"},"id":null}', false],
      ['{"jsonrpc":"2.0","error":{"code":-32700,"message":"Parse error"},"id":null}', false],
    ] as const) {
      const { pods, recoverer, attempt } = await setup(INIT, cfg.recoveryTimeoutMs, lost400);
      pods.probe = () => ({ status: 400, body: Buffer.from(body) });
      const plan = await recoverer.planRetry(attempt(), never);
      expect(plan.kind, body).to.equal(lost ? 'send' : 'relay');
      expect(pods.count('"initialize"'), body).to.equal(lost ? 1 : 0);
    }
    // A 404 says it by itself.
    const { pods, recoverer, attempt } = await setup(INIT, cfg.recoveryTimeoutMs, lost400);
    pods.probe = () => ({ status: 404, body: Buffer.from('Cannot POST /mcp') });
    expect((await recoverer.planRetry(attempt(), never)).kind).to.equal('send');
  });

  it("relays a request off the session's MCP path back to its pod without any proof or change: the pod's own answer stands", async () => {
    const { store, pods, recoverer, attempt } = await setup();
    for (const method of ['POST', 'GET', 'DELETE']) {
      const plan = await recoverer.planRetry(attempt({ path: '/typo' }), never);
      expect(plan, method).to.deep.equal({ kind: 'relay', why: 'off-path', pin: { pod: OLD_POD, backendSessionId: 'client-1', generation: 1 } });
      // Relayed as a request, a GET too (no stream to reconnect: the router's answer).
      const out = await recoverer.relay({ attempt: attempt({ path: '/typo' }), plan: plan as RelayPlan, method, body: null }, never);
      expect(out.kind, method).to.equal('answered');
    }
    expect(pods.count('"ping"') + pods.count('"initialize"')).to.equal(0);
    expect(await store.lookup('client-1')).to.deep.equal({ pod: OLD_POD, backendSessionId: 'client-1', generation: 1 });
  });

  it('takes a lost status as no proof where the session MCP path is not known (a record kept before paths were): only an unreachable pod proves loss', async () => {
    const store = new MemoryStore({ sessionTtlMs: 60_000 });
    await store.create('client-1', { pod: OLD_POD, backendSessionId: 'client-1', initBody: INIT, initPath: null });
    const pods = new FakePods();
    const recoverer = new HttpRecoverer({ cfg, store, log: silentLog, metrics: newMetrics(), forwarder: pods });
    const attempt = { clientSessionId: 'client-1', failedSessionId: 'client-1', pod: RETRY_POD, path: '/typo', headers: [] as [string, string][] };
    expect((await recoverer.planRetry(attempt, never)).kind).to.equal('relay');
    expect(pods.count('"initialize"')).to.equal(0);
    pods.probe = () => new Error('ECONNREFUSED');
    expect(await recoverer.planRetry(attempt, never)).to.deep.include({ kind: 'send', reinitialized: true });
  });

  it('takes an unreachable pod, or a ping Envoy had to send to another pod, as proof of loss', async () => {
    for (const probe of [() => new Error('ECONNREFUSED'), () => ({ status: 200, upstream: '10.0.9.9:8080' })]) {
      const { pods, recoverer, attempt } = await setup();
      pods.probe = probe as never;
      expect(await recoverer.planRetry(attempt(), never)).to.deep.include({ kind: 'send', reinitialized: true });
    }
  });

  it('follows a newer pin without re-initializing: sends on this pod if the session is here, else relays', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    await store.replacePin('client-1', 1, RETRY_POD, 'moved');
    expect(await recoverer.planRetry(attempt(), never)).to.deep.equal({
      kind: 'send',
      reinitialized: false,
      onPath: true,
      pin: { pod: RETRY_POD, backendSessionId: 'moved', generation: 2 },
    });
    // Off the session's MCP path, a lost status of that pod would prove nothing.
    expect(await recoverer.planRetry(attempt({ path: '/typo' }), never)).to.deep.include({ kind: 'relay', why: 'off-path' });
    await store.replacePin('client-1', 2, '10.0.2.2:8080', 'elsewhere');
    expect(await recoverer.planRetry(attempt({ failedSessionId: 'moved' }), never)).to.deep.include({ kind: 'relay', why: 'moved' });
    expect(pods.sent).to.have.length(0);
  });

  it('relays when the re-initialize landed on another pod than the attempt (it left discovery meanwhile)', async () => {
    const { recoverer, pods, attempt } = await setup();
    pods.init = () => ({ upstream: '10.0.3.3:8080' });
    const o = await recoverer.planRetry(attempt(), never);
    expect(o).to.deep.equal({ kind: 'relay', why: 'moved', pin: { pod: '10.0.3.3:8080', backendSessionId: 'backend-1', generation: 2 } });
  });

  it("pings and re-initializes at the path the session was initialized on, not the request's own (harm 4: a /typo 404 is no proof)", async () => {
    const { store, pods, recoverer, attempt } = await setup();
    // The pod serves MCP at /mcp only: anything else is its 404. (A request off that
    // path needs no proof at all: it is relayed back, see "off the session's MCP path".)
    pods.probe = (req) => ({ status: req.path === '/mcp' ? 200 : 404 });
    const o = await recoverer.planRetry(attempt({ path: '/mcp?from=retry' }), never);
    expect(o).to.deep.equal({ kind: 'relay', why: 'not-lost', pin: { pod: OLD_POD, backendSessionId: 'client-1', generation: 1 } });
    expect(pods.sent.map((r) => r.path)).to.deep.equal(['/mcp']);
    expect(pods.count('"initialize"')).to.equal(0);
    expect(await store.lookup('client-1')).to.deep.include({ generation: 1 });
  });

  it('gives joiners the whole result of the recovery they join: "not lost" too (harm 3: no second ping, no third send)', async () => {
    const { pods, recoverer, attempt } = await setup();
    pods.probe = () => ({ status: 200 });
    pods.delayMs = 20;
    const plans = await Promise.all([recoverer.planRetry(attempt(), never), recoverer.planRetry(attempt({ pod: '10.0.5.5:8080' }), never)]);
    for (const p of plans) expect(p).to.deep.include({ kind: 'relay', why: 'not-lost' });
    expect(pods.count('"ping"'), 'one proof for both').to.equal(1);
  });

  it('sends a session the store no longer knows untouched', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    await store.remove('client-1');
    expect(await recoverer.planRetry(attempt(), never)).to.deep.equal({ kind: 'unknown' });
    expect(pods.sent).to.have.length(0);
  });

  it('fails with NO_INIT_BODY and drops the pin when no init body was stored (proof it can never come back)', async () => {
    const { store, pods, recoverer, attempt } = await setup(null);
    expect(failed(await recoverer.planRetry(attempt(), never))).to.equal('MCP_PIN_RECOVERY_NO_INIT_BODY');
    expect(
      pods.sent.map((r) => r.body!.toString()),
      'only the proof that it is lost',
    ).to.deep.equal(['{"jsonrpc":"2.0","id":"mcp-pin-probe","method":"ping"}']);
    expect(await store.lookup('client-1')).to.equal(null);
  });

  for (const [name, init] of [
    ['re-init answers 5xx', () => ({ status: 503 })],
    ['re-init answers without a session id', () => ({ headers: [] })],
    ['re-init request fails', () => new Error('ECONNREFUSED')],
    ['Envoy reports no pod address', () => ({ upstream: undefined })],
    [
      'Envoy answered the re-init itself',
      () => ({ status: 503, upstream: undefined, envoyReply: 'upstream_reset_before_response_started{connection_failure}' }),
    ],
  ] as const) {
    it(`fails with RECOVERY_UNAVAILABLE and keeps the record (transient) when ${name}`, async () => {
      const { store, pods, recoverer, attempt } = await setup();
      pods.init = init as never;
      expect(failed(await recoverer.planRetry(attempt(), never))).to.equal('MCP_PIN_RECOVERY_UNAVAILABLE');
      const rec = await store.load('client-1');
      expect(rec, 'record kept').to.deep.include({ pod: OLD_POD, generation: 1 });
      expect(rec!.initBody!.equals(INIT), 'initialize body kept').to.equal(true);
      // The next request tries again, and the session comes back.
      pods.init = () => ({});
      expect(await recoverer.planRetry(attempt(), never)).to.deep.include({ kind: 'send', reinitialized: true });
    });
  }

  it('fails with REINIT_REFUSED and drops the record when a pod refuses the stored initialize with a 4xx (proof)', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    pods.init = () => ({ status: 400 });
    expect(failed(await recoverer.planRetry(attempt(), never))).to.equal('MCP_PIN_RECOVERY_REINIT_REFUSED');
    expect(await store.lookup('client-1')).to.equal(null);
  });

  // A1: the spec's 404 tells the client to drop its session; it is given only once the record is no longer stored.
  for (const [proof, code, initBody] of [
    ['a pod refuses the stored initialize', 'MCP_PIN_RECOVERY_REINIT_REFUSED', INIT],
    ['no initialize body was stored', 'MCP_PIN_RECOVERY_NO_INIT_BODY', null],
  ] as const) {
    it(`when ${proof} and the store does not confirm the removal: RECOVERY_UNAVAILABLE ("try again"), record kept; the next attempt, with the store back, is told ${code}`, async () => {
      const { store, pods, recoverer, attempt, logs } = await setup(initBody);
      pods.init = () => ({ status: 400 });
      const remove = store.removeIfGeneration.bind(store);
      store.removeIfGeneration = async () => {
        throw new StoreError('MCP_PIN_STORE_UNAVAILABLE', 'store down');
      };
      expect(failed(await recoverer.planRetry(attempt(), never))).to.equal('MCP_PIN_RECOVERY_UNAVAILABLE');
      expect(await store.load('client-1'), 'record kept').to.deep.include({ pod: OLD_POD, generation: 1 });
      expect(logs.find((l) => l.msg === 'recovery failed')?.reason).to.match(/, and the store did not confirm dropping the record: store down$/);
      store.removeIfGeneration = remove;
      expect(failed(await recoverer.planRetry(attempt(), never))).to.equal(code);
      expect(await store.load('client-1')).to.equal(null);
    });

    it(`when ${proof} and the record left the store meanwhile (DELETE): ${code}`, async () => {
      const { store, pods, recoverer, attempt } = await setup(initBody);
      pods.init = () => ({ status: 400 });
      beforeRemoval(store, (sid) => store.remove(sid));
      expect(failed(await recoverer.planRetry(attempt(), never))).to.equal(code);
    });

    it(`when ${proof} and another replica stored a newer pin meanwhile (our lock expired): the retry follows it, record kept`, async () => {
      const { store, pods, recoverer, attempt } = await setup(initBody);
      pods.init = () => ({ status: 400 });
      beforeRemoval(store, (sid, generation) => store.replacePin(sid, generation, '10.0.2.2:8080', 'backend-2'));
      expect(await recoverer.planRetry(attempt(), never)).to.deep.include({ kind: 'relay', why: 'moved' });
      expect(await store.load('client-1')).to.deep.include({ pod: '10.0.2.2:8080', backendSessionId: 'backend-2', generation: 2 });
    });

    it(`when ${proof} and another replica re-initialized on this attempt's pod meanwhile: the retry goes there, as that replica's recovery, not ours`, async () => {
      const { store, pods, recoverer, attempt, metrics } = await setup(initBody);
      pods.init = () => ({ status: 400 });
      beforeRemoval(store, (sid, generation) => store.replacePin(sid, generation, RETRY_POD, 'backend-2'));
      expect(await recoverer.planRetry(attempt(), never)).to.deep.include({ kind: 'send', reinitialized: false });
      expect(await metricValue(metrics, 'mcp_pin_recovery_seconds_count', { result: 'recovered' }), 'counted by the replica that made it').to.equal(0);
    });
  }

  it('fails with RECOVERY_UNAVAILABLE and keeps the record when notifications/initialized is refused', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    pods.notify = () => ({ status: 400 });
    expect(failed(await recoverer.planRetry(attempt(), never))).to.equal('MCP_PIN_RECOVERY_UNAVAILABLE');
    expect(await store.lookup('client-1')).to.deep.include({ pod: OLD_POD, generation: 1 });
  });

  it('runs one re-init for 20 concurrent retries of a session; every one is sent under the new id', async () => {
    const { pods, recoverer, attempt } = await setup();
    pods.delayMs = 20;
    const plans = await Promise.all(Array.from({ length: 20 }, () => recoverer.planRetry(attempt(), never)));
    expect(pods.count('"initialize"')).to.equal(1);
    expect(plans.filter((p) => p.kind === 'send' && p.reinitialized)).to.have.length(1);
    expect(plans.every((p) => p.kind === 'send' && p.pin.backendSessionId === 'backend-1')).to.equal(true);
  });

  it('waits for a recovery held by another replica (lock contention) and follows its result', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    expect(await store.tryLock('client-1', 'other-replica', 5000)).to.equal(true);
    const lockTries = countLockTries(store);
    const pending = recoverer.planRetry(attempt(), never);
    await eventually(async () => lockTries() > 0, 'the recovery found the lock held');
    // The other replica finishes its recovery on another pod and releases the lock.
    await store.replacePin('client-1', 1, '10.0.2.2:8080', 'their-backend');
    await store.unlock('client-1', 'other-replica');
    expect(await pending).to.deep.equal({ kind: 'relay', why: 'moved', pin: { pod: '10.0.2.2:8080', backendSessionId: 'their-backend', generation: 2 } });
    expect(pods.count('"initialize"'), 'no second re-init').to.equal(0);
  });

  it('gives up with RECOVERY_TIMEOUT when another replica holds the lock past the recovery timeout, keeping the pin', async () => {
    const { store, pods, recoverer, attempt } = await setup(INIT, 150);
    await store.tryLock('client-1', 'stuck', 60_000);
    expect(failed(await recoverer.planRetry(attempt(), never))).to.equal('MCP_PIN_RECOVERY_TIMEOUT');
    expect(pods.sent).to.have.length(0);
    expect(await store.lookup('client-1'), 'pin kept for the lock holder').to.not.equal(null);
  });

  it('a caller that leaves stops waiting, and the recovery it started finishes on its own: the record is never dropped (harm 1)', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    pods.delayMs = 30;
    const gone = new AbortController();
    const first = recoverer.planRetry(attempt(), gone.signal);
    const joiner = recoverer.planRetry(attempt({ pod: RETRY_POD }), never);
    // The first client leaves while its re-initialize is on the wire.
    await eventually(async () => pods.count('"initialize"') === 1, 're-initialize sent');
    gone.abort();
    expect(failed(await first)).to.equal('MCP_PIN_RECOVERY_CANCELLED');
    // The joiner, still connected, gets the recovered session, and so does the store.
    expect(await joiner).to.deep.include({ kind: 'send', pin: { pod: RETRY_POD, backendSessionId: 'backend-1', generation: 2 } });
    const rec = await store.load('client-1');
    expect(rec).to.deep.include({ pod: RETRY_POD, generation: 2 });
    expect(rec!.initBody!.equals(INIT)).to.equal(true);
  });
});

describe('recovery: relaying a request to the pod that holds its session', () => {
  it("sends it once, to that pod, under the backend id, with the client's end-to-end headers", async () => {
    const { pods, recoverer, attempt } = await setup();
    pods.notify = () => ({ status: 200, headers: [['content-type', 'application/json']], body: Buffer.from('{"r":1}') });
    const plan: RelayPlan = { kind: 'relay', why: 'moved', pin: { pod: '10.0.2.2:8080', backendSessionId: 'theirs', generation: 3 } };
    const out = await recoverer.relay({ plan, method: 'POST', attempt: attempt(), body: Buffer.from('{"method":"tools/call"}') }, never);
    expect(out).to.deep.include({ kind: 'answered', status: 200 });
    expect(pods.sent).to.have.length(1);
    const sent = pods.sent[0]!;
    expect(sent.pod).to.equal('10.0.2.2:8080');
    expect(Object.fromEntries(sent.headers)).to.include({ 'mcp-session-id': 'theirs', authorization: 'Bearer t0k' });
    expect(Object.fromEntries(sent.headers)).to.not.have.any.keys('x-mcp-pin-client-session', 'x-envoy-attempt-count');
  });

  const relayReq = (attempt: (o?: Partial<RetryAttempt>) => RetryAttempt, pod = '10.0.2.2:8080', why: RelayPlan['why'] = 'moved') => ({
    plan: { kind: 'relay', why, pin: { pod, backendSessionId: 'theirs', generation: 3 } } as RelayPlan,
    method: 'POST',
    attempt: attempt(),
    body: Buffer.from('{}'),
  });

  it('says whether a failed relay may have run: too large (ran), connection never opened (did not), anything after sending (may have)', async () => {
    const { pods, recoverer, attempt } = await setup();
    const req = relayReq(attempt);
    const cases: [() => Promise<ForwardResponse>, string][] = [
      [async () => Promise.reject(new ResponseTooLargeError(10)), 'MCP_PIN_RELAY_TOO_LARGE'],
      [async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })), 'MCP_PIN_RELAY_FAILED'],
      [
        async () => ({
          status: 503,
          headers: [],
          body: Buffer.alloc(0),
          upstream: undefined,
          envoyReply: 'upstream_reset_before_response_started{connection_failure}',
        }),
        'MCP_PIN_RELAY_FAILED',
      ],
      [
        async () => ({
          status: 503,
          headers: [],
          body: Buffer.alloc(0),
          upstream: undefined,
          envoyReply: 'upstream_reset_before_response_started{connection_termination}',
        }),
        'MCP_PIN_RELAY_MAY_HAVE_RUN',
      ],
      [
        async () => ({ status: 504, headers: [], body: Buffer.alloc(0), upstream: undefined, envoyReply: 'upstream_response_timeout' }),
        'MCP_PIN_RELAY_MAY_HAVE_RUN',
      ],
      [async () => Promise.reject(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), 'MCP_PIN_RELAY_MAY_HAVE_RUN'],
      [async () => Promise.reject(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })), 'MCP_PIN_RELAY_MAY_HAVE_RUN'],
    ];
    for (const [send, code] of cases) {
      pods.send = send;
      expect(await recoverer.relay(req, never), code).to.deep.equal({ kind: 'failed', code });
    }
  });

  it('never relays to a pod outside --pin-allow', async () => {
    const { pods, recoverer, attempt } = await setup(INIT, 2000, { allows: (p) => p.startsWith('10.0.1.') });
    expect(await recoverer.relay(relayReq(attempt), never)).to.deep.equal({ kind: 'failed', code: 'MCP_PIN_RELAY_NOT_ALLOWED' });
    expect(pods.sent).to.have.length(0);
  });

  it('holds relayed answers within one shared byte budget', async () => {
    const { pods, recoverer, attempt } = await setup(INIT, 2000, { relayBudgetBytes: 1024 * 1024 });
    // One relay fills the budget while it reads: a second one at that moment is not sent.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    pods.send = async (req) => {
      pods.sent.push(req);
      req.lease!.take(1024 * 1024);
      await gate;
      return { status: 200, headers: [], body: Buffer.alloc(1024 * 1024), upstream: req.pod };
    };
    const first = recoverer.relay(relayReq(attempt), never);
    await eventually(async () => pods.sent.length === 1, 'first relay reading');
    expect(await recoverer.relay(relayReq(attempt), never)).to.deep.equal({ kind: 'failed', code: 'MCP_PIN_RELAY_BUSY' });
    release();
    expect(await first).to.deep.include({ kind: 'answered', status: 200 });
    // Given back once handed on: the next relay goes.
    pods.send = async (req) => ({ status: 200, headers: [], body: Buffer.from('{}'), upstream: req.pod });
    expect(await recoverer.relay(relayReq(attempt), never)).to.deep.include({ kind: 'answered' });
  });

  it('recovers once more when the relayed-to pod lost the session too (it restarted), and relays to the pod that now holds it', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    // The session moved to 10.0.2.2 (another request recovered it there), which has since restarted.
    await store.replacePin('client-1', 1, '10.0.2.2:8080', 'theirs');
    pods.notify = (req) => (req.pod === '10.0.2.2:8080' ? { status: 404 } : { status: 200, body: Buffer.from('{"r":"ok"}') });
    const out = await recoverer.relay(relayReq(attempt), never);
    expect(out).to.deep.include({ kind: 'answered', status: 200 });
    expect(pods.count('"initialize"'), 'recovered once more').to.equal(1);
    expect(await store.lookup('client-1')).to.deep.include({ pod: RETRY_POD, generation: 3 });
  });

  it('answers with the recovery error when the relayed-to pod lost the session too and it cannot be recovered (no initialize kept)', async () => {
    const { store, pods, recoverer, attempt } = await setup(null);
    await store.replacePin('client-1', 1, '10.0.2.2:8080', 'theirs');
    pods.notify = () => ({ status: 404, body: Buffer.from('{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":1}') });
    expect(await recoverer.relay(relayReq(attempt), never)).to.deep.equal({ kind: 'failed', code: 'MCP_PIN_RECOVERY_NO_INIT_BODY' });
  });

  it('keeps the answer a moved-to pod gave when the proof then shows it holds the session: not sent there a third time', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    await store.replacePin('client-1', 1, '10.0.2.2:8080', 'theirs');
    pods.notify = () => ({ status: 404, body: Buffer.from('{"own":true}') });
    pods.probe = () => ({ status: 200 });
    const out = await recoverer.relay(relayReq(attempt), never);
    expect(out).to.deep.include({ kind: 'answered', status: 404 });
    expect(pods.sent.map((r) => (r.body?.toString().includes('ping') ? 'ping' : 'request'))).to.deep.equal(['request', 'ping']);
  });

  it("lets the pod's own answer stand after a proof that it holds the session: one relay back, whatever it answers but a lost session", async () => {
    const { pods, recoverer, attempt } = await setup();
    pods.notify = () => ({ status: 400, body: Buffer.from('{"error":"Unsupported protocol version"}') });
    expect(await recoverer.relay(relayReq(attempt, OLD_POD, 'not-lost'), never)).to.deep.include({ kind: 'answered', status: 400 });
    expect(pods.sent).to.have.length(1);
  });

  it('recovers a session whose pod lost it between the proof and the relay (it restarted): never "session not found" for a session that can be recovered (A1)', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    let restarted = false;
    pods.notify = (req) => {
      // The relay back reaches a pod that restarted since it answered the ping.
      if (!restarted && req.pod === OLD_POD) {
        restarted = true;
        return { status: 404, body: Buffer.from('{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}') };
      }
      return { status: 200, body: Buffer.from('{"r":"ok"}') };
    };
    const out = await recoverer.relay(
      {
        ...relayReq(attempt, OLD_POD, 'not-lost'),
        plan: { kind: 'relay', why: 'not-lost', pin: { pod: OLD_POD, backendSessionId: 'client-1', generation: 1 } },
      },
      never,
    );
    expect(out).to.deep.include({ kind: 'answered', status: 200 });
    expect(pods.count('"initialize"'), 'recovered once').to.equal(1);
    expect(await store.lookup('client-1')).to.deep.include({ pod: RETRY_POD, generation: 2 });
  });

  it('answers a GET with "reconnect": a stream cannot be relayed into one answer', async () => {
    const { pods, recoverer, attempt } = await setup();
    expect(await recoverer.relay({ ...relayReq(attempt), method: 'GET', body: null }, never)).to.deep.equal({ kind: 'reconnect' });
    expect(pods.sent).to.have.length(0);
  });
});

describe('recovery races', () => {
  it("never calls a pin another recovery made 're-initialized' by this one, however it learns of it (after waiting for the lock, right after taking it, or by losing the compare-and-set)", async () => {
    // Where the other recovery landed on this attempt's own pod, the plan is 'send': its `reinitialized` decides
    // whether this retry counts as recovered, so it must say who re-initialized.
    const expected = { kind: 'send', reinitialized: false, onPath: true, pin: { pod: RETRY_POD, backendSessionId: 'theirs', generation: 2 } };
    // 1. Found once the other replica let go of the lock.
    {
      const { store, pods, recoverer, attempt } = await setup();
      await store.tryLock('client-1', 'other-replica', 5000);
      const tries = countLockTries(store);
      const pending = recoverer.planRetry(attempt(), never);
      await eventually(async () => tries() > 0, 'the recovery found the lock held');
      await store.replacePin('client-1', 1, RETRY_POD, 'theirs');
      await store.unlock('client-1', 'other-replica');
      expect(await pending, 'after waiting').to.deep.equal(expected);
      expect(pods.count('"initialize"')).to.equal(0);
    }
    // 2. Stored between this recovery's read and its lock.
    {
      const { store, pods, recoverer, attempt } = await setup();
      const tryLock = store.tryLock.bind(store);
      store.tryLock = async (...args) => {
        await store.replacePin('client-1', 1, RETRY_POD, 'theirs');
        return tryLock(...args);
      };
      expect(await recoverer.planRetry(attempt(), never), 'read again under the lock').to.deep.equal(expected);
      expect(pods.count('"ping"'), 'no proof needed').to.equal(0);
    }
    // 3. Stored while this recovery's re-initialize was on the wire.
    {
      const { store, pods, recoverer, attempt } = await setup();
      pods.init = () => {
        void store.replacePin('client-1', 1, RETRY_POD, 'theirs');
        return {};
      };
      expect(await recoverer.planRetry(attempt(), never), 'lost the compare-and-set').to.deep.equal(expected);
    }
  });

  it('never joins a recovery of an older generation: a loss of the newer pin gets a recovery of its own', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    const THEIR_POD = '10.0.2.2:8080';
    // Another replica holds the lock: this replica's recovery of generation 1 waits for it.
    await store.tryLock('client-1', 'other-replica', 5000);
    const tries = countLockTries(store);
    const first = recoverer.planRetry(attempt(), never);
    await eventually(async () => tries() > 0, 'the first recovery waits for the lock');
    // That replica re-initialized on its pod, which has died too (its ping finds nothing); a request of the new pin fails there.
    await store.replacePin('client-1', 1, THEIR_POD, 'theirs');
    pods.probe = () => ({ status: 404 });
    const second = recoverer.planRetry(attempt({ failedSessionId: 'theirs' }), never);
    await eventually(async () => tries() > 2, 'the second recovery waits for the lock too');
    await store.unlock('client-1', 'other-replica');
    expect(await first, 'the first follows the newer pin').to.deep.include({ kind: 'relay', why: 'moved' });
    expect(await second, 'the second proved its own loss and recovered').to.deep.include({ kind: 'send', reinitialized: true });
    expect(pods.sent.filter((r) => r.body!.toString().includes('"ping"')).map((r) => r.pod)).to.deep.equal([THEIR_POD]);
  });

  it('follows the winner pin when its compare-and-set loses (lock expired under it)', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    // While our re-init is on the wire, another replica stores its own recovery.
    pods.init = () => {
      void store.replacePin('client-1', 1, '10.0.3.3:8080', 'winner');
      return {};
    };
    expect(await recoverer.planRetry(attempt(), never)).to.deep.equal({
      kind: 'relay',
      why: 'moved',
      pin: { pod: '10.0.3.3:8080', backendSessionId: 'winner', generation: 2 },
    });
    expect(await store.lookup('client-1')).to.deep.include({ pod: '10.0.3.3:8080', backendSessionId: 'winner' });
  });
});

describe('recovery: the session state the client set (issue 29)', () => {
  it('replays the log level, then each subscription, on the new backend session, after notifications/initialized and before the retry is sent', async () => {
    const { store, pods, recoverer, attempt, logs } = await setup();
    await store.changeState('client-1', { op: 'subscribe', uri: 'demo://a' });
    await store.changeState('client-1', { op: 'setLevel', level: 'warning' });
    await store.changeState('client-1', { op: 'subscribe', uri: 'demo://b' });
    pods.notify = (req) => {
      const msg = JSON.parse(req.body!.toString()) as { id?: string };
      return msg.id === undefined
        ? { status: 202 }
        : {
            status: 200,
            headers: [['content-type', 'text/event-stream']],
            body: Buffer.from(`event: message\ndata: {"jsonrpc":"2.0","id":"${msg.id}","result":{}}\n\n`),
          };
    };
    expect(await recoverer.planRetry(attempt(), never)).to.deep.include({ kind: 'send', reinitialized: true });
    const after = pods.sent.slice(pods.sent.findIndex((r) => r.body!.toString().includes('notifications/initialized')) + 1);
    expect(after.map((r) => JSON.parse(r.body!.toString()) as { method: string; params: unknown })).to.deep.equal([
      { jsonrpc: '2.0', id: 'mcp-pin-replay-0', method: 'logging/setLevel', params: { level: 'warning' } },
      { jsonrpc: '2.0', id: 'mcp-pin-replay-1', method: 'resources/subscribe', params: { uri: 'demo://a' } },
      { jsonrpc: '2.0', id: 'mcp-pin-replay-2', method: 'resources/subscribe', params: { uri: 'demo://b' } },
    ]);
    for (const r of after) {
      expect(r.pod).to.equal(RETRY_POD);
      expect(Object.fromEntries(r.headers)).to.include({ 'mcp-session-id': 'backend-1', 'content-type': 'application/json' });
    }
    expect((await store.load('client-1'))!.state, 'kept for the next recovery').to.deep.equal({ level: 'warning', subscriptions: ['demo://a', 'demo://b'] });
    expect(
      logs.filter((l) => l.level === 40),
      'nothing refused: no warning',
    ).to.deep.equal([]);
  });

  it('leaves out a subscription the new pod refuses (its resource is gone): the session is recovered without it, and it is no longer kept', async () => {
    const { store, pods, recoverer, attempt, metrics, logs } = await setup();
    await store.changeState('client-1', { op: 'subscribe', uri: 'demo://gone' });
    await store.changeState('client-1', { op: 'subscribe', uri: 'demo://here' });
    pods.notify = (req) => {
      const msg = JSON.parse(req.body!.toString()) as { id?: string; params?: { uri?: string } };
      if (msg.id === undefined) return { status: 202 };
      const answer = msg.params?.uri === 'demo://gone' ? { error: { code: -32002, message: 'Resource not found' } } : { result: {} };
      return { status: 200, headers: [['content-type', 'application/json']], body: Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: msg.id, ...answer })) };
    };
    expect(await recoverer.planRetry(attempt(), never)).to.deep.include({ kind: 'send', reinitialized: true });
    expect((await store.load('client-1'))!.state.subscriptions).to.deep.equal(['demo://here']);
    // What an operator sees: one refused replay, one kept, and a warning that names the session by its tag.
    const replays = async (result: string) => (await metrics.stateReplays.get()).values.find((v) => v.labels.result === result)?.value ?? 0;
    expect([await replays('refused'), await replays('replayed')]).to.deep.equal([1, 1]);
    const warned = logs.filter((l) => l.msg === "the new pod refused a request that rebuilds the session's state: left out of the session");
    expect(warned).to.have.length(1);
    expect(warned[0]).to.deep.include({ level: 40, method: 'resources/subscribe', status: 200, session: sessionTag('client-1') });
  });

  it('a replay that fails for now (5xx, no connection) fails the recovery for now: the session and its state are kept, nothing is sent', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    await store.changeState('client-1', { op: 'setLevel', level: 'error' });
    pods.notify = (req) => (JSON.parse(req.body!.toString()).id === undefined ? { status: 202 } : { status: 503 });
    expect(failed(await recoverer.planRetry(attempt(), never))).to.equal('MCP_PIN_RECOVERY_UNAVAILABLE');
    const rec = await store.load('client-1');
    expect(rec).to.deep.include({ pod: OLD_POD, generation: 1 });
    expect(rec!.state.level).to.equal('error');
  });

  it('a session with no state set costs no replay', async () => {
    const { pods, recoverer, attempt } = await setup();
    await recoverer.planRetry(attempt(), never);
    expect(pods.sent).to.have.length(3);
  });
});

describe('recovery: what an operator sees of each plan (metrics and log lines)', () => {
  const outcome = (m: Metrics, o: string) => metricValue(m, 'mcp_pin_requests_total', { outcome: o });
  const recoveries = (m: Metrics, result: string) => metricValue(m, 'mcp_pin_recovery_seconds_count', { result });
  const line = (logs: Record<string, unknown>[], msg: string) => logs.find((l) => l.msg === msg);

  it('runs on the clock it is given (deadlines too), and closes its forwarder when it closes', async () => {
    const clock = new VirtualClock();
    const pods = new FakePods();
    let closed = 0;
    pods.close = async () => void closed++;
    const recoverer = new HttpRecoverer({
      cfg,
      store: new MemoryStore({ sessionTtlMs: 60_000 }),
      log: silentLog,
      metrics: newMetrics(),
      forwarder: pods,
      clock,
    });
    const d = recoverer.deadline(never);
    clock.jump(cfg.recoveryTimeoutMs - 1);
    expect(d.aborted, 'not before its time on that clock').to.equal(false);
    clock.jump(1);
    expect(d.aborted).to.equal(true);
    await recoverer.close();
    expect(closed).to.equal(1);
  });

  it('gives Envoy the recovery deadline plus the margin for one message', async () => {
    const { recoverer } = await setup(INIT, 3000);
    expect(recoverer.messageTimeoutMs).to.equal(3000 + MESSAGE_TIMEOUT_MARGIN_MS);
  });

  it('a re-initialize: one recovery counted as recovered (in seconds), and a "session re-initialized" line with the new pod and generation', async () => {
    const { pods, recoverer, attempt, metrics, logs } = await setup();
    pods.delayMs = 20;
    await recoverer.planRetry(attempt(), never);
    expect(await recoveries(metrics, 'recovered')).to.equal(1);
    expect(await recoveries(metrics, 'failed')).to.equal(0);
    const sum = await metricValue(metrics, 'mcp_pin_recovery_seconds_sum', { result: 'recovered' });
    expect(sum, 'seconds, not milliseconds').to.be.within(0, 2);
    expect(line(logs, 'session re-initialized')).to.deep.include({ pod: RETRY_POD, generation: 2, level: 30 });
    expect(line(logs, 'recovery failed')).to.equal(undefined);
  });

  it('a failed recovery: counted as failed (outcome and seconds), two warnings with its code, and no store error when the store did not fail', async () => {
    const { pods, recoverer, attempt, metrics, logs } = await setup();
    pods.init = () => ({ status: 400 });
    pods.delayMs = 20;
    await recoverer.planRetry(attempt(), never);
    expect(await outcome(metrics, 'recovery_failed')).to.equal(1);
    expect(await recoveries(metrics, 'failed')).to.equal(1);
    const sum = await metricValue(metrics, 'mcp_pin_recovery_seconds_sum', { result: 'failed' });
    expect(sum, 'seconds it took, not milliseconds').to.be.within(0.02, 2);
    expect(line(logs, 'recovery failed')!.ms, 'milliseconds it took').to.be.within(20, 2000);
    const storeErrors = (await metrics.storeErrors.get()).values.filter((v) => v.labels.op === 'recovery').reduce((n, v) => n + v.value, 0);
    expect(storeErrors, 'no store error of any code').to.equal(0);
    expect(line(logs, 'recovery failed')).to.deep.include({ code: 'MCP_PIN_RECOVERY_REINIT_REFUSED', level: 40 });
    expect(line(logs, "retry not sent: the session's recovery failed")).to.deep.include({ code: 'MCP_PIN_RECOVERY_REINIT_REFUSED', pod: RETRY_POD, level: 40 });
  });

  for (const code of ['MCP_PIN_STORE_UNAVAILABLE', 'MCP_PIN_STORE_TIMEOUT', 'MCP_PIN_STORE_CORRUPT'] as const) {
    it(`a store that fails the plan (${code}): also a store error of op "recovery"`, async () => {
      const { store, recoverer, attempt, metrics } = await setup();
      store.load = async () => {
        throw new StoreError(code, 'store down');
      };
      const plan = await recoverer.planRetry(attempt(), never);
      expect(failed(plan)).to.equal(code);
      expect(await metricValue(metrics, 'mcp_pin_store_errors_total', { op: 'recovery', code })).to.equal(1);
      expect(await outcome(metrics, 'recovery_failed')).to.equal(1);
    });
  }

  it('a client that left: counted as client_left (not a failure), one info line', async () => {
    const { pods, recoverer, attempt, metrics, logs } = await setup();
    pods.delayMs = 50;
    const left = new AbortController();
    const planned = recoverer.planRetry(attempt(), left.signal);
    left.abort();
    expect(failed(await planned)).to.equal('MCP_PIN_RECOVERY_CANCELLED');
    expect(await outcome(metrics, 'client_left')).to.equal(1);
    expect(await outcome(metrics, 'recovery_failed')).to.equal(0);
    expect(line(logs, 'client left while its session was being recovered')).to.deep.include({ pod: RETRY_POD, level: 30 });
    expect(line(logs, "retry not sent: the session's recovery failed")).to.equal(undefined);
  });

  it('a session not lost, and a request off its MCP path: each counted and said as what it is', async () => {
    const held = await setup();
    held.pods.probe = () => ({ status: 200 });
    await held.recoverer.planRetry(held.attempt(), never);
    expect([await outcome(held.metrics, 'not_lost'), await outcome(held.metrics, 'off_path')]).to.deep.equal([1, 0]);
    expect(line(held.logs, 'session not lost (its pod still holds it): request goes back there')).to.deep.include({ pod: OLD_POD });
    const typo = await setup();
    await typo.recoverer.planRetry(typo.attempt({ path: '/typo' }), never);
    expect([await outcome(typo.metrics, 'not_lost'), await outcome(typo.metrics, 'off_path')]).to.deep.equal([0, 1]);
    expect(line(typo.logs, "not the session's MCP path: the pod's own answer stands")).to.deep.include({ pod: OLD_POD, path: '/typo' });
    // A pin another replica already moved: followed, not counted as either, and no re-initialize said.
    const moved = await setup();
    await moved.store.replacePin('client-1', 1, '10.0.5.5:8080', 'theirs');
    expect(await moved.recoverer.planRetry(moved.attempt(), never)).to.deep.include({ kind: 'relay', why: 'moved' });
    expect([await outcome(moved.metrics, 'not_lost'), await outcome(moved.metrics, 'off_path')]).to.deep.equal([0, 0]);
    await moved.store.replacePin('client-1', 2, RETRY_POD, 'theirs-2');
    expect(await moved.recoverer.planRetry(moved.attempt({ failedSessionId: 'theirs' }), never)).to.deep.include({ kind: 'send', reinitialized: false });
    expect(moved.logs.map((l) => l.msg)).to.deep.equal([]);
  });

  it('a relay to a moved session counts relayed, and recovered only when the answer is no lost-session status; a failed relay counts and says its code', async () => {
    const { pods, recoverer, attempt, metrics, logs } = await setup();
    const req = (why: RelayPlan['why']) => ({
      plan: { kind: 'relay', why, pin: { pod: '10.0.2.2:8080', backendSessionId: 'theirs', generation: 3 } } as RelayPlan,
      method: 'POST',
      attempt: attempt(),
      body: Buffer.from('{}'),
    });
    pods.notify = () => ({ status: 200 });
    await recoverer.relay(req('moved'), never);
    expect([await outcome(metrics, 'relayed'), await outcome(metrics, 'recovered')]).to.deep.equal([1, 1]);
    // Its pod lost the session, and so did the pod the session is recovered on before the
    // second relay arrived: nothing ran, the record stands, so "try again", never the pod's 404 (A1).
    pods.notify = () => ({ status: 404 });
    expect(await recoverer.relay(req('moved'), never)).to.deep.equal({ kind: 'failed', code: 'MCP_PIN_RECOVERY_UNAVAILABLE' });
    expect([await outcome(metrics, 'relayed'), await outcome(metrics, 'recovered'), await outcome(metrics, 'recovery_failed')]).to.deep.equal([1, 1, 1]);
    // A relay back to a pod that still holds the session is no recovery at all.
    pods.notify = () => ({ status: 200 });
    await recoverer.relay(req('not-lost'), never);
    expect([await outcome(metrics, 'relayed'), await outcome(metrics, 'recovered')]).to.deep.equal([1, 1]);
    // A GET is answered "reconnect" (to the session's pod): relayed, not yet recovered.
    await recoverer.relay({ ...req('moved'), method: 'GET' }, never);
    expect([await outcome(metrics, 'relayed'), await outcome(metrics, 'recovered')]).to.deep.equal([2, 1]);
    pods.send = async () => Promise.reject(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }));
    await recoverer.relay(req('moved'), never);
    expect(await outcome(metrics, 'recovery_failed')).to.equal(2);
    const relayFailures = logs.filter((l) => l.msg === "relay to the session's pod failed").map((l) => l.code);
    expect(relayFailures).to.deep.equal(['MCP_PIN_RECOVERY_UNAVAILABLE', 'MCP_PIN_RELAY_FAILED']);
    expect(line(logs, "relay to the session's pod failed")).to.deep.include({ pod: '10.0.2.2:8080', level: 40 });
  });
});

describe('recovery: why a recovery failed, as the operator reads it', () => {
  /** The one "recovery failed" line: its code and its reason. */
  const failure = (logs: Record<string, unknown>[]) => {
    const lines = logs.filter((l) => l.msg === 'recovery failed');
    expect(lines, 'one "recovery failed" line').to.have.length(1);
    return { code: lines[0]!.code, reason: lines[0]!.reason };
  };
  const replayAnswer = (req: ForwardRequest): Partial<ForwardResponse> | undefined =>
    JSON.parse(req.body!.toString()).id === undefined ? { status: 202 } : undefined;

  for (const [name, arrange, code, reason] of [
    ['the re-initialize answered 503', (p: FakePods) => (p.init = () => ({ status: 503 })), 'MCP_PIN_RECOVERY_UNAVAILABLE', 're-initialize answered 503'],
    [
      'the re-initialize could not be sent',
      (p: FakePods) => (p.init = () => new Error('connect ECONNREFUSED 10.0.1.1:8080')),
      'MCP_PIN_RECOVERY_UNAVAILABLE',
      're-initialize request failed: connect ECONNREFUSED 10.0.1.1:8080',
    ],
    [
      'Envoy answered the re-initialize itself',
      (p: FakePods) => (p.init = () => ({ status: 503, upstream: undefined, envoyReply: 'no_healthy_upstream' })),
      'MCP_PIN_RECOVERY_UNAVAILABLE',
      'no pod answered the re-initialize (no_healthy_upstream)',
    ],
    [
      'the re-initialize came back without a session id',
      (p: FakePods) => (p.init = () => ({ headers: [] })),
      'MCP_PIN_RECOVERY_UNAVAILABLE',
      're-initialize answered without a usable session id',
    ],
    [
      'Envoy did not say which pod answered',
      (p: FakePods) => (p.init = () => ({ upstream: undefined })),
      'MCP_PIN_RECOVERY_UNAVAILABLE',
      'Envoy reported no usable upstream for re-initialize (none)',
    ],
    [
      'a pod refused the stored initialize',
      (p: FakePods) => (p.init = () => ({ status: 422 })),
      'MCP_PIN_RECOVERY_REINIT_REFUSED',
      'the stored initialize was refused with 422',
    ],
    [
      'notifications/initialized was refused',
      (p: FakePods) => (p.notify = () => ({ status: 400 })),
      'MCP_PIN_RECOVERY_UNAVAILABLE',
      'notifications/initialized answered 400',
    ],
    [
      'notifications/initialized could not be sent',
      (p: FakePods) => (p.notify = () => new Error('socket hang up')),
      'MCP_PIN_RECOVERY_UNAVAILABLE',
      'notifications/initialized failed: socket hang up',
    ],
    [
      'a replayed setLevel answered 503',
      (p: FakePods) => (p.notify = (req) => replayAnswer(req) ?? { status: 503 }),
      'MCP_PIN_RECOVERY_UNAVAILABLE',
      'replaying logging/setLevel answered 503',
    ],
    [
      'a replayed setLevel could not be sent',
      (p: FakePods) => (p.notify = (req) => replayAnswer(req) ?? new Error('other side closed')),
      'MCP_PIN_RECOVERY_UNAVAILABLE',
      'replaying logging/setLevel failed: other side closed',
    ],
  ] as const) {
    it(`${name}: "${reason}"`, async () => {
      const { store, pods, recoverer, attempt, logs } = await setup();
      await store.changeState('client-1', { op: 'setLevel', level: 'error' });
      arrange(pods);
      expect(failed(await recoverer.planRetry(attempt(), never))).to.equal(code);
      expect(failure(logs)).to.deep.equal({ code, reason });
    });
  }

  it('no initialize was kept: "no initialize body stored for this session"', async () => {
    const { recoverer, attempt, logs } = await setup(null);
    await recoverer.planRetry(attempt(), never);
    expect(failure(logs)).to.deep.equal({ code: 'MCP_PIN_RECOVERY_NO_INIT_BODY', reason: 'no initialize body stored for this session' });
  });

  it('the re-initialized pod is outside --pin-allow: nothing more is sent to it, the record is kept', async () => {
    const { store, pods, recoverer, attempt, logs } = await setup(INIT, cfg.recoveryTimeoutMs, { allows: (pod) => pod !== RETRY_POD });
    expect(failed(await recoverer.planRetry(attempt(), never))).to.equal('MCP_PIN_RECOVERY_UNAVAILABLE');
    expect(failure(logs).reason).to.equal(`re-initialized pod ${RETRY_POD} is outside --pin-allow`);
    expect(pods.count('notifications/initialized')).to.equal(0);
    expect(await store.lookup('client-1')).to.deep.include({ pod: OLD_POD, generation: 1 });
  });

  it('an Envoy reply of 404 to the re-initialize (no route, no pod) is no refusal by a pod: the record is kept', async () => {
    const { store, pods, recoverer, attempt } = await setup();
    pods.init = () => ({ status: 404, upstream: undefined, envoyReply: 'route_not_found' });
    expect(failed(await recoverer.planRetry(attempt(), never))).to.equal('MCP_PIN_RECOVERY_UNAVAILABLE');
    expect(await store.lookup('client-1')).to.deep.include({ pod: OLD_POD, generation: 1 });
  });

  it('another replica held the lock past the deadline: "recovery took longer than 150 ms"', async () => {
    const { store, recoverer, attempt, logs } = await setup(INIT, 150);
    await store.tryLock('client-1', 'stuck', 60_000);
    await recoverer.planRetry(attempt(), never);
    expect(failure(logs)).to.deep.equal({ code: 'MCP_PIN_RECOVERY_TIMEOUT', reason: 'recovery took longer than 150 ms' });
  });

  /** Makes the store's load answer null from its `n`th call on (the session was deleted meanwhile). */
  const goneAfter = (store: MemoryStore, n: number) => {
    const load = store.load.bind(store);
    let calls = 0;
    store.load = async (sid) => (++calls >= n ? null : load(sid));
  };

  it('the session left the store while it was being recovered: before the lock, under it, or after a lost compare-and-set', async () => {
    // 1. Gone before the lock was taken (the plan read it, the recovery did not find it).
    const before = await setup();
    goneAfter(before.store, 2);
    expect(failed(await before.recoverer.planRetry(before.attempt(), never))).to.equal('MCP_PIN_RECOVERY_GONE');
    expect(failure(before.logs).reason).to.equal('session no longer in the store');
    expect(before.pods.sent, 'nothing sent').to.have.length(0);
    // 2. Gone once the lock was taken.
    const under = await setup();
    goneAfter(under.store, 3);
    expect(failed(await under.recoverer.planRetry(under.attempt(), never))).to.equal('MCP_PIN_RECOVERY_GONE');
    expect(failure(under.logs).reason).to.equal('session no longer in the store');
    expect(under.pods.sent, 'no proof for a session that is gone').to.have.length(0);
    // 3. Its compare-and-set lost, and the winner is gone too.
    const after = await setup();
    after.pods.init = () => {
      void after.store.remove('client-1');
      return {};
    };
    expect(failed(await after.recoverer.planRetry(after.attempt(), never))).to.equal('MCP_PIN_RECOVERY_GONE');
    expect(failure(after.logs).reason).to.equal('session vanished while recovering');
  });

  for (const [step, hangs] of [
    ['its proof (a ping nobody answers)', (r: ForwardRequest) => r.body!.toString().includes('"ping"')],
    ['its re-initialize', (r: ForwardRequest) => r.body!.toString().includes('"initialize"')],
    ['its notifications/initialized', (r: ForwardRequest) => r.body!.toString().includes('notifications/initialized')],
    ['the replay of its state', (r: ForwardRequest) => r.body!.toString().includes('logging/setLevel')],
  ] as const) {
    it(`a recovery stuck in ${step} past the deadline fails with RECOVERY_TIMEOUT, sends nothing after it, and keeps the record`, async () => {
      const { store, pods, recoverer, attempt, logs } = await setup(INIT, 100);
      await store.changeState('client-1', { op: 'setLevel', level: 'error' });
      pods.hangs = hangs;
      expect(failed(await recoverer.planRetry(attempt(), never))).to.equal('MCP_PIN_RECOVERY_TIMEOUT');
      // The deadline's own abort is no cause worth a word.
      expect(failure(logs)).to.deep.equal({ code: 'MCP_PIN_RECOVERY_TIMEOUT', reason: 'recovery took longer than 100 ms' });
      expect(pods.sent.findIndex(hangs), 'the request that hung was the last one sent').to.equal(pods.sent.length - 1);
      expect(await store.lookup('client-1')).to.deep.include({ pod: OLD_POD, generation: 1 });
    });
  }

  it("a store error that arrives as the deadline passes is reported as the store's, not as a timeout", async () => {
    const { store, recoverer, attempt, logs } = await setup(INIT, 50);
    store.tryLock = async () => {
      await new Promise((r) => setTimeout(r, 120));
      throw new StoreError('MCP_PIN_STORE_TIMEOUT', 'Redis lock took longer than 100 ms');
    };
    expect(failed(await recoverer.planRetry(attempt(), never))).to.equal('MCP_PIN_STORE_TIMEOUT');
    expect(failure(logs)).to.deep.equal({ code: 'MCP_PIN_STORE_TIMEOUT', reason: 'Redis lock took longer than 100 ms' });
  });

  it('an error no step expects (a bug) is MCP_PIN_UNEXPECTED, in the plan and in the recovery, never a timeout or a cancel', async () => {
    const inPlan = await setup();
    inPlan.store.load = async () => {
      throw new TypeError('undefined is not a function');
    };
    expect(failed(await inPlan.recoverer.planRetry(inPlan.attempt(), never))).to.equal('MCP_PIN_UNEXPECTED');
    const inRecovery = await setup();
    inRecovery.store.tryLock = async () => {
      throw new TypeError('undefined is not a function');
    };
    expect(failed(await inRecovery.recoverer.planRetry(inRecovery.attempt(), never))).to.equal('MCP_PIN_UNEXPECTED');
    expect(failure(inRecovery.logs)).to.deep.equal({ code: 'MCP_PIN_UNEXPECTED', reason: 'undefined is not a function' });
  });

  it('no reason carries the session id (a bearer credential)', async () => {
    const { pods, recoverer, attempt, logs } = await setup();
    pods.init = () => new Error('connect ECONNREFUSED');
    await recoverer.planRetry(attempt(), never);
    expect(JSON.stringify(logs)).to.not.contain('client-1');
  });
});

describe('recovery: the details each step gets right', () => {
  /** A pod that answers each replayed request with `answer(id, method)`, and the rest as FakePods does. */
  const replaying = (pods: FakePods, answer: (id: string, uri: string | undefined) => Partial<ForwardResponse>) => {
    pods.notify = (req) => {
      const msg = JSON.parse(req.body!.toString()) as { id?: string; params?: { uri?: string } };
      return msg.id === undefined ? { status: 202 } : answer(msg.id, msg.params?.uri);
    };
  };
  const ok = (id: string): Partial<ForwardResponse> => ({
    status: 200,
    headers: [['content-type', 'application/json']],
    body: Buffer.from(`{"jsonrpc":"2.0","id":"${id}","result":{}}`),
  });

  it("gives a caller's deadline the recovery timeout, as a deadline (not a cancel)", async () => {
    const { recoverer } = await setup(INIT, 30);
    const d = recoverer.deadline(never);
    await eventually(async () => d.aborted, 'the deadline passed');
    expect(abortedByDeadline(d)).to.equal(true);
  });

  it("sends every request of its own as a POST, with one accept, one content-type and no last-event-id of the client's", async () => {
    const { store, pods, recoverer, attempt } = await setup();
    await store.changeState('client-1', { op: 'subscribe', uri: 'demo://a' });
    replaying(pods, ok);
    const headers = [
      ...attempt().headers.filter(([k]) => k !== 'accept'),
      ['accept', 'text/event-stream'],
      ['content-type', 'text/plain'],
      ['last-event-id', 'ev-7'],
    ] as [string, string][];
    expect(await recoverer.planRetry(attempt({ headers }), never)).to.deep.include({ kind: 'send', reinitialized: true });
    expect(pods.sent.map((r) => JSON.parse(r.body!.toString()).method)).to.deep.equal([
      'ping',
      'initialize',
      'notifications/initialized',
      'resources/subscribe',
    ]);
    for (const r of pods.sent) {
      expect(r.method).to.equal('POST');
      const names = r.headers.map(([k]) => k);
      expect(
        names.filter((k) => k === 'accept'),
        'one accept',
      ).to.have.length(1);
      expect(
        names.filter((k) => k === 'content-type'),
        'one content-type',
      ).to.have.length(1);
      expect(names, 'the GET stream position is not ours to send').to.not.include('last-event-id');
    }
  });

  it('replays the state in the version the new pod settled on, and reads a refusal sent as an SSE event', async () => {
    const init = Buffer.from('{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}');
    const { store, pods, recoverer, attempt } = await setup(init);
    await store.changeState('client-1', { op: 'subscribe', uri: 'demo://gone' });
    pods.init = () => ({ body: Buffer.from('event: message\ndata: {"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-03-26"}}\n\n') });
    replaying(pods, (id) => ({
      status: 200,
      headers: [['content-type', 'text/event-stream']],
      body: Buffer.from(`event: message\ndata: {"jsonrpc":"2.0","id":"${id}","error":{"code":-32002,"message":"Resource not found"}}\n\n`),
    }));
    expect(await recoverer.planRetry(attempt(), never)).to.deep.include({ kind: 'send', reinitialized: true });
    const replay = pods.sent.find((r) => r.body!.toString().includes('resources/subscribe'))!;
    expect(Object.fromEntries(replay.headers)['mcp-protocol-version']).to.equal('2025-03-26');
    expect((await store.load('client-1'))!.state.subscriptions, 'the refused subscription is no longer kept').to.deep.equal([]);
  });

  it('carries on when the store cannot drop a refused subscription (counted as ignored): the session is recovered, the next recovery asks again', async () => {
    const { store, pods, recoverer, attempt, metrics } = await setup();
    await store.changeState('client-1', { op: 'subscribe', uri: 'demo://gone' });
    replaying(pods, (id) => ({ status: 200, body: Buffer.from(`{"jsonrpc":"2.0","id":"${id}","error":{"code":-32002,"message":"gone"}}`) }));
    const changeState = store.changeState.bind(store);
    store.changeState = async () => {
      throw new StoreError('MCP_PIN_STORE_UNAVAILABLE', 'down');
    };
    expect(await recoverer.planRetry(attempt(), never)).to.deep.include({ kind: 'send', reinitialized: true });
    expect((await metrics.ignoredErrors.get()).values.find((v) => v.labels.op === 'drop_refused_state')?.value).to.equal(1);
    store.changeState = changeState;
    expect((await store.load('client-1'))!.state.subscriptions).to.deep.equal(['demo://gone']);
  });

  it('replays to the new pod a change the old pod took while the recovery ran (I8), and only that change', async () => {
    const { store, pods, recoverer, attempt, metrics } = await setup();
    await store.changeState('client-1', { op: 'subscribe', uri: 'demo://a' });
    // The old pod answered a subscribe just before it died: it is kept while the re-initialize is on the wire.
    pods.init = () => {
      void store.changeState('client-1', { op: 'subscribe', uri: 'demo://late' });
      return {};
    };
    replaying(pods, ok);
    expect(await recoverer.planRetry(attempt(), never)).to.deep.include({ kind: 'send', reinitialized: true });
    const subscribes = pods.sent.filter((r) => r.body!.toString().includes('resources/subscribe')).map((r) => JSON.parse(r.body!.toString()).params.uri);
    expect(subscribes).to.deep.equal(['demo://a', 'demo://late']);
    // A late change the new pod cannot take (it died too): the recovery stands, the failure is counted, the change kept for the next one.
    const second = await setup();
    await second.store.changeState('client-1', { op: 'subscribe', uri: 'demo://a' });
    second.pods.init = () => {
      void second.store.changeState('client-1', { op: 'subscribe', uri: 'demo://late' });
      return {};
    };
    replaying(second.pods, (id, uri) => (uri === 'demo://late' ? { status: 503 } : ok(id)));
    expect(await second.recoverer.planRetry(second.attempt(), never)).to.deep.include({ kind: 'send', reinitialized: true });
    expect((await second.metrics.ignoredErrors.get()).values.find((v) => v.labels.op === 'replay_late_state')?.value).to.equal(1);
    expect((await second.store.load('client-1'))!.state.subscriptions).to.deep.equal(['demo://a', 'demo://late']);
    expect(await metrics.ignoredErrors.get().then((m) => m.values.every((v) => v.value === 0)), 'nothing ignored the first time').to.equal(true);
  });

  it("sends no late change when a newer recovery replaced this one's pin before it looked", async () => {
    const { store, pods, recoverer, attempt } = await setup();
    const replacePin = store.replacePin.bind(store);
    store.replacePin = async (...args) => {
      const pin = await replacePin(...args);
      // Another replica moved the session again, and a change was kept under that newer pin.
      await replacePin('client-1', pin!.generation, '10.0.7.7:8080', 'newer');
      await store.changeState('client-1', { op: 'subscribe', uri: 'demo://theirs' });
      return pin;
    };
    replaying(pods, ok);
    await recoverer.planRetry(attempt(), never);
    expect(pods.count('resources/subscribe'), "the newer pin's pod is that recovery's business").to.equal(0);
  });

  it('counts a recovery once, as what it was: not lost is not "recovered", and another replica\'s recovery is not counted here', async () => {
    const count = async (m: Metrics) =>
      Object.fromEntries(
        (await m.recoverySeconds.get()).values.filter((v) => v.metricName === 'mcp_pin_recovery_seconds_count').map((v) => [v.labels.result, v.value]),
      );
    const held = await setup();
    held.pods.probe = () => ({ status: 200 });
    await held.recoverer.planRetry(held.attempt(), never);
    expect(await count(held.metrics)).to.deep.include({ not_lost: 1, recovered: 0, failed: 0 });
    const theirs = await setup();
    const tryLock = theirs.store.tryLock.bind(theirs.store);
    theirs.store.tryLock = async (...args) => {
      await theirs.store.replacePin('client-1', 1, RETRY_POD, 'theirs');
      return tryLock(...args);
    };
    await theirs.recoverer.planRetry(theirs.attempt(), never);
    expect(await count(theirs.metrics)).to.deep.include({ not_lost: 0, recovered: 0, failed: 0 });
  });

  it('where the session MCP path is not known, a send is never marked as on it (its lost statuses prove nothing)', async () => {
    const store = new MemoryStore({ sessionTtlMs: 60_000 });
    await store.create('client-1', { pod: OLD_POD, backendSessionId: 'client-1', initBody: INIT, initPath: null });
    const pods = new FakePods();
    pods.probe = () => new Error('ECONNREFUSED');
    const recoverer = new HttpRecoverer({ cfg, store, log: silentLog, metrics: newMetrics(), forwarder: pods });
    const attempt = { clientSessionId: 'client-1', failedSessionId: 'client-1', pod: RETRY_POD, path: '/mcp', headers: [] as [string, string][] };
    expect(await recoverer.planRetry(attempt, never)).to.deep.include({ kind: 'send', reinitialized: true, onPath: false });
    // A newer pin followed: the same.
    expect(await recoverer.planRetry(attempt, never)).to.deep.include({ kind: 'send', reinitialized: false, onPath: false });
  });

  it('waits for a lock another replica holds with polls that double from 20 ms up to 200 ms', async () => {
    const clock = new VirtualClock();
    const store = new MemoryStore({ sessionTtlMs: 60_000, now: clock.now });
    await store.create('client-1', { pod: OLD_POD, backendSessionId: 'client-1', initBody: INIT, initPath: '/mcp' });
    await store.tryLock('client-1', 'other-replica', 60_000);
    const tries: number[] = [];
    const tryLock = store.tryLock.bind(store);
    store.tryLock = async (...args) => {
      tries.push(clock.now());
      return tryLock(...args);
    };
    const recovery = sessionRecovery(store, new FakePods(), { timeoutMs: 10_000, clock });
    const planned = recovery.planRetry({ clientSessionId: 'client-1', failedSessionId: 'client-1', pod: RETRY_POD, path: '/mcp', headers: [] }, never);
    while (tries.length < 8) {
      await new Promise((r) => setImmediate(r));
      if (tries.length < 8) clock.advance();
    }
    expect(tries.slice(1).map((t, i) => t - tries[i]!)).to.deep.equal([20, 40, 80, 160, 200, 200, 200]);
    clock.jump(10_000);
    expect(failed(await planned)).to.equal('MCP_PIN_RECOVERY_TIMEOUT');
  });
});

describe('recovery: catching a new pod up on a change its old pod took (I8)', () => {
  const MOVED = 'backend-now';
  async function moved() {
    const s = await setup();
    await s.store.replacePin('client-1', 1, RETRY_POD, MOVED);
    return { ...s, recovery: sessionRecovery(s.store, s.pods) };
  }
  const subscribe = { op: 'subscribe', uri: 'demo://late' } as const;

  it("sends a change of a session whose MCP path was not kept to '/' (where a pod that kept no path serves it)", async () => {
    const { recovery, pods, store } = await moved();
    await store.remove('client-1');
    await store.create('client-1', { pod: RETRY_POD, backendSessionId: MOVED, initBody: INIT, initPath: null });
    pods.notify = (req) => ({ status: 200, body: Buffer.from(`{"jsonrpc":"2.0","id":"${JSON.parse(req.body!.toString()).id}","result":{}}`) });
    expect(await recovery.catchUpState('client-1', 'client-1', subscribe, [])).to.equal('sent');
    expect(pods.sent.map((r) => r.path)).to.deep.equal(['/']);
  });

  it('sends nothing when the pod that answered is the one the session is on ("current")', async () => {
    const { recovery, pods } = await moved();
    expect(await recovery.catchUpState('client-1', MOVED, subscribe, [])).to.equal('current');
    expect(await recovery.catchUpState('nobody', 'x', subscribe, [])).to.equal('current');
    expect(pods.sent).to.have.length(0);
  });

  it("sends the change to the session's pod, in the client's protocol version: 'sent' when taken, 'refused' (and dropped) when not", async () => {
    const { recovery, pods, store } = await moved();
    await store.changeState('client-1', subscribe);
    pods.notify = (req) => {
      const id = JSON.parse(req.body!.toString()).id as string;
      return { status: 200, body: Buffer.from(`{"jsonrpc":"2.0","id":"${id}","result":{}}`) };
    };
    expect(await recovery.catchUpState('client-1', 'client-1', subscribe, [['mcp-protocol-version', '2025-06-18']])).to.equal('sent');
    const [sent] = pods.sent;
    expect(sent).to.deep.include({ pod: RETRY_POD, method: 'POST', path: '/mcp' });
    expect(Object.fromEntries(sent!.headers)).to.include({ 'mcp-session-id': MOVED, 'mcp-protocol-version': '2025-06-18' });
    pods.notify = (req) => {
      const id = JSON.parse(req.body!.toString()).id as string;
      return { status: 200, body: Buffer.from(`{"jsonrpc":"2.0","id":"${id}","error":{"code":-32002,"message":"gone"}}`) };
    };
    expect(await recovery.catchUpState('client-1', 'client-1', subscribe, [])).to.equal('refused');
    expect((await store.load('client-1'))!.state.subscriptions).to.deep.equal([]);
  });

  it("'failed' when that pod lost the session too (its next recovery replays the kept state); a store that cannot drop a refusal is counted", async () => {
    const { recovery, pods, store } = await moved();
    pods.notify = () => ({ status: 404 });
    expect(await recovery.catchUpState('client-1', 'client-1', subscribe, [])).to.equal('failed');
    const ignored: string[] = [];
    const failing = Object.assign(Object.create(store) as MemoryStore, {
      changeState: async () => {
        throw new StoreError('MCP_PIN_STORE_UNAVAILABLE', 'down');
      },
    });
    const counting = sessionRecovery(failing, pods, { onIgnoredError: (op) => ignored.push(op) });
    pods.notify = (req) => {
      const id = JSON.parse(req.body!.toString()).id as string;
      return { status: 200, body: Buffer.from(`{"jsonrpc":"2.0","id":"${id}","error":{"code":-32002,"message":"gone"}}`) };
    };
    expect(await counting.catchUpState('client-1', 'client-1', subscribe, [])).to.equal('refused');
    expect(ignored).to.deep.equal(['drop_refused_state']);
  });
});
