/**
 * A simulated deployment for the recovery protocol: the real mcp-pin code
 * (Exchange, AttemptExchange, HttpRecoverer/SessionRecovery, CachedStore over
 * one MemoryStore) of two replicas, on a virtual clock, with every await that
 * crosses a process boundary (store call, pod answer) resolved in an order
 * fast-check's scheduler picks. Envoy's part is modelled as the template
 * configures it (envoy/envoy.template.yaml): the pinned route's retries
 * (num_retries 2, previous_hosts, lost-session statuses and connect
 * failures; resets only for methods safe to replay), the upstream ext_proc
 * only on attempts after the first, its per-message timeout and
 * override_message_timeout, the internal listener's local replies, and the
 * downstream ext_proc's response phase. Pods are modelled as the SDK servers
 * behave: sessions in memory, lost on restart, MCP only at /mcp, a 404 for an
 * unknown session.
 *
 * Everything a check needs is recorded: every delivery of a client request
 * to a pod (and whether that pod held the session and ran it), every
 * re-initialize (and whether the old pod still held the session at that
 * moment), every answer a client got, and why each record left the store.
 */
import type { Scheduler } from 'fast-check';
import { pino } from 'pino';
import { AttemptExchange } from '../../src/extproc/attempt.js';
import { CLIENT_ERRORS } from '../../src/extproc/error-responses.js';
import { Exchange } from '../../src/extproc/exchange.js';
import { StateRecorder } from '../../src/extproc/state-recorder.js';
import { REDIRECTED_SESSION_HEADER } from '../../src/mcp-headers.js';
import type { HeaderMutation, ProcessingRequest, ProcessingResponse } from '../../src/extproc/protocol.js';
import { untilAborted } from '../../src/clock.js';
import { Metrics } from '../../src/metrics.js';
import type { ForwardRequest, ForwardResponse, Forwarder } from '../../src/recovery/forwarder.js';
import { HttpRecoverer } from '../../src/recovery/http-recoverer.js';
import { CachedStore } from '../../src/sessions/cached-store.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { TimedStore } from '../../src/sessions/timed-store.js';
import { StoreError } from '../../src/errors.js';
import type { SessionStore } from '../../src/sessions/store.js';
import { ENVOY_DEFAULTS } from '../../envoy/params.js';
import { CLIENT_SESSION_HEADER } from '../../src/mcp-headers.js';
import { SHIPPED, maxAttempts, replayedAfterReset, retriesAfter, routeFor, type ShippedRoute } from './shipped-envoy.js';
import { VirtualClock } from './virtual-clock.js';

export const PODS = ['10.0.0.1:80', '10.0.0.2:80', '10.0.0.3:80'] as const;
export const MCP_PATH = '/mcp';
const PIN_HEADER = ENVOY_DEFAULTS.pinHeader;
/** An override_message_timeout Envoy took: the new timeout, from when it came. */
interface Extension {
  ms: number;
  at: number;
}
const CLIENT_SESSION = CLIENT_SESSION_HEADER;

export type Kind = 'call' | 'slow-call' | 'read' | 'typo' | StateKind;
/** Requests that set session state (session-state.ts): they take the session-state route. */
export type StateKind = 'subscribe' | 'unsubscribe' | 'set-level';
const STATE_METHOD: Record<StateKind, string> = { subscribe: 'resources/subscribe', unsubscribe: 'resources/unsubscribe', 'set-level': 'logging/setLevel' };
const isStateKind = (k: Kind): k is StateKind => k in STATE_METHOD;
/** What a pod keeps per session of what the client set. */
interface PodSessionState {
  subs: Set<string>;
  level: string | null;
}
type Headers = [string, string][];

interface PodState {
  up: boolean;
  sessions: Set<string>;
  /** Per backend session: its subscriptions and log level, as the SDK servers keep them. */
  state: Map<string, PodSessionState>;
  n: number;
  /** Next initialize answers this status (once); 0: none. */
  initFault: number;
  /** Every initialize answers 400 (the stored initialize is no longer acceptable). */
  refuseInit: boolean;
  /** The next client request runs, then its connection resets before the answer. */
  resetNext: boolean;
}

export interface Delivery {
  pod: string;
  /** The pod held the session the request named when it arrived. */
  held: boolean;
  /** The pod ran the method (it may have effects). */
  ran: boolean;
  via: 'envoy' | 'relay';
  /** 0, or 1 once Envoy started the request again after mcp-pin's redirect. */
  pass: number;
}

export type Answer =
  | { from: 'pod'; status: number; sessionId: string | undefined }
  | { from: 'mcp-pin'; status: number; details: string; mayHaveRun: boolean; sessionId: string | undefined }
  | { from: 'envoy'; status: number; details: string; saysMayHaveRun: boolean }
  | { from: 'nobody'; why: 'client left' };

export interface ClientRequest {
  rid: string;
  client: string;
  kind: Kind;
  method: string;
  deliveries: Delivery[];
  answer?: Answer;
  abort: AbortController;
  done: Promise<void>;
  /** Sent with x-envoy-original-url, as a request Envoy already started again. */
  startedAgain: boolean;
  /** Times Envoy started it again after mcp-pin's redirect. */
  redirects: number;
  /** A state request's URI or level. */
  param?: string;
}

export interface Violation {
  invariant: string;
  detail: string;
}

/**
 * What one store call meets on its way (issue 28 item 2): nothing; a store
 * that never got it (Redis down: the call fails, nothing was written); an
 * answer lost after the store ran it (the write happened, the caller cannot
 * know); or a store so slow that the call times out (--store-timeout-ms of
 * virtual time), its write done meanwhile.
 */
export type StoreFault = 'none' | 'unreachable' | 'lost-answer' | 'timeout';

/**
 * Every call of a store through one wrapper (close passes straight through;
 * connect, the app's start-up wait, is the shared store's and never wrapped):
 * the fault plan and the scheduler share it.
 */
type CallWrapper = <R>(op: string, call: () => Promise<R>) => Promise<R>;
const CALLS = [
  'lookup',
  'create',
  'adopt',
  'load',
  'replacePin',
  'changeState',
  'remove',
  'removeIfGeneration',
  'rememberUnknown',
  'isRememberedUnknown',
  'tryLock',
  'unlock',
  'ping',
] as const satisfies readonly Exclude<keyof SessionStore, 'close' | 'connect'>[];

// Every call of the interface is listed: a new one fails to compile here rather than go unwrapped.
const everyCallListed: Exclude<Exclude<keyof SessionStore, 'close' | 'connect'>, (typeof CALLS)[number]> extends never ? true : never = true;
void everyCallListed;

function wrapStore(inner: SessionStore, wrap: CallWrapper): SessionStore {
  const out: Record<string, unknown> = { close: () => inner.close() };
  for (const op of CALLS) {
    const fn = (inner[op] as (...a: unknown[]) => Promise<unknown>).bind(inner);
    out[op] = (...a: unknown[]) => wrap(op, () => fn(...a));
  }
  return out as unknown as SessionStore;
}

/** The store with a fault plan: each call, of either replica, takes the plan's next entry (past its end: none). */
function faultyStore(inner: SessionStore, nextFault: () => StoreFault, sleep: (ms: number) => Promise<void>): SessionStore {
  return wrapStore(inner, async (op, call) => {
    const fault = nextFault();
    if (fault === 'unreachable') throw new StoreError('MCP_PIN_STORE_UNAVAILABLE', `sim: ${op} did not reach the store`);
    const result = await call();
    if (fault === 'lost-answer') throw new StoreError('MCP_PIN_STORE_TIMEOUT', `sim: ${op} ran, its answer was lost`);
    if (fault === 'timeout') {
      await sleep(SHIPPED.storeTimeoutMs);
      throw new StoreError('MCP_PIN_STORE_TIMEOUT', `sim: ${op} ran, and timed out after ${SHIPPED.storeTimeoutMs} ms`);
    }
    return result;
  });
}

/** The store as one process sees another: every call answers in an order the scheduler picks. */
function scheduledStore(inner: SessionStore, s: Scheduler): SessionStore {
  return wrapStore(inner, (_op, call) => {
    // The call runs now; its answer (or error) comes when the scheduler says. An error is
    // observed here too, so one whose answer the run never delivers is not an unhandled rejection.
    const answer = call();
    answer.catch(() => {});
    return s.schedule(answer);
  });
}

const hdr = (h: Headers, name: string): string | undefined => h.find(([k]) => k === name)?.[1];

function applyMutation(h: Headers, m: HeaderMutation | undefined): Headers {
  if (!m) return h;
  let out = h.filter(([k]) => !(m.remove_headers ?? []).includes(k));
  for (const sh of m.set_headers ?? []) {
    const key = sh.header.key;
    const value = sh.header.raw_value.toString('latin1');
    const exists = out.some(([k]) => k === key);
    if (sh.append_action === 'OVERWRITE_IF_EXISTS' && !exists) continue;
    out = [...out.filter(([k]) => k !== key), [key, value]];
  }
  return out;
}

function wire(h: Headers): { headers: { headers: { key: string; raw_value: Buffer }[] } } {
  return { headers: { headers: h.map(([key, v]) => ({ key, raw_value: Buffer.from(v) })) } };
}

export interface WorldOptions {
  /** Each replica's pin cache (--pin-cache-ms); 0: off. */
  pinCacheMs?: number;
  /** The shared store, given the world's clock (default: a MemoryStore); a RedisStore runs the real Lua scripts. */
  store?: (now: () => number) => SessionStore;
  /** What each replica's store calls meet, in order (default: nothing). */
  storeFaults?: readonly StoreFault[];
}

export class World {
  readonly clock = new VirtualClock();
  readonly violations: Violation[] = [];
  readonly requests: ClientRequest[] = [];
  readonly pods = new Map<string, PodState>(
    PODS.map((p) => [p, { up: true, sessions: new Set(), state: new Map(), n: 0, initFault: 0, refuseInit: false, resetNext: false }]),
  );
  /** Why a client's record may be gone: DELETE answered, or a pod refused its stored initialize (4xx). */
  readonly mayBeGone = new Map<string, string>();
  private readonly shared: SessionStore;
  private readonly replicas: { exchangeDeps: ConstructorParameters<typeof Exchange>[0]; recoverer: HttpRecoverer; store: SessionStore }[];
  /** Re-initializes on the wire now, per client: at most one (I4). */
  private readonly reinitInFlight = new Map<string, number>();
  private rr = 0;
  private nextRid = 0;
  /** How many re-initializes left for a pod: the generator's coverage. */
  reinitializes = 0;
  /** How many requests recoveries sent to rebuild session state (I8's coverage). */
  stateReplays = 0;
  /** Store calls the replicas made through the fault plan (its entries used). */
  storeCalls = 0;
  /** Checks that read the store as something happened (I6), still answering. */
  private readonly pendingChecks: Promise<void>[] = [];

  constructor(
    private readonly s: Scheduler,
    readonly clients: string[],
    opts: WorldOptions = {},
  ) {
    this.shared = opts.store ? opts.store(this.clock.now) : new MemoryStore({ sessionTtlMs: 3_600_000, now: this.clock.now });
    const log = pino({ level: 'silent' });
    const cfg = {
      pinHeader: PIN_HEADER,
      upstreamHeader: 'x-mcp-pin-upstream',
      recoveryUrl: 'http://sim.invalid',
      recoveryTimeoutMs: SHIPPED.recoveryTimeoutMs,
      lostSessionStatuses: SHIPPED.lostSessionStatuses,
      maxSessionIdLength: 256,
      maxInitBodyBytes: 65536,
      relayBudgetBytes: 64 << 20,
    };
    const nextFault = (): StoreFault => opts.storeFaults?.[this.storeCalls++] ?? 'none';
    this.replicas = [0, 1].map(() => {
      const metrics = new Metrics();
      // As it ships (src/sessions/index.ts): the store timed for metrics, under the pin cache.
      const timed = new TimedStore(this.shared, () => {});
      // Faults wrap the scheduled store: a timed-out call waits on the virtual clock after the scheduler delivered
      // it (inside a scheduled task, that wait would block the scheduler that the clock waits for).
      const delivered = scheduledStore(timed, s);
      const scheduled = opts.storeFaults?.length ? faultyStore(delivered, nextFault, (ms) => this.clock.sleep(ms)) : delivered;
      const store = (opts.pinCacheMs ?? 0) > 0 ? new CachedStore(scheduled, { ttlMs: opts.pinCacheMs!, now: this.clock.now }) : scheduled;
      const recoverer = new HttpRecoverer({ cfg, store, log, metrics, forwarder: this.forwarder(), clock: this.clock });
      return { exchangeDeps: { store, cfg, log, metrics }, recoverer, store };
    });
  }

  /** Each client starts with a session on a pod, made by an initialize at /mcp. */
  async seed(): Promise<void> {
    // A RedisStore connects first (it queues nothing while offline, as it ships).
    await this.shared.connect?.(5000);
    for (const [i, c] of this.clients.entries()) {
      const pod = PODS[i % PODS.length]!;
      this.pods.get(pod)!.sessions.add(c);
      await this.shared.create(c, { pod, backendSessionId: c, initBody: initBody(c), initPath: MCP_PATH });
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.pendingChecks);
    await this.shared.close();
  }

  /** Fails the run with every violation and the scheduler's last 30 steps, if any invariant broke. */
  throwIfViolated(scheduler: Scheduler): void {
    if (this.violations.length === 0) return;
    const steps = scheduler
      .report()
      .slice(-30)
      .map((t) => t.label)
      .join(', ');
    throw new Error(`${this.violations.map((v) => `${v.invariant}: ${v.detail}`).join('\n')}\nscheduler: ${steps}`);
  }

  private violate(invariant: string, detail: string): void {
    this.violations.push({ invariant, detail });
  }

  // ---- pods ----

  kill(pod: string): void {
    const p = this.pods.get(pod)!;
    p.up = false;
    p.sessions.clear();
    p.state.clear();
  }

  start(pod: string): void {
    this.pods.get(pod)!.up = true;
  }

  restartInPlace(pod: string): void {
    this.kill(pod);
    this.start(pod);
  }

  fault(pod: string, f: 'init-500-once' | 'init-400' | 'reset-next'): void {
    const p = this.pods.get(pod)!;
    if (f === 'init-500-once') p.initFault = 500;
    if (f === 'init-400') p.refuseInit = true;
    if (f === 'reset-next') p.resetNext = true;
  }

  /**
   * One HTTP request arriving at a pod. Returns its answer, or 'refused'
   * (nothing listens) or 'reset' (ran, then the connection broke).
   */
  private async atPod(
    podAddr: string,
    method: string,
    path: string,
    headers: Headers,
    body: string,
    signal?: AbortSignal,
  ): Promise<{ status: number; headers: Headers; body: string } | 'refused' | 'reset'> {
    await this.s.schedule(Promise.resolve(), `arrive ${podAddr}`);
    const pod = this.pods.get(podAddr)!;
    if (!pod.up) return 'refused';
    const rpc = JSON.parse(body || '{}') as { id?: string; method?: string; params?: { clientInfo?: { name?: string } } };
    const sid = hdr(headers, 'mcp-session-id');
    const client = typeof rpc.id === 'string' && rpc.id.startsWith('r') ? this.requests.find((r) => r.rid === rpc.id) : undefined;
    if (method === 'DELETE') {
      if (sid && pod.sessions.delete(sid)) return { status: 200, headers: [], body: '' };
      return { status: 404, headers: [], body: '' };
    }
    if (!sid) {
      if (rpc.method !== 'initialize') return { status: 400, headers: [], body: '' };
      const forClient = rpc.params?.clientInfo?.name ?? '?';
      if (pod.refuseInit) return { status: 400, headers: [], body: '' };
      if (pod.initFault) {
        const status = pod.initFault;
        pod.initFault = 0;
        return { status, headers: [], body: '' };
      }
      const id = `${podAddr}/s${++pod.n}/${forClient}`;
      pod.sessions.add(id);
      return { status: 200, headers: [['mcp-session-id', id]], body: '{}' };
    }
    const held = pod.sessions.has(sid);
    const ok = path === MCP_PATH && held;
    if (client) client.deliveries.push({ pod: podAddr, held, ran: ok, via: signal ? 'relay' : 'envoy', pass: client.redirects });
    if (!ok) return { status: 404, headers: [['content-type', 'application/json']], body: '{"error":{"code":-32001}}' };
    // The state changes when the pod takes the request (as the method runs).
    if (rpc.method === 'resources/subscribe' || rpc.method === 'resources/unsubscribe' || rpc.method === 'logging/setLevel') {
      const st = pod.state.get(sid) ?? { subs: new Set<string>(), level: null };
      pod.state.set(sid, st);
      const p = (rpc as { params?: { uri?: string; level?: string } }).params ?? {};
      if (rpc.method === 'resources/subscribe') st.subs.add(p.uri!);
      else if (rpc.method === 'resources/unsubscribe') st.subs.delete(p.uri!);
      else st.level = p.level!;
    }
    if (client) {
      if (pod.resetNext) {
        pod.resetNext = false;
        return 'reset';
      }
      // The method runs; a slow one takes longer than Envoy's message timeout.
      await this.clock.sleep(client.kind === 'slow-call' ? 1500 : 10);
    }
    return {
      status: rpc.method?.startsWith('notifications/') ? 202 : 200,
      headers: [
        ['mcp-session-id', sid],
        ['content-type', 'application/json'],
      ],
      body: JSON.stringify({ jsonrpc: '2.0', id: rpc.id ?? '', result: {} }),
    };
  }

  /** Envoy's internal listener, as mcp-pin's recovery reaches the pods through it. */
  private forwarder(): Forwarder {
    return {
      send: async (req: ForwardRequest): Promise<ForwardResponse> => {
        const body = req.body?.toString() ?? '';
        const isInit = body.includes('"initialize"');
        if (body.includes('"mcp-pin-replay-')) this.stateReplays++;
        const forClient = isInit ? (JSON.parse(body) as { params: { clientInfo: { name: string } } }).params.clientInfo.name : undefined;
        if (forClient) this.onReinitialize(forClient);
        try {
          const res = await untilAborted(this.atPod(req.pod!, req.method, req.path, req.headers, body, req.signal), req.signal);
          if (res === 'refused')
            return {
              status: 503,
              headers: [],
              body: Buffer.alloc(0),
              upstream: undefined,
              envoyReply: 'upstream_reset_before_response_started{connection_failure}',
            };
          if (res === 'reset')
            return {
              status: 503,
              headers: [],
              body: Buffer.alloc(0),
              upstream: undefined,
              envoyReply: 'upstream_reset_before_response_started{connection_termination}',
            };
          if (isInit && res.status >= 400 && res.status < 500) this.mayBeGone.set(forClient!, `a pod refused its initialize with ${res.status}`);
          return { status: res.status, headers: res.headers, body: Buffer.from(res.body), upstream: req.pod };
        } finally {
          if (forClient) this.reinitInFlight.set(forClient, (this.reinitInFlight.get(forClient) ?? 1) - 1);
        }
      },
      close: async () => {},
    };
  }

  /** I4 and I6, checked at the moment a re-initialize leaves. */
  private onReinitialize(client: string): void {
    this.reinitializes++;
    const n = (this.reinitInFlight.get(client) ?? 0) + 1;
    this.reinitInFlight.set(client, n);
    if (n > 1) this.violate('I4', `${client}: ${n} re-initializes on the wire at once`);
    // The record still names the pin that was found lost (it is replaced only after: on Redis too, the read
    // goes out first on the one connection). Awaited before the records are checked and the store closed.
    this.pendingChecks.push(
      this.shared.load(client).then((rec) => {
        if (rec && this.pods.get(rec.pod)!.sessions.has(rec.backendSessionId))
          this.violate('I6', `${client}: re-initialized while ${rec.pod} still holds ${rec.backendSessionId}`);
      }),
    );
  }

  // ---- clients and Envoy ----

  private replica(): (typeof this.replicas)[number] {
    return this.replicas[this.rr++ % this.replicas.length]!;
  }

  /** A client sends one request of its session; it runs concurrently with everything else. */
  request(client: string, kind: Kind, hostPicks: number[], param?: string): ClientRequest {
    const rid = `r${++this.nextRid}`;
    const method = isStateKind(kind) ? STATE_METHOD[kind] : kind === 'read' ? 'resources/read' : 'tools/call';
    // hostPicks[0] picks no host (attempt 1 follows the pin): one request in three says it was started again.
    const req = {
      rid,
      client,
      kind,
      method,
      deliveries: [],
      abort: new AbortController(),
      startedAgain: (hostPicks[0] ?? 0) >= 4,
      redirects: 0,
      ...(param !== undefined ? { param } : {}),
    } as unknown as ClientRequest;
    this.requests.push(req);
    req.done = this.throughEnvoy(req, hostPicks).then(
      (a) => this.onAnswer(req, a),
      (err: unknown) => this.violate('crash', `${rid}: ${(err as Error)?.stack ?? String(err)}`),
    );
    return req;
  }

  /** A DELETE of the client's session (the pinned DELETE route: no retries). */
  async delete(client: string): Promise<void> {
    // The client ends its session: whatever the pod answers, the record may go.
    this.mayBeGone.set(client, 'deleted');
    const r = this.replica();
    const ex = new Exchange(r.exchangeDeps);
    let headers: Headers = [
      [':method', 'DELETE'],
      [':path', MCP_PATH],
      ['mcp-session-id', client],
    ];
    const [first] = await ex.handle({ request: 'request_headers', request_headers: { ...wire(headers), end_of_stream: true } });
    if (first?.immediate_response) return;
    headers = applyMutation(headers, first?.request_headers?.response?.header_mutation);
    const pod = hdr(headers, PIN_HEADER);
    if (!pod) return;
    const res = await this.atPod(
      pod,
      'DELETE',
      MCP_PATH,
      headers.filter(([k]) => k !== PIN_HEADER),
      '',
    );
    const status = res === 'refused' ? 503 : res === 'reset' ? 503 : res.status;
    if (!ex.complete)
      await ex.handle({
        request: 'response_headers',
        response_headers: wire([[':status', String(status)]]),
        attributes: { 'envoy.filters.http.ext_proc': { fields: { 'upstream.address': { kind: 'stringValue', stringValue: pod } } } },
      } as ProcessingRequest);
  }

  /**
   * The public listener: the client's request, and once more if mcp-pin
   * redirects a retry (the pinned routes' internal_redirect_policy: 308, at
   * most MAX_INTERNAL_REDIRECTS, REDIRECTED_SESSION_HEADER copied). Envoy
   * starts the request again from the headers as the first pass left them
   * (filters' changes stay), with x-envoy-original-url; the public
   * listener's first filter drops every x-mcp-pin- header again.
   */
  private async throughEnvoy(req: ClientRequest, hostPicks: number[]): Promise<Answer> {
    const path = req.kind === 'typo' ? '/typo' : MCP_PATH;
    let headers: Headers = [
      [':method', 'POST'],
      [':path', path],
      [':authority', 'mcp.test'],
      ['mcp-session-id', req.client],
      ['content-type', 'application/json'],
    ];
    // A request that says Envoy started it again already (a client's own
    // header, or a redirect before): mcp-pin relays it rather than redirect.
    if (req.startedAgain) headers.push(['x-envoy-original-url', `http://mcp.test${path}`]);
    let picks = hostPicks;
    for (let pass = 0; ; pass++) {
      if (pass > 0) req.redirects++;
      const out = await this.onePass(req, headers, picks);
      if (!('redirect' in out)) return out;
      picks = picks.slice(out.attempts);
      // The route's internal_redirect_policy: how many times Envoy follows one (each pass's route says).
      if (pass >= (out.route.maxInternalRedirects ?? 0)) {
        this.violate('I2', `${req.rid}: a redirect Envoy would not follow reached the client`);
        return { from: 'pod', status: 308, sessionId: undefined };
      }
      const copied = hdr(out.responseHeaders, REDIRECTED_SESSION_HEADER);
      headers = out.headers.filter(([k]) => k !== REDIRECTED_SESSION_HEADER && k !== 'x-envoy-original-url' && !k.startsWith('x-mcp-pin-'));
      if (copied !== undefined) headers.push([REDIRECTED_SESSION_HEADER, copied]);
      headers.push(['x-envoy-original-url', `http://mcp.test${path}`]);
    }
  }

  private async onePass(
    req: ClientRequest,
    clientHeaders: Headers,
    hostPicks: number[],
  ): Promise<Answer | { redirect: true; headers: Headers; responseHeaders: Headers; attempts: number; route: ShippedRoute }> {
    const params = req.kind === 'set-level' ? { level: req.param } : isStateKind(req.kind) ? { uri: req.param } : undefined;
    const body = JSON.stringify({ jsonrpc: '2.0', id: req.rid, method: req.method, ...(params ? { params } : {}) });
    const path = hdr(clientHeaders, ':path')!;
    let headers = clientHeaders;
    // Downstream ext_proc: one message for a pinned request.
    const down = new Exchange(this.replica().exchangeDeps);
    const [first] = await down.handle({ request: 'request_headers', request_headers: { ...wire(headers), end_of_stream: false } });
    if (!first) throw new Error('no answer to request headers');
    if (first.immediate_response) return this.mcpPinAnswer(first);
    headers = applyMutation(headers, first.request_headers?.response?.header_mutation);
    const pin = hdr(headers, PIN_HEADER);
    if (!pin) {
      // The service route: a session mcp-pin does not know. No pod of the
      // simulation holds a session mcp-pin forgot, so each answers 404.
      return { from: 'pod', status: 404, sessionId: undefined };
    }
    // The route Envoy picks again once the MCP filter named the method (clear_route_cache).
    const route = routeFor(headers, { method: req.method });
    const tried: string[] = [];
    let final: { status: number; headers: Headers; body: string } | Answer | undefined;
    for (let attempt = 1; attempt <= maxAttempts(route); attempt++) {
      if (req.abort.signal.aborted) return { from: 'nobody', why: 'client left' };
      // override_host on attempt 1; previous_hosts on retries (the pin header was removed after attempt 1 chose).
      const candidates = PODS.filter((p) => !tried.includes(p));
      const host = attempt === 1 && PODS.includes(pin as (typeof PODS)[number]) ? pin : (candidates[(hostPicks[attempt] ?? 0) % candidates.length] ?? PODS[0]);
      tried.push(host);
      let attemptHeaders = headers.filter(([k]) => k !== PIN_HEADER);
      let upstream: AttemptExchange | undefined;
      let upstreamGone: AbortController | undefined;
      if (SHIPPED.upstreamExtProcOn(attempt)) {
        // The upstream ext_proc (composite filter), on retries only.
        upstreamGone = new AbortController();
        req.abort.signal.addEventListener('abort', () => upstreamGone!.abort(), { once: true });
        const r = this.replica();
        let extended: Extension | undefined;
        upstream = new AttemptExchange(
          { cfg: r.exchangeDeps.cfg, log: r.exchangeDeps.log, metrics: r.exchangeDeps.metrics, recoverer: r.recoverer },
          (m) => {
            if (!m.override_message_timeout) return;
            const ms = Number(m.override_message_timeout.seconds) * 1000 + Math.round(m.override_message_timeout.nanos / 1e6);
            // Envoy ignores an override outside [1 ms, max_message_timeout]; one inside restarts the message's timer.
            if (ms >= 1 && ms <= SHIPPED.maxMessageTimeoutMs) extended = { ms, at: this.clock.now() };
          },
          upstreamGone.signal,
        );
        const msg: ProcessingRequest = {
          request: 'request_headers',
          request_headers: { ...wire([...attemptHeaders, ['x-envoy-attempt-count', String(attempt)]]), end_of_stream: false },
          attributes: { 'envoy.filters.http.ext_proc': { fields: { 'upstream.address': { kind: 'stringValue', stringValue: host } } } },
        };
        const onHeaders = await this.withMessageTimeout(upstream.handle(msg), () => extended, upstreamGone);
        if (onHeaders === 'timeout') return { from: 'envoy', status: 504, details: 'ext_proc_error_per-message_timeout_exceeded', saysMayHaveRun: false };
        const h = onHeaders[0]!;
        if (h.immediate_response) return this.answerByMcpPin(req, headers, body, h);
        if (h.mode_override?.request_body_mode === 'BUFFERED') {
          extended = undefined;
          const onBody = await this.withMessageTimeout(
            upstream.handle({ request: 'request_body', request_body: { body: Buffer.from(body), end_of_stream: true } }),
            () => extended,
            upstreamGone,
          );
          if (onBody === 'timeout') return { from: 'envoy', status: 504, details: 'ext_proc_error_per-message_timeout_exceeded', saysMayHaveRun: false };
          return this.answerByMcpPin(req, headers, body, onBody[0]!);
        }
        // Header changes stay on the request for later attempts (Envoy keeps them).
        headers = applyMutation(headers, h.request_headers?.response?.header_mutation);
        attemptHeaders = headers.filter(([k]) => k !== PIN_HEADER);
        if (h.mode_override?.response_header_mode === 'SKIP') upstream = undefined;
      }
      const res = await this.atPod(host, 'POST', path, attemptHeaders, body);
      if (res === 'refused') {
        final = { from: 'envoy', status: 503, details: 'upstream_reset_before_response_started{connection_failure}', saysMayHaveRun: false };
        if (retriesAfter(route, 'connect-failure')) continue;
        break;
      }
      if (res === 'reset') {
        final = { from: 'envoy', status: 503, details: 'upstream_reset_before_response_started{connection_termination}', saysMayHaveRun: true };
        if (retriesAfter(route, 'reset')) continue;
        break;
      }
      let outHeaders = res.headers;
      let status = res.status;
      if (upstream && !upstream.complete) {
        const [r] = await upstream.handle({
          request: 'response_headers',
          response_headers: wire([[':status', String(res.status)], ...outHeaders]),
        } as ProcessingRequest);
        if (r?.immediate_response) return this.answerByMcpPin(req, headers, body, r);
        // The upstream filters change the answer before the router sees it (its status too).
        const mutated = applyMutation([[':status', String(res.status)], ...outHeaders], r?.response_headers?.response?.header_mutation);
        status = Number(hdr(mutated, ':status'));
        outHeaders = mutated.filter(([k]) => k !== ':status');
      }
      // The pinned routes' internal_redirect_policy: a 308 with a location is followed by Envoy itself.
      if (route.redirectCodes?.includes(status) && hdr(outHeaders, 'location') !== undefined)
        return { redirect: true, headers, responseHeaders: outHeaders, attempts: attempt, route };
      final = { status, headers: outHeaders, body: res.body };
      if (retriesAfter(route, { status })) continue;
      break;
    }
    if (!final || 'from' in final) return final ?? { from: 'envoy', status: 503, details: 'no attempt', saysMayHaveRun: false };
    // The pinned routes' response_headers_to_add: the client's own id back
    // (from x-mcp-pin-client-session, where mcp-pin set one; OVERWRITE_IF_EXISTS).
    let out = final.headers;
    const clientId = hdr(headers, CLIENT_SESSION);
    if (clientId !== undefined && hdr(out, 'mcp-session-id') !== undefined)
      out = [...out.filter(([k]) => k !== 'mcp-session-id'), ['mcp-session-id', clientId]];
    // The downstream ext_proc's response phase, where it asked for one.
    if (!down.complete) {
      const [r] = await down.handle({ request: 'response_headers', response_headers: wire([[':status', String(final.status)], ...out]) } as ProcessingRequest);
      out = applyMutation(out, r?.response_headers?.response?.header_mutation);
    }
    // The session-state route's filter: the request and its answer, before the client gets it.
    if (isStateKind(req.kind)) await this.recordState(req, headers, body, final.status, out, final.body);
    return { from: 'pod', status: final.status, sessionId: hdr(out, 'mcp-session-id') };
  }

  /** An answer mcp-pin made on a retry (a relay, an error): the session-state filter sees it too. */
  private async answerByMcpPin(req: ClientRequest, headers: Headers, body: string, r: ProcessingResponse): Promise<Answer> {
    const imm = r.immediate_response!;
    if (isStateKind(req.kind)) {
      const immHeaders: Headers = (imm.headers?.set_headers ?? []).map((h) => [h.header.key, h.header.raw_value.toString()]);
      await this.recordState(req, headers, body, imm.status.code, immHeaders, imm.body?.toString() ?? '');
    }
    return this.mcpPinAnswer(r);
  }

  /** mcp-pin's session-state filter (its own ext_proc stream, on a replica Envoy picks), as the template runs it. */
  private async recordState(
    _req: ClientRequest,
    requestHeaders: Headers,
    body: string,
    status: number,
    responseHeaders: Headers,
    responseBody: string,
  ): Promise<void> {
    const r = this.replica();
    const rec = new StateRecorder({ store: r.store, log: r.exchangeDeps.log, metrics: r.exchangeDeps.metrics, recoverer: r.recoverer });
    await rec.handle({ request: 'request_headers', request_headers: { ...wire(requestHeaders), end_of_stream: false } });
    await rec.handle({ request: 'request_body', request_body: { body: Buffer.from(body), end_of_stream: true } });
    await rec.handle({ request: 'response_headers', response_headers: wire([[':status', String(status)], ...responseHeaders]) } as ProcessingRequest);
    if (!rec.complete) await rec.handle({ request: 'response_body', response_body: { body: Buffer.from(responseBody), end_of_stream: true } });
  }

  /** Envoy waits message_timeout for an answer, or what mcp-pin extended it to; past it, it gives up on the stream. */
  private async withMessageTimeout(
    p: Promise<ProcessingResponse[]>,
    extendedTo: () => Extension | undefined,
    gone: AbortController,
  ): Promise<ProcessingResponse[] | 'timeout'> {
    const started = this.clock.now();
    let settled = false;
    const result = p.finally(() => (settled = true));
    for (;;) {
      const ext = extendedTo();
      const left = (ext ? ext.at + ext.ms : started + SHIPPED.messageTimeoutMs) - this.clock.now();
      if (left <= 0) {
        gone.abort();
        result.catch(() => {});
        return 'timeout';
      }
      const tick = this.clock.sleep(Math.min(left, 100));
      const winner = await Promise.race([result.then(() => 'done' as const), tick.then(() => 'tick' as const)]);
      if (winner === 'done' || settled) return result;
    }
  }

  private mcpPinAnswer(r: ProcessingResponse): Answer {
    const imm = r.immediate_response!;
    const details = imm.details ?? '';
    const sessionId = imm.headers?.set_headers?.find((h) => h.header.key === 'mcp-session-id')?.header.raw_value.toString();
    if (details === 'mcp_pin_relayed') return { from: 'pod', status: imm.status.code, sessionId };
    if (details === 'mcp_pin_relayed_reconnect') return { from: 'pod', status: 200, sessionId };
    // What the client reads: the status, the details and the message (several codes share details; the message says whether it may have run).
    const message = (JSON.parse(imm.body?.toString() ?? '{}') as { error?: { message?: string } }).error?.message;
    const entries = Object.values(CLIENT_ERRORS).filter((e) => e.details === details && e.message === message && e.status === imm.status.code);
    if (entries.length === 0) throw new Error(`an immediate response no code gives: ${imm.status.code} ${details} ${message}`);
    return { from: 'mcp-pin', status: imm.status.code, details, mayHaveRun: entries.some((e) => e.mayHaveRun), sessionId };
  }

  // ---- checks ----

  private onAnswer(req: ClientRequest, answer: Answer): void {
    req.answer = req.abort.signal.aborted && answer.from !== 'pod' ? { from: 'nobody', why: 'client left' } : answer;
    if (isStateKind(req.kind)) this.intend(req, req.answer);
  }

  /** What each client set in its session, as far as it can know: the state requests its pod answered 2xx, in order. */
  readonly intended = new Map<string, PodSessionState | 'unknown'>();

  private intend(req: ClientRequest, answer: Answer): void {
    const now = this.intended.get(req.client) ?? { subs: new Set<string>(), level: null };
    if (now === 'unknown') return;
    const ran = answer.from === 'pod' && answer.status >= 200 && answer.status < 300;
    const mayHaveRun = answer.from === 'nobody' || (answer.from === 'mcp-pin' && answer.mayHaveRun) || (answer.from === 'envoy' && answer.saysMayHaveRun);
    // The client cannot know what it set: I8 has nothing to hold it to.
    if (mayHaveRun && !ran) return void this.intended.set(req.client, 'unknown');
    if (!ran) return void this.intended.set(req.client, now);
    if (req.kind === 'subscribe') now.subs.add(req.param!);
    else if (req.kind === 'unsubscribe') now.subs.delete(req.param!);
    else now.level = req.param!;
    this.intended.set(req.client, now);
  }

  /** I8: the pod that holds a session (per its record) holds what the client set in it. */
  async checkState(): Promise<void> {
    for (const c of this.clients) {
      const want = this.intended.get(c);
      if (want === undefined || want === 'unknown' || this.mayBeGone.has(c)) continue;
      const rec = await this.shared.load(c);
      const pod = rec ? this.pods.get(rec.pod) : undefined;
      if (!rec || !pod?.up || !pod.sessions.has(rec.backendSessionId)) continue;
      const has = pod.state.get(rec.backendSessionId) ?? { subs: new Set<string>(), level: null };
      const show = (x: PodSessionState): string => `level ${x.level ?? 'none'}, subscriptions [${[...x.subs].sort().join(', ')}]`;
      if (show(has) !== show(want)) this.violate('I8', `${c}: its pod ${rec.pod} holds ${show(has)}; the client set ${show(want)}`);
    }
  }

  /**
   * I1, I2, I7 over every request, once nothing more can happen (a pod may
   * run a request after its client got an answer: a relay cut by a timeout).
   */
  checkRequests(): void {
    for (const req of this.requests) this.checkRequest(req);
  }

  private checkRequest(req: ClientRequest): void {
    const answer = req.answer;
    if (!answer) {
      this.violate('liveness', `${req.rid} never answered`);
      return;
    }
    const ran = req.deliveries.filter((d) => d.ran).length;
    // I1: run at most once ...
    if (!replayedAfterReset(req.method)) {
      if (ran > 1) this.violate('I1', `${req.rid} (${req.method}) ran ${ran} times: ${JSON.stringify(req.deliveries)}`);
    }
    // ... and, in each pass (its attempts; the request Envoy starts again
    // after a redirect is a pass of its own), reached any one pod at most
    // twice: the second time only as the relay back after a proof that it
    // holds the session.
    const perPod = new Map<string, number>();
    for (const d of req.deliveries) perPod.set(`${d.pass}/${d.pod}`, (perPod.get(`${d.pass}/${d.pod}`) ?? 0) + 1);
    for (const [pod, n] of perPod) if (n > 2) this.violate('I1', `${req.rid} reached ${pod} ${n} times: ${JSON.stringify(req.deliveries)}`);
    // I7: only the client's own session id.
    if ((answer.from === 'pod' || answer.from === 'mcp-pin') && answer.sessionId !== undefined && answer.sessionId !== req.client)
      this.violate('I7', `${req.rid} of ${req.client} saw session id ${answer.sessionId}`);
    // I2: the pod's own answer, or an error that is right about whether it may have run.
    // (Methods safe to run twice are also retried after a reset: an earlier
    // attempt may have run, and an error on the retry speaks of its own attempt.)
    if (replayedAfterReset(req.method)) return;
    if (answer.from === 'mcp-pin' && !answer.mayHaveRun && ran > 0)
      this.violate('I2', `${req.rid} ran on a pod but mcp-pin answered ${answer.details} ("did not run")`);
    if (answer.from === 'envoy' && !answer.saysMayHaveRun && ran > 0)
      this.violate('I2', `${req.rid} ran on a pod but the client got Envoy's bare ${answer.status} ${answer.details}`);
  }

  /** I3 and I5: a record leaves the store only by DELETE or by proof that it can never be recovered (never because a client left). A1: a session mcp-pin still holds is never reported gone. */
  async checkRecords(): Promise<void> {
    await Promise.all(this.pendingChecks);
    for (const c of this.clients) {
      // A1: the spec's 404 tells a client to abandon its session: only for one that is gone.
      const toldGone = this.requests.filter(
        (r) => r.client === c && r.kind !== 'typo' && (r.answer?.from === 'pod' || r.answer?.from === 'mcp-pin') && r.answer.status === 404,
      );
      if (toldGone.length > 0 && this.mayBeGone.get(c) !== 'deleted' && (await this.shared.load(c)))
        this.violate(
          'A1',
          `${c}: told its session is gone (${toldGone.map((r) => `${r.rid} ${r.method}: ${JSON.stringify(r.deliveries)}${r.redirects ? `, redirected ${r.redirects}x` : ''}${r.startedAgain ? ', started again' : ''}`).join('; ')}) while mcp-pin still holds it`,
        );
      if (this.mayBeGone.has(c)) continue;
      if (!(await this.shared.load(c)))
        this.violate(
          'I5',
          `${c}: record removed without DELETE or proof (requests: ${this.requests
            .filter((r) => r.client === c)
            .map((r) => `${r.rid}${r.abort.signal.aborted ? ' (client left)' : ''}`)
            .join(', ')})`,
        );
    }
  }

  /** Runs everything that can still happen: scheduled work, then time. */
  async settle(maxRounds = 10_000): Promise<void> {
    for (let i = 0; i < maxRounds; i++) {
      await this.s.waitIdle();
      if (!this.clock.advance()) {
        await this.s.waitIdle();
        if (this.s.count() === 0) return;
      }
    }
    this.violate('liveness', `still busy after ${maxRounds} rounds`);
  }

  /** Lets up to n things happen (scheduled resolutions, or time when nothing is ready). */
  async step(n: number): Promise<void> {
    for (let i = 0; i < n; i++) {
      // Work that is ready but not yet scheduled (a chain of awaits) runs
      // before time may move: time passes only when nothing else can happen.
      for (let t = 0; t < 100 && this.s.count() === 0; t++) await Promise.resolve();
      if (this.s.count() > 0) await this.s.waitOne();
      else if (!this.clock.advance()) return;
    }
  }
}

export function initBody(client: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: client, version: '1' } },
    }),
  );
}

/** What a run exercised, added up over all runs: a generator that never reaches a case proves nothing about it. */
export class Coverage {
  runs = 0;
  counts: Record<string, number> = {};

  add(w: World): void {
    this.runs++;
    const seen = new Set<string>();
    if (w.reinitializes > 0) seen.add('re-initialize');
    for (const r of w.requests) {
      if (r.deliveries.some((d) => d.via === 'relay'))
        seen.add(
          r.deliveries.some((d, i) => d.via === 'relay' && r.deliveries.slice(0, i).some((e) => e.pod === d.pod))
            ? 'relay back (not lost)'
            : 'relay to a moved session',
        );
      if (r.abort.signal.aborted) seen.add('client left');
      if (r.answer?.from === 'mcp-pin') seen.add(`mcp-pin error ${r.answer.details}`);
      if (r.kind === 'slow-call' && r.deliveries.some((d) => d.via === 'relay')) seen.add('slow relayed call');
      if (r.redirects > 0) seen.add(r.kind === 'slow-call' ? 'slow call redirected to a moved session' : 'redirected to a moved session');
    }
    for (const k of seen) this.counts[k] = (this.counts[k] ?? 0) + 1;
  }

  toString(): string {
    return Object.entries(this.counts)
      .sort()
      .map(([k, n]) => `${k}: ${n}`)
      .join(', ');
  }
}
