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
import { RecentlyUnknown } from '../../src/extproc/recently-unknown.js';
import { SearchAttempt } from '../../src/extproc/search-attempt.js';
import { StateRecorder } from '../../src/extproc/state-recorder.js';
import { REDIRECTED_SESSION_HEADER } from '../../src/mcp-headers.js';
import type { HeaderMutation, ProcessingRequest, ProcessingResponse } from '../../src/extproc/protocol.js';
import { untilAborted } from '../../src/clock.js';
import { Metrics } from '../../src/metrics.js';
import type { ForwardRequest, ForwardResponse, Forwarder } from '../../src/recovery/forwarder.js';
import { HttpRecoverer } from '../../src/recovery/http-recoverer.js';
import { LOCK_MARGIN_MS } from '../../src/recovery/recovery.js';
import { CachedStore } from '../../src/sessions/cached-store.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { TimedStore } from '../../src/sessions/timed-store.js';
import { StoreError } from '../../src/errors.js';
import type { SessionStore } from '../../src/sessions/store.js';
import { ENVOY_DEFAULTS } from '../../envoy/params.js';
import { CLIENT_SESSION_HEADER } from '../../src/mcp-headers.js';
import { type EnvoyReply, SHIPPED, maxAttempts, replayedAfterReset, retriesAfter, routeFor, type ShippedRoute } from './shipped-envoy.js';
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

/** `get`: the client's GET stream (SSE) of its session, opened again after it ended. */
export type Kind = 'call' | 'slow-call' | 'read' | 'typo' | 'get' | StateKind;
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
  /** In Envoy's discovery (EDS): a pod that left it gets no request, though it may still run. */
  listed: boolean;
  /** The next request of any kind (a ping, an initialize too) takes this long to arrive; 0: none. */
  slowNextMs: number;
  /** Until then, every request of any kind is answered 503 before it runs (an overloaded pod that still holds its sessions). */
  busyUntil: number;
  /** When it last came back into discovery (-Infinity: never left). */
  relistedAt: number;
  /** Every backend session this pod made: for which client, and whether a restart lost it since. */
  created: Map<string, { client: string; lostByRestart: boolean }>;
}

/**
 * Durations of a slow pod, from what ships: just past Envoy's message
 * timeout, just short of and past the recovery's deadline, and past the
 * recovery lock's TTL (the deadline plus LOCK_MARGIN_MS).
 */
export const SLOW_MS = [
  SHIPPED.messageTimeoutMs + 50,
  SHIPPED.recoveryTimeoutMs - 50,
  SHIPPED.recoveryTimeoutMs + 50,
  SHIPPED.recoveryTimeoutMs + LOCK_MARGIN_MS + 50,
] as const;

export type PodFault = 'init-500-once' | 'init-400' | 'reset-next' | 'busy' | { slowMs: number };

/** How long an overloaded pod answers 503: past the recovery's deadline, so pings, re-initializes, relays and retries meet it. */
export const BUSY_MS = SHIPPED.recoveryTimeoutMs + 500;

/** One mcp-pin process of the simulation. */
interface Replica {
  /** Unique per process: a replica that starts again after dying is a new one. */
  id: number;
  alive: boolean;
  /** Settles when it dies. */
  died: Promise<'died'>;
  kill(): void;
  exchangeDeps: ConstructorParameters<typeof Exchange>[0];
  recoverer: HttpRecoverer;
  store: SessionStore;
}

const never = <T>(): Promise<T> => new Promise<T>(() => {});

/** A call of a process that may die: once dead it makes none, and reads no answer. */
async function whileAlive<R>(rep: { alive: boolean }, call: () => Promise<R>): Promise<R> {
  if (!rep.alive) return never();
  let out: R;
  try {
    out = await call();
  } catch (err) {
    if (!rep.alive) return never();
    throw err;
  }
  return rep.alive ? out : never();
}

/** Envoy's reply when an ext_proc stream fails (failure_mode_allow false): its details start with ext_proc_error. */
const EXT_PROC_STREAM_FAILED = 'ext_proc_error_gRPC_error_14';
/** ... on a stream of a retry's upstream filter, or in a response phase: a pod had been chosen. */
const EXT_PROC_FAILED_ON_RETRY: EnvoyReply = { details: EXT_PROC_STREAM_FAILED, flags: [], upstream: true };

/** A recovery lock a replica was given (tryLock answered true): until it called unlock. */
interface Tenure {
  replica: number;
  client: string;
  token: string;
  /** When it was asked for, and when the store may hand it to another: that plus the TTL asked for. */
  from: number;
  expiresAt: number;
  ended?: number;
  reinits: number;
  /** A store flush took the lock: it no longer excludes anyone, and nothing expires it. */
  flushed?: boolean;
  /** The machine's stalled time when the lock was asked for: a lock may outlive its TTL by the stalls since (the generation's compare-and-set then fences). */
  stalledBefore: number;
}

/** What a DELETE's client got, and what its request carried to the pod. */
export interface DeleteAnswer {
  client: string;
  path: string;
  status: number;
  from: 'pod' | 'mcp-pin' | 'envoy';
  sessionId: string | undefined;
  /** The backend session id the DELETE reached the pod with (undefined: it reached none). */
  sentAs?: string;
  pod?: string;
  /** Disturbances (pod events, store faults) while it ran: none means every part behaved. */
  calm: boolean;
  /** The session's pod was listed, up and held it when the DELETE started. */
  heldAtStart: boolean;
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
  /** At the MCP path, where the pod's MCP transport takes it (elsewhere its router answers, running nothing). */
  atMcpPath: boolean;
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
  /** A2: whether the session's pod was listed, up and held it at the start; the disturbances then. */
  calm: { heldAtStart: Promise<boolean>; disturbances: number; startedAt: number; stayed?: boolean; answeredAt?: number };
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
type CallWrapper = <R>(op: string, call: () => Promise<R>, args: unknown[]) => Promise<R>;
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
    out[op] = (...a: unknown[]) => wrap(op, () => fn(...a), a);
  }
  return out as unknown as SessionStore;
}

/**
 * The shared store that can be flushed (Redis restarted without
 * persistence, or FLUSHALL): every record, lock and remembered id is gone
 * at once, and the store goes on empty.
 */
class FlushableStore {
  private current: SessionStore;
  readonly store: SessionStore;

  constructor(private readonly fresh: () => SessionStore) {
    this.current = fresh();
    const out: Record<string, unknown> = { close: () => this.current.close(), connect: (ms: number) => this.current.connect?.(ms) };
    for (const op of CALLS) out[op] = (...a: unknown[]) => (this.current[op] as (...x: unknown[]) => Promise<unknown>)(...a);
    this.store = out as unknown as SessionStore;
  }

  async flush(): Promise<void> {
    const old = this.current;
    this.current = this.fresh();
    await old.close();
  }
}

/** PROTOCOL_TRACE=1 prints one failing schedule's story: store calls with their fault, what reached a pod, each answer, mcp-pin's log. */
const TRACING = Boolean(process.env.PROTOCOL_TRACE);
const trace = (...what: unknown[]): void => {
  if (TRACING) console.log(...what);
};

/** The store with a fault plan: each call, of either replica, takes the plan's next entry (past its end: none). */
function faultyStore(inner: SessionStore, nextFault: () => StoreFault, sleep: (ms: number) => Promise<void>): SessionStore {
  return wrapStore(inner, async (op, call, args) => {
    const fault = nextFault();
    trace('store', op, JSON.stringify(args).slice(0, 80), fault);
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

/** Names a client's GET (no JSON-RPC id) at the pod; end to end, so relays carry it too. */
const REQUEST_ID_HEADER = 'x-sim-request';

/** A reply Envoy makes itself, as the client reads it: the shipped local-reply mappers decide what it says. */
function envoyReply(status: number, r: EnvoyReply): Answer {
  const out = SHIPPED.localReply(status, r);
  return { from: 'envoy', status: out.status, details: r.details, saysMayHaveRun: out.saysMayHaveRun };
}

/** A reply the internal listener's Envoy made itself (marked so for mcp-pin: no pod answered). */
function internalReply(details: string): ForwardResponse {
  return { status: 503, headers: [], body: Buffer.alloc(0), upstream: undefined, envoyReply: details };
}

/** Where a client request of this kind goes: a typo's wrong path, else the MCP path. */
const pathOf = (kind: Kind): string => (kind === 'typo' ? '/typo' : MCP_PATH);

/** The pinned routes' response_headers_to_add: the client's own id (x-mcp-pin-client-session) where the answer names a session. */
function withClientSessionId(requestHeaders: Headers, answer: Headers): Headers {
  const clientId = hdr(requestHeaders, CLIENT_SESSION);
  if (clientId === undefined || hdr(answer, 'mcp-session-id') === undefined) return answer;
  return [...answer.filter(([k]) => k !== 'mcp-session-id'), ['mcp-session-id', clientId]];
}

/** Envoy's reply for an attempt its pod did not answer: it refused the connection (nothing ran), or reset it after taking the request. */
function unanswered(res: 'refused' | 'reset'): Answer {
  return res === 'refused'
    ? envoyReply(503, { details: 'upstream_reset_before_response_started{connection_failure}', flags: ['UF'], upstream: true })
    : envoyReply(503, { details: 'upstream_reset_before_response_started{connection_termination}', flags: ['UC'], upstream: true });
}

/** Envoy giving up on an ext_proc message of a retry's upstream filter (the attempt already has its pod). */
const EXT_PROC_TIMEOUT: EnvoyReply = { details: 'ext_proc_error_per-message_timeout_exceeded', flags: [], upstream: true };

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
  /**
   * Each replica remembers searches that ended in 404 (--unknown-session-cache-ms, as it ships). Only
   * worlds whose store can be flushed need it: elsewhere no pod holds a session the store forgot, the
   * answer is a 404 either way, and leaving out its store read keeps those schedules' seeds.
   */
  rememberUnknown?: boolean;
}

export class World {
  readonly clock = new VirtualClock();
  readonly violations: Violation[] = [];
  readonly requests: ClientRequest[] = [];
  readonly pods = new Map<string, PodState>(
    PODS.map((p) => [
      p,
      {
        up: true,
        sessions: new Set(),
        state: new Map(),
        n: 0,
        initFault: 0,
        refuseInit: false,
        resetNext: false,
        listed: true,
        slowNextMs: 0,
        busyUntil: Number.NEGATIVE_INFINITY,
        relistedAt: Number.NEGATIVE_INFINITY,
        created: new Map(),
      },
    ]),
  );
  /**
   * Everything that may make a healthy session's request fail: pod events,
   * stalls and store faults. A request that starts and ends with none of them
   * meets only parts that behave (the availability invariant, A2).
   */
  private disturbances = 0;
  /** DELETEs of the session's MCP path sent per client: one may end its session at any moment after. */
  private readonly deletesSent = new Map<string, number>();
  /** Every recovery lock a replica held (I4 over time). */
  private readonly tenures: Tenure[] = [];
  private moved(client: string, at: number): void {
    this.moves.set(client, [...(this.moves.get(client) ?? []), at]);
  }

  /**
   * A session that moved (or was flushed) less than a pin-cache TTL before a
   * request, or while it ran, may still be routed to its old pod by a
   * replica's stale cached pin; that pod refuses it (and the retry finds the
   * session), unless it answers 5xx (overloaded): a limit of the pin cache
   * (docs/configuration.md), not promised by A2.
   */
  private cacheMayBeStale(req: ClientRequest): boolean {
    if (this.pinCacheMs <= 0) return false;
    const { startedAt, answeredAt = Number.POSITIVE_INFINITY } = req.calm;
    return (this.moves.get(req.client) ?? []).some((t) => t >= startedAt - this.pinCacheMs && t <= answeredAt);
  }

  /** When a search for a client's session at a path last ended in 404 (the unknown-session cache remembers it). */
  private readonly searchedIn404At = new Map<string, number>();
  /** When each client's session last moved (a recovery stored a new pin): a replica's cached pin may be stale until its TTL. */
  private readonly moves = new Map<string, number[]>();
  private readonly pinCacheMs: number;
  /** How long the machine stalled in all. */
  private stalledMs = 0;
  /** client@generation for every pin a recovery stored over that generation (I4's fence). */
  private readonly fenced = new Set<string>();
  readonly deleteAnswers: DeleteAnswer[] = [];
  /** Envoy's round robin among listed pods, where override_host falls back. */
  private fallbackRr = 0;
  /** Why a client's record may be gone: DELETE answered, or a pod refused its stored initialize (4xx). */
  readonly mayBeGone = new Map<string, string>();
  private readonly shared: SessionStore;
  /** The default MemoryStore, which a run may flush. */
  private readonly flushable?: FlushableStore;
  /** Clients whose record a flush took: found again only on the pods (adopted), and never promised A1. */
  private readonly flushed = new Set<string>();
  private readonly replicas: Replica[];
  private replicaIds = 0;
  /** Replicas that died, store flushes, and sessions adopted after one, in this run (coverage). */
  replicaDeaths = 0;
  flushes = 0;
  adoptions = 0;
  private readonly log = pino({ level: TRACING ? 'debug' : 'silent' });
  private readonly cfg: ConstructorParameters<typeof Exchange>[0]['cfg'] & ConstructorParameters<typeof HttpRecoverer>[0]['cfg'];
  private readonly nextFault: () => StoreFault;
  /** Re-initializes on the wire now, per client: at most one (I4). */
  private readonly reinitInFlight = new Map<string, number>();
  private rr = 0;
  private nextRid = 0;
  /** How many re-initializes left for a pod: the generator's coverage. */
  reinitializes = 0;
  /** How many requests recoveries sent to rebuild session state (I8's coverage). */
  stateReplays = 0;
  /** Times a recovery found the lock taken (and waited), and re-initializes Envoy sent to another pod than asked: coverage. */
  lockWaits = 0;
  reinitsElsewhere = 0;
  /** Store calls the replicas made through the fault plan (its entries used). */
  storeCalls = 0;
  /** Checks that read the store as something happened (I6), still answering. */
  private readonly pendingChecks: Promise<void>[] = [];
  /** DELETEs under way (each checks D1 as it ends). */
  private readonly deletes: Promise<void>[] = [];

  constructor(
    private readonly s: Scheduler,
    readonly clients: string[],
    private readonly opts: WorldOptions = {},
  ) {
    if (opts.store) this.shared = opts.store(this.clock.now);
    else {
      this.flushable = new FlushableStore(() => new MemoryStore({ sessionTtlMs: 3_600_000, now: this.clock.now }));
      this.shared = this.flushable.store;
    }
    this.pinCacheMs = opts.pinCacheMs ?? 0;
    this.cfg = {
      pinHeader: PIN_HEADER,
      upstreamHeader: 'x-mcp-pin-upstream',
      recoveryUrl: 'http://sim.invalid',
      recoveryTimeoutMs: SHIPPED.recoveryTimeoutMs,
      lostSessionStatuses: SHIPPED.lostSessionStatuses,
      maxSessionIdLength: 256,
      maxInitBodyBytes: 65536,
      relayBudgetBytes: 64 << 20,
    };
    this.nextFault = (): StoreFault => {
      const f = opts.storeFaults?.[this.storeCalls++] ?? 'none';
      if (f !== 'none') this.disturbances++;
      return f;
    };
    this.replicas = [this.startReplica(), this.startReplica()];
  }

  /** One mcp-pin process: as it ships (src/sessions/index.ts), the store timed for metrics, under the pin cache. */
  private startReplica(): Replica {
    const { s, opts, cfg } = this;
    const id = this.replicaIds++;
    let died!: (v: 'died') => void;
    const rep = { id, alive: true, died: new Promise<'died'>((resolve) => (died = resolve)), kill: () => died('died') } as Replica;
    const metrics = new Metrics();
    const timed = new TimedStore(this.shared, () => {});
    // Faults wrap the scheduled store: a timed-out call waits on the virtual clock after the scheduler delivered
    // it (inside a scheduled task, that wait would block the scheduler that the clock waits for).
    const delivered = scheduledStore(timed, s);
    const scheduled = opts.storeFaults?.length ? faultyStore(delivered, this.nextFault, (ms) => this.clock.sleep(ms)) : delivered;
    // A dead process makes no more calls and reads no more answers.
    const seen = this.recordLocks(
      id,
      wrapStore(scheduled, (_op, call) => whileAlive(rep, call)),
    );
    const store = (opts.pinCacheMs ?? 0) > 0 ? new CachedStore(seen, { ttlMs: opts.pinCacheMs!, now: this.clock.now }) : seen;
    const recoverer = new HttpRecoverer({ cfg, store, log: this.log, metrics, forwarder: this.forwarder(rep), clock: this.clock });
    const recentlyUnknown = opts.rememberUnknown ? { recentlyUnknown: new RecentlyUnknown(SHIPPED.unknownSessionCacheMs, 10_000, this.clock.now) } : {};
    return Object.assign(rep, { exchangeDeps: { store, cfg, log: this.log, metrics, ...recentlyUnknown }, recoverer, store });
  }

  /**
   * An mcp-pin replica dies (OOM, node loss) and its container starts again
   * at once: what it was doing stops where it stands (its locks stay until
   * their TTL), Envoy sees each of its open ext_proc streams fail, and new
   * streams go to the live replicas (the mcp_pin cluster's health checks).
   */
  crashReplica(slot: number): void {
    this.disturbances++;
    const i = slot % this.replicas.length;
    const old = this.replicas[i]!;
    old.alive = false;
    old.kill();
    this.replicaDeaths++;
    this.replicas[i] = this.startReplica();
  }

  /**
   * The store loses everything (Redis restarted without persistence): each
   * session is then searched for on the pods and adopted where one holds it
   * under the client's own id (a session recovered before, whose pod holds
   * another id, cannot be found again: the client gets the 404 that tells
   * it to start a new one).
   */
  async flushStore(): Promise<void> {
    if (!this.flushable) return;
    this.disturbances++;
    this.flushes++;
    await this.flushable.flush();
    for (const c of this.clients) {
      this.flushed.add(c);
      // A replica's cached pin outlives the record for up to its TTL (a change the store made is seen that late).
      this.moved(c, this.clock.now());
      if (!this.mayBeGone.has(c)) this.mayBeGone.set(c, 'flushed');
      for (const key of [...this.fenced]) if (key.startsWith(`${c}@`)) this.fenced.delete(key);
    }
    // The locks went with it: recoveries that held one hold nothing now.
    for (const t of this.tenures) if (t.ended === undefined) t.flushed = true;
  }

  /** An ext_proc message to a replica: its answer, or 'died' when the replica died first (Envoy sees the stream fail). */
  private via<T>(r: Replica, work: Promise<T>): Promise<T | 'died'> {
    return Promise.race([work, r.died]);
  }

  /**
   * One generated schedule from start to end: the sessions made, `drive`
   * (the commands), everything that can still happen, every invariant
   * checked; `seen` records what the run exercised before a violation fails
   * it. The store is closed whatever happens.
   */
  async runSchedule(drive: () => Promise<void>, seen: (w: World) => void): Promise<void> {
    try {
      await this.seed();
      await drive();
      await this.settle();
      this.checkRequests();
      await this.checkRecords();
      seen(this);
      this.throwIfViolated(this.s);
    } finally {
      await this.close();
    }
  }

  /** Each client starts with a session on a pod, made by an initialize at /mcp. */
  async seed(): Promise<void> {
    // A RedisStore connects first (it queues nothing while offline, as it ships).
    await this.shared.connect?.(5000);
    for (const [i, c] of this.clients.entries()) {
      const pod = PODS[i % PODS.length]!;
      this.pods.get(pod)!.sessions.add(c);
      this.pods.get(pod)!.created.set(c, { client: c, lostByRestart: false });
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
    this.disturbances++;
    const p = this.pods.get(pod)!;
    p.up = false;
    for (const id of p.sessions) p.created.get(id)!.lostByRestart = true;
    p.sessions.clear();
    p.state.clear();
  }

  start(pod: string): void {
    this.disturbances++;
    this.pods.get(pod)!.up = true;
  }

  restartInPlace(pod: string): void {
    this.kill(pod);
    this.start(pod);
  }

  /** The pod leaves Envoy's discovery (it may still run and hold its sessions), or comes back into it. */
  list(pod: string, listed: boolean): void {
    this.disturbances++;
    const p = this.pods.get(pod)!;
    if (listed && !p.listed) p.relistedAt = this.clock.now();
    p.listed = listed;
  }

  /** Every process stops for `ms` (an event-loop stall of the whole machine): every timer due meanwhile fires late, at once. */
  stall(ms: number): void {
    this.disturbances++;
    this.stalledMs += ms;
    this.clock.jump(ms);
  }

  fault(pod: string, f: PodFault): void {
    this.disturbances++;
    const p = this.pods.get(pod)!;
    if (f === 'init-500-once') p.initFault = 500;
    else if (f === 'init-400') p.refuseInit = true;
    else if (f === 'reset-next') p.resetNext = true;
    else if (f === 'busy') p.busyUntil = this.clock.now() + BUSY_MS;
    else p.slowNextMs = f.slowMs;
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
    if (pod.slowNextMs > 0) {
      const ms = pod.slowNextMs;
      pod.slowNextMs = 0;
      await this.clock.sleep(ms);
    }
    if (!pod.up) return 'refused';
    const rpc = JSON.parse(body || '{}') as { id?: string; method?: string; params?: { clientInfo?: { name?: string } } };
    const sid = hdr(headers, 'mcp-session-id');
    // Which client request this is: its JSON-RPC id, or (a GET has no body) the simulation's own header.
    // (mcp-pin's own requests carry the client's end-to-end headers: a POST is named by its body alone.)
    const rid = method === 'GET' ? hdr(headers, REQUEST_ID_HEADER) : typeof rpc.id === 'string' && rpc.id.startsWith('r') ? rpc.id : undefined;
    const client = rid !== undefined ? this.requests.find((r) => r.rid === rid) : undefined;
    if (this.clock.now() < pod.busyUntil) {
      // Overloaded: refused before it runs (the session stays).
      return { status: 503, headers: [], body: '' };
    }
    if (method === 'DELETE') {
      if (path === MCP_PATH && sid && pod.sessions.delete(sid)) return { status: 200, headers: [], body: '' };
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
      pod.created.set(id, { client: forClient, lostByRestart: false });
      return { status: 200, headers: [['mcp-session-id', id]], body: '{}' };
    }
    const held = pod.sessions.has(sid);
    const ok = path === MCP_PATH && held;
    if (client) client.deliveries.push({ pod: podAddr, held, ran: ok, via: signal ? 'relay' : 'envoy', pass: client.redirects, atMcpPath: path === MCP_PATH });
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
  private forwarder(rep: Replica): Forwarder {
    return {
      send: (req: ForwardRequest): Promise<ForwardResponse> => whileAlive(rep, () => this.forward(rep.id, req)),
      close: async () => {},
    };
  }

  private async forward(replica: number, req: ForwardRequest): Promise<ForwardResponse> {
    const body = req.body?.toString() ?? '';
    const isInit = body.includes('"initialize"');
    if (body.includes('"mcp-pin-replay-')) this.stateReplays++;
    const forClient = isInit ? (JSON.parse(body) as { params: { clientInfo: { name: string } } }).params.clientInfo.name : undefined;
    // The internal listener's override_host: the pod asked for while it is in discovery, else Envoy's fallback pick.
    const pod = this.routed(req.pod!);
    if (!pod) return internalReply('no_healthy_upstream');
    trace('to pod', { replica, method: req.method, path: req.path, pod }, body.slice(0, 60));
    if (forClient) this.onReinitialize(forClient, replica);
    if (forClient && pod !== req.pod) this.reinitsElsewhere++;
    try {
      const res = await untilAborted(this.atPod(pod, req.method, req.path, req.headers, body, req.signal), req.signal);
      if (res === 'refused') return internalReply('upstream_reset_before_response_started{connection_failure}');
      if (res === 'reset') return internalReply('upstream_reset_before_response_started{connection_termination}');
      if (isInit && res.status >= 400 && res.status < 500) this.mayBeGone.set(forClient!, `a pod refused its initialize with ${res.status}`);
      return { status: res.status, headers: res.headers, body: Buffer.from(res.body), upstream: pod };
    } finally {
      if (forClient) this.reinitInFlight.set(forClient, (this.reinitInFlight.get(forClient) ?? 1) - 1);
    }
  }

  /**
   * Envoy's pick for a retry (previous_hosts): a listed pod not tried yet, the
   * generated `pick` choosing among them; with every listed pod tried, the
   * predicate gives up after its picks and one of them is taken again; none
   * listed: nowhere.
   */
  private previousHostsPick(tried: string[], pick: number): string | undefined {
    const listed = PODS.filter((p) => this.pods.get(p)!.listed);
    const fresh = listed.filter((p) => !tried.includes(p));
    const candidates = fresh.length > 0 ? fresh : listed;
    return candidates[pick % Math.max(1, candidates.length)];
  }

  /** Where Envoy sends a request for `pod` (override_host): there while it is listed, else to another listed pod; none listed: nowhere. */
  private routed(pod: string): string | undefined {
    if (this.pods.get(pod)?.listed) return pod;
    const listed = PODS.filter((p) => this.pods.get(p)!.listed);
    return listed[this.fallbackRr++ % Math.max(1, listed.length)];
  }

  /**
   * The store calls of one replica, as they leave it: the recovery locks it
   * was given (tryLock answered true) and when it let each go (its unlock
   * call, whatever the store then did with it). A lock held past its TTL
   * is I4 broken: the store may have given it to another recovery.
   */
  private recordLocks(replica: number, inner: SessionStore): SessionStore {
    return wrapStore(inner, async (op, call, args) => {
      const calledAt = this.clock.now();
      const stalledBefore = this.stalledMs;
      if (op === 'unlock') {
        const t = this.tenures.find((x) => x.replica === replica && x.token === args[1] && x.ended === undefined);
        if (t) {
          t.ended = calledAt;
          const stalled = this.stalledMs - t.stalledBefore;
          if (!t.flushed && calledAt >= t.expiresAt + stalled)
            this.violate('I4', `${t.client}: a recovery held its lock ${calledAt - t.expiresAt} ms past its TTL (stalled ${stalled} ms meanwhile)`);
        }
        return call();
      }
      const result = await call();
      if (op === 'tryLock' && result === false) this.lockWaits++;
      // The fence: one pin stored per lost generation, whatever the locks did.
      if (op === 'replacePin' && result) {
        // When the store changed (the call's time): a request may start before this replica reads the answer.
        this.moved(String(args[0]), calledAt);
        const key = `${String(args[0])}@${String(args[1])}`;
        if (this.fenced.has(key)) this.violate('I4', `${String(args[0])}: a second pin stored over generation ${String(args[1])}`);
        this.fenced.add(key);
      }
      if (op === 'tryLock' && result === true)
        this.tenures.push({
          replica,
          client: String(args[0]),
          token: String(args[1]),
          from: calledAt,
          expiresAt: calledAt + Number(args[2]),
          reinits: 0,
          stalledBefore,
        });
      return result;
    });
  }

  /** I4 and I6, checked at the moment a re-initialize leaves. */
  private onReinitialize(client: string, replica: number): void {
    this.reinitializes++;
    const n = (this.reinitInFlight.get(client) ?? 0) + 1;
    this.reinitInFlight.set(client, n);
    if (n > 1) this.violate('I4', `${client}: ${n} re-initializes on the wire at once`);
    // I4 over time: one re-initialize per lost session while the lock lives.
    const now = this.clock.now();
    const live = (t: Tenure): boolean => t.client === client && t.ended === undefined && !t.flushed && now < t.expiresAt;
    const mine = this.tenures.find((t) => t.replica === replica && t.client === client && t.ended === undefined);
    if (!mine) this.violate('I4', `${client}: re-initialized by replica ${replica} without the recovery lock`);
    else if (mine.flushed) mine.reinits++;
    else if (now >= mine.expiresAt + this.stalledMs - mine.stalledBefore)
      this.violate('I4', `${client}: re-initialized by replica ${replica} after its lock expired`);
    else if (++mine.reinits > 1) this.violate('I4', `${client}: ${mine.reinits} re-initializes under one lock`);
    for (const t of this.tenures)
      if (t !== mine && live(t) && t.reinits > 0)
        this.violate('I4', `${client}: re-initialized while the lock of replica ${t.replica}'s recovery, which re-initialized it, lives`);
    // The record still names the pin that was found lost (it is replaced only after: on Redis too, the read
    // goes out first on the one connection). Awaited before the records are checked and the store closed.
    this.pendingChecks.push(
      this.shared.load(client).then((rec) => {
        // A pod out of Envoy's discovery cannot be reached through it: its sessions count as lost, also when
        // it comes back while the recovery runs (the proof was made while it was out).
        const pod = rec ? this.pods.get(rec.pod) : undefined;
        const outDuringRecovery = mine !== undefined && pod !== undefined && pod.relistedAt >= mine.from;
        if (rec && pod?.listed && !outDuringRecovery && pod.sessions.has(rec.backendSessionId))
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
    const method = isStateKind(kind) ? STATE_METHOD[kind] : kind === 'read' ? 'resources/read' : kind === 'get' ? 'GET' : 'tools/call';
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
    // (A stale cached pin is judged once the request ended: cacheMayBeStale.)
    const startedAt = this.clock.now();
    // A search for this session at this path ended in 404 moments ago (its pod was out of reach then): mcp-pin
    // answers 404 until --unknown-session-cache-ms has passed, by design (it bounds made-up ids' cost).
    const path = pathOf(kind);
    const rememberedUnknown =
      this.opts.rememberUnknown === true &&
      this.clock.now() < (this.searchedIn404At.get(`${client} ${path}`) ?? Number.NEGATIVE_INFINITY) + SHIPPED.unknownSessionCacheMs;
    req.calm = {
      heldAtStart: rememberedUnknown ? Promise.resolve(false) : this.heldNow(client, true),
      startedAt,
      disturbances: this.disturbances,
    };
    this.requests.push(req);
    req.done = this.throughEnvoy(req, hostPicks).then(
      (a) => this.onAnswer(req, a),
      (err: unknown) => this.violate('crash', `${rid}: ${(err as Error)?.stack ?? String(err)}`),
    );
    return req;
  }

  /**
   * Whether the client's session is, right now, on a pod that is listed, up,
   * has no fault armed and holds it (per the shared store's record). Pods are read now, the
   * record as the store answers a read sent now (before any later call).
   */
  private heldNow(client: string, searched = false): Promise<boolean> {
    const holding = new Map<string, Set<string>>();
    // A pod with a fault armed (its next request resets, or arrives late, or it is overloaded) is not behaving.
    const now = this.clock.now();
    const faulty = (st: PodState): boolean => st.resetNext || now < st.busyUntil || st.slowNextMs > 0;
    for (const [p, st] of this.pods) if (st.up && st.listed && !faulty(st)) holding.set(p, new Set(st.sessions));
    // With no record after a flush, the search asks the listed pods in turn: all must behave, one hold it under the client's id.
    const findable =
      searched &&
      this.flushed.has(client) &&
      [...this.pods.values()].every((st) => !st.listed || !faulty(st)) &&
      [...holding.values()].some((ids) => ids.has(client));
    const held = this.shared.load(client).then(
      (rec) => (rec === null ? findable : holding.get(rec.pod)?.has(rec.backendSessionId) === true),
      () => false,
    );
    this.pendingChecks.push(held.then(() => {}));
    return held;
  }

  /** A DELETE of the client's session (the pinned DELETE route: no retries), its answer kept for D1; checked once it ends. */
  delete(client: string, path: string = MCP_PATH): Promise<void> {
    const done = this.deleteOnce(client, path);
    // Awaited by the checks; a run that failed before it ended never waits for it (nor reports it twice).
    done.catch(() => {});
    this.deletes.push(done);
    return done;
  }

  private async deleteOnce(client: string, path: string): Promise<void> {
    // I3/I5 up to the DELETE: until it is sent, the record stays unless a proof removed it.
    const couldBeGone = this.mayBeGone.has(client);
    this.pendingChecks.push(
      this.shared.load(client).then((rec) => {
        if (!rec && !couldBeGone) this.violate('I5', `${client}: record removed before its DELETE, without proof`);
      }),
    );
    const heldAtStart = this.heldNow(client);
    const calmAt = this.disturbances;
    const deletesBefore = this.deletesSent.get(client) ?? 0;
    const own = path === MCP_PATH ? 1 : 0;
    if (own) this.deletesSent.set(client, deletesBefore + 1);
    // Calm: no pod event or store fault, and no other DELETE of this session, before or meanwhile.
    const calmNow = (): boolean => this.disturbances === calmAt && deletesBefore === 0 && (this.deletesSent.get(client) ?? 0) === own;
    // The client ends its session: whatever the pod answers, the record may go. A DELETE of a wrong
    // path is the pod's router answering: it ends nothing, and the record stays (I5).
    if (path === MCP_PATH) this.mayBeGone.set(client, 'deleted');
    const answered = async (a: Omit<DeleteAnswer, 'client' | 'calm' | 'heldAtStart' | 'path'>): Promise<void> => {
      this.deleteAnswers.push({ client, path, ...a, calm: calmNow(), heldAtStart: await heldAtStart });
    };
    const r = this.replica();
    const ex = new Exchange(r.exchangeDeps);
    let headers: Headers = [
      [':method', 'DELETE'],
      [':path', path],
      ['mcp-session-id', client],
    ];
    const onHeaders = await this.via(r, ex.handle({ request: 'request_headers', request_headers: { ...wire(headers), end_of_stream: true } }));
    // The replica died: Envoy fails the request (nothing was sent).
    if (onHeaders === 'died') return answered({ from: 'envoy', status: 500, sessionId: undefined });
    const [first] = onHeaders;
    if (first?.immediate_response) {
      const a = this.mcpPinAnswer(first);
      if (a.from === 'mcp-pin') await answered({ from: 'mcp-pin', status: a.status, sessionId: a.sessionId });
      return;
    }
    headers = applyMutation(headers, first?.request_headers?.response?.header_mutation);
    const pin = hdr(headers, PIN_HEADER);
    // A session mcp-pin does not know: the service route; no pod of the simulation holds one.
    if (!pin) return answered({ from: 'pod', status: 404, sessionId: undefined });
    // The DELETE route's override_host: the pinned pod while it is in discovery, else the fallback's pick.
    const pod = this.routed(pin);
    if (!pod) return answered({ from: 'envoy', status: 503, sessionId: undefined });
    const sentAs = hdr(headers, 'mcp-session-id');
    const res = await this.atPod(
      pod,
      'DELETE',
      path,
      headers.filter(([k]) => k !== PIN_HEADER),
      '',
    );
    const status = res === 'refused' ? 503 : res === 'reset' ? 503 : res.status;
    let out: Headers = res === 'refused' || res === 'reset' ? [] : res.headers;
    if (!ex.complete) {
      const onResponse = await this.via(
        r,
        ex.handle({
          request: 'response_headers',
          response_headers: wire([[':status', String(status)], ...out]),
          attributes: { 'envoy.filters.http.ext_proc': { fields: { 'upstream.address': { kind: 'stringValue', stringValue: pod } } } },
        } as ProcessingRequest),
      );
      // The replica died after the pod answered: Envoy's reply replaces the pod's answer.
      if (onResponse === 'died') return answered({ from: 'envoy', status: 500, sessionId: undefined, ...(sentAs !== undefined ? { sentAs } : {}), pod });
      out = applyMutation(out, onResponse[0]?.response_headers?.response?.header_mutation);
    }
    out = withClientSessionId(headers, out);
    const from = res === 'refused' || res === 'reset' ? 'envoy' : 'pod';
    await answered({ from, status, sessionId: hdr(out, 'mcp-session-id'), ...(sentAs !== undefined ? { sentAs } : {}), pod });
    // D1: a DELETE that ended the session on its pod leaves no record naming that session.
    const calm = calmNow();
    if (status >= 200 && status < 300 && sentAs !== undefined) {
      const rec = await this.shared.load(client);
      if (calm && rec && rec.pod === pod && rec.backendSessionId === sentAs)
        this.violate('D1', `${client}: its DELETE ended ${sentAs} on ${pod}, and the store still pins it there`);
    }
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
    const path = pathOf(req.kind);
    let headers: Headers =
      req.kind === 'get'
        ? [
            [':method', 'GET'],
            [':path', path],
            [':authority', 'mcp.test'],
            ['mcp-session-id', req.client],
            ['accept', 'text/event-stream'],
            [REQUEST_ID_HEADER, req.rid],
          ]
        : [
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
    const get = req.kind === 'get';
    const body = get ? '' : JSON.stringify({ jsonrpc: '2.0', id: req.rid, method: req.method, ...(params ? { params } : {}) });
    const path = hdr(clientHeaders, ':path')!;
    let headers = clientHeaders;
    // Downstream ext_proc: one message for a pinned request.
    const dr = this.replica();
    const down = new Exchange(dr.exchangeDeps);
    const onHeaders = await this.via(dr, down.handle({ request: 'request_headers', request_headers: { ...wire(headers), end_of_stream: false } }));
    // The replica died before it answered: the first pass fails, before any pod was chosen.
    if (onHeaders === 'died') return envoyReply(500, { details: EXT_PROC_STREAM_FAILED, flags: [], upstream: false });
    const [first] = onHeaders;
    if (!first) throw new Error('no answer to request headers');
    if (first.immediate_response) return this.mcpPinAnswer(first);
    headers = applyMutation(headers, first.request_headers?.response?.header_mutation);
    const pin = hdr(headers, PIN_HEADER);
    if (!pin) {
      // A session mcp-pin does not know: the session-search route. Only a
      // flush makes the store forget a session a pod still holds; any other
      // forgotten session no pod holds, and each answers 404 (taken as read,
      // so the schedules before flushes existed keep their seeds).
      if (!this.flushed.has(req.client)) return { from: 'pod', status: 404, sessionId: undefined };
      return this.search(req, headers, body, hostPicks, down, dr);
    }
    // The route Envoy picks again once the MCP filter named the method (clear_route_cache).
    // A GET carries no JSON-RPC method: the MCP filter sets none.
    const route = routeFor(headers, get ? {} : { method: req.method });
    const tried: string[] = [];
    let final: { status: number; headers: Headers; body: string } | Answer | undefined;
    for (let attempt = 1; attempt <= maxAttempts(route); attempt++) {
      if (req.abort.signal.aborted) return { from: 'nobody', why: 'client left' };
      // override_host on attempt 1 (to a pod in discovery; else the fallback's pick); previous_hosts on retries
      // (the pin header was removed after attempt 1 chose). Only pods in discovery are picked.
      const pinned = attempt === 1 && this.pods.get(pin)?.listed === true;
      const host = pinned ? pin : this.previousHostsPick(tried, hostPicks[attempt] ?? 0);
      if (host === undefined) {
        // No pod in discovery: Envoy's own reply, nothing was sent.
        final = envoyReply(503, { details: 'no_healthy_upstream', flags: ['UH'], upstream: false });
        break;
      }
      tried.push(host);
      let attemptHeaders = headers.filter(([k]) => k !== PIN_HEADER);
      let upstream: AttemptExchange | undefined;
      let upstreamGone: AbortController | undefined;
      // The replica of this attempt's upstream ext_proc stream, where it has one.
      let ur: Replica | undefined;
      if (SHIPPED.upstreamExtProcOn(attempt)) {
        // The upstream ext_proc (composite filter), on retries only.
        upstreamGone = new AbortController();
        req.abort.signal.addEventListener('abort', () => upstreamGone!.abort(), { once: true });
        ur = this.replica();
        let extended: Extension | undefined;
        upstream = new AttemptExchange(
          { cfg: ur.exchangeDeps.cfg, log: ur.exchangeDeps.log, metrics: ur.exchangeDeps.metrics, recoverer: ur.recoverer },
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
          request_headers: { ...wire([...attemptHeaders, ['x-envoy-attempt-count', String(attempt)]]), end_of_stream: get },
          attributes: { 'envoy.filters.http.ext_proc': { fields: { 'upstream.address': { kind: 'stringValue', stringValue: host } } } },
        };
        const onHeaders = await this.withMessageTimeout(this.via(ur, upstream.handle(msg)), () => extended, upstreamGone);
        if (onHeaders === 'timeout') return envoyReply(504, EXT_PROC_TIMEOUT);
        if (onHeaders === 'died') return envoyReply(500, EXT_PROC_FAILED_ON_RETRY);
        const h = onHeaders[0]!;
        if (h.immediate_response) return this.answerByMcpPin(req, headers, body, h);
        if (h.mode_override?.request_body_mode === 'BUFFERED') {
          extended = undefined;
          const onBody = await this.withMessageTimeout(
            this.via(ur, upstream.handle({ request: 'request_body', request_body: { body: Buffer.from(body), end_of_stream: true } })),
            () => extended,
            upstreamGone,
          );
          if (onBody === 'timeout') return envoyReply(504, EXT_PROC_TIMEOUT);
          if (onBody === 'died') return envoyReply(500, EXT_PROC_FAILED_ON_RETRY);
          return this.answerByMcpPin(req, headers, body, onBody[0]!);
        }
        // Header changes stay on the request for later attempts (Envoy keeps them).
        headers = applyMutation(headers, h.request_headers?.response?.header_mutation);
        attemptHeaders = headers.filter(([k]) => k !== PIN_HEADER);
        if (h.mode_override?.response_header_mode === 'SKIP') upstream = undefined;
      }
      const res = await this.atPod(host, get ? 'GET' : 'POST', path, attemptHeaders, body);
      if (res === 'refused' || res === 'reset') {
        final = unanswered(res);
        if (retriesAfter(route, res === 'refused' ? 'connect-failure' : 'reset')) continue;
        break;
      }
      let outHeaders = res.headers;
      let status = res.status;
      if (upstream && !upstream.complete) {
        const onResponse = await this.via(
          ur!,
          upstream.handle({
            request: 'response_headers',
            response_headers: wire([[':status', String(res.status)], ...outHeaders]),
          } as ProcessingRequest),
        );
        // The replica died after the pod answered this attempt: Envoy's reply replaces the pod's answer.
        if (onResponse === 'died') return envoyReply(500, EXT_PROC_FAILED_ON_RETRY);
        const [r] = onResponse;
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
    if (!final || 'from' in final) return final ?? envoyReply(503, { details: 'no attempt', flags: [], upstream: false });
    let out = withClientSessionId(headers, final.headers);
    // The downstream ext_proc's response phase, where it asked for one.
    if (!down.complete) {
      const onResponse = await this.via(
        dr,
        down.handle({ request: 'response_headers', response_headers: wire([[':status', String(final.status)], ...out]) } as ProcessingRequest),
      );
      // The replica died after the pod answered: Envoy's reply replaces the pod's answer (a pod had been chosen).
      if (onResponse === 'died') return envoyReply(500, EXT_PROC_FAILED_ON_RETRY);
      const [r] = onResponse;
      out = applyMutation(out, r?.response_headers?.response?.header_mutation);
    }
    // The session-state route's filter: the request and its answer, before the client gets it.
    if (isStateKind(req.kind)) await this.recordState(req, headers, body, final.status, out, final.body);
    return { from: 'pod', status: final.status, sessionId: hdr(out, 'mcp-session-id') };
  }

  /**
   * The session-search route, as the template sets it: Envoy asks pod after
   * pod (previous_hosts), each attempt through the search ext_proc
   * (the real SearchAttempt, x-mcp-pin-searched carried from attempt to
   * attempt), retrying on the route's lost-session statuses, until a pod
   * answers otherwise; the downstream Exchange then sees the answer and
   * adopts the session a 2xx names.
   */
  private async search(req: ClientRequest, clientHeaders: Headers, body: string, hostPicks: number[], down: Exchange, dr: Replica): Promise<Answer> {
    const path = hdr(clientHeaders, ':path')!;
    const route = routeFor(clientHeaders, req.kind === 'get' ? {} : { method: req.method });
    let headers = clientHeaders;
    const tried: string[] = [];
    let final: { status: number; headers: Headers; body: string; pod: string } | Answer | undefined;
    for (let attempt = 1; attempt <= maxAttempts(route); attempt++) {
      if (req.abort.signal.aborted) return { from: 'nobody', why: 'client left' };
      const host = this.previousHostsPick(tried, hostPicks[attempt - 1] ?? 0);
      if (host === undefined) {
        final = envoyReply(503, { details: 'no_healthy_upstream', flags: ['UH'], upstream: false });
        break;
      }
      tried.push(host);
      // The search cluster's ext_proc: one message per attempt (synchronous in mcp-pin).
      const [s] = new SearchAttempt({ metrics: this.replica().exchangeDeps.metrics }).handle({
        request: 'request_headers',
        request_headers: { ...wire(headers), end_of_stream: false },
        attributes: { 'envoy.filters.http.ext_proc': { fields: { 'upstream.address': { kind: 'stringValue', stringValue: host } } } },
      } as ProcessingRequest);
      if (s?.immediate_response) {
        // Every pod was asked: mcp-pin's 404 (the downstream filters see it, and remember the id).
        final = this.mcpPinAnswer(s);
        break;
      }
      headers = applyMutation(headers, s?.request_headers?.response?.header_mutation);
      const res = await this.atPod(host, req.kind === 'get' ? 'GET' : 'POST', path, headers, body);
      if (res === 'refused' || res === 'reset') {
        final = unanswered(res);
        if (retriesAfter(route, res === 'refused' ? 'connect-failure' : 'reset')) continue;
        break;
      }
      final = { ...res, pod: host };
      if (retriesAfter(route, { status: res.status })) continue;
      break;
    }
    if (!final) return envoyReply(503, { details: 'no attempt', flags: [], upstream: false });
    if ('from' in final && final.from === 'nobody') return final;
    const status = final.status;
    const outHeaders: Headers = 'from' in final ? [] : final.headers;
    if (!down.complete) {
      const onResponse = await this.via(
        dr,
        down.handle({
          request: 'response_headers',
          response_headers: wire([[':status', String(status)], ...outHeaders]),
          ...('from' in final
            ? {}
            : { attributes: { 'envoy.filters.http.ext_proc': { fields: { 'upstream.address': { kind: 'stringValue', stringValue: final.pod } } } } }),
        } as ProcessingRequest),
      );
      if (onResponse === 'died') return envoyReply(500, EXT_PROC_FAILED_ON_RETRY);
    }
    if (status === 404) this.searchedIn404At.set(`${req.client} ${path}`, this.clock.now());
    if ('from' in final) return final;
    if (status >= 200 && status < 300) this.adoptions++;
    return { from: 'pod', status, sessionId: hdr(outHeaders, 'mcp-session-id') };
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
    // The filter fails open (failure_mode_allow): a replica that dies under it costs the client nothing.
    const messages: ProcessingRequest[] = [
      { request: 'request_headers', request_headers: { ...wire(requestHeaders), end_of_stream: false } },
      { request: 'request_body', request_body: { body: Buffer.from(body), end_of_stream: true } },
      { request: 'response_headers', response_headers: wire([[':status', String(status)], ...responseHeaders]) } as ProcessingRequest,
      { request: 'response_body', response_body: { body: Buffer.from(responseBody), end_of_stream: true } },
    ];
    for (const [i, m] of messages.entries()) {
      if (i === 3 && rec.complete) break;
      if ((await this.via(r, rec.handle(m))) === 'died') return;
    }
  }

  /** Envoy waits message_timeout for an answer, or what mcp-pin extended it to; past it, it gives up on the stream. */
  private async withMessageTimeout<T>(p: Promise<T>, extendedTo: () => Extension | undefined, gone: AbortController): Promise<T | 'timeout'> {
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
    // A DELETE sent before the answer (even one still in flight) may have ended the session meanwhile.
    req.calm.stayed = this.disturbances === req.calm.disturbances && !this.deletesSent.has(req.client);
    req.calm.answeredAt = this.clock.now();
    req.answer = req.abort.signal.aborted && answer.from !== 'pod' ? { from: 'nobody', why: 'client left' } : answer;
    trace('answer', req.rid, req.client, req.method, JSON.stringify(req.answer).slice(0, 300));
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
    // (A pod that did not hold the session refused it before dispatch, and at a wrong path its router
    // answered: when fewer pods are in discovery than Envoy has attempts, previous_hosts takes one of
    // them again, which runs nothing.)
    const perPod = new Map<string, number>();
    for (const d of req.deliveries) if (d.held && d.atMcpPath) perPod.set(`${d.pass}/${d.pod}`, (perPod.get(`${d.pass}/${d.pod}`) ?? 0) + 1);
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

  /**
   * A2 (availability): a request of a session whose pod was listed, up and
   * held it, that started and ended with every part behaving (no pod event,
   * stall, store fault or DELETE of its session meanwhile) and whose client
   * stayed, gets that pod's own answer: a 2xx, or the pod's 404 for a wrong
   * path; never an error of mcp-pin's or Envoy's. DELETEs too.
   */
  private async checkAvailability(): Promise<void> {
    for (const req of this.requests) {
      const a = req.answer;
      if (!a || !req.calm.stayed || req.abort.signal.aborted || this.cacheMayBeStale(req) || !(await req.calm.heldAtStart)) continue;
      // A wrong path gets a 404: its pod's router's, or, for a session the store lost, mcp-pin's once the search asked every pod.
      const wrongPath404 = a.from === 'pod' || (a.from === 'mcp-pin' && a.details === 'mcp_pin_unknown_session' && this.flushed.has(req.client));
      const fine = req.kind === 'typo' ? wrongPath404 && 'status' in a && a.status === 404 : a.from === 'pod' && a.status >= 200 && a.status < 300;
      if (!fine) this.violate('A2', `${req.rid} (${req.method}) of ${req.client}, whose pod held its session and all was calm, got ${JSON.stringify(a)}`);
    }
    for (const d of this.deleteAnswers) {
      const fine = d.from === 'pod' && (d.path === MCP_PATH ? d.status >= 200 && d.status < 300 : d.status === 404);
      if (d.calm && d.heldAtStart && !fine)
        this.violate('A2', `a DELETE of ${d.path} of ${d.client}, whose pod held its session and all was calm, got ${d.from} ${d.status}`);
    }
  }

  /**
   * D1 (DELETE answers): the client sees only its own session id; a DELETE a
   * pod answered 2xx ended a session that pod made for this client (never
   * another client's).
   */
  private checkDeletes(): void {
    for (const d of this.deleteAnswers) {
      if (d.sessionId !== undefined && d.sessionId !== d.client) this.violate('I7', `a DELETE of ${d.client} saw session id ${d.sessionId}`);
      if (d.from !== 'pod' || d.status < 200 || d.status >= 300 || d.sentAs === undefined || d.pod === undefined) continue;
      const made = this.pods.get(d.pod)!.created.get(d.sentAs);
      if (made?.client !== d.client) this.violate('D1', `a DELETE of ${d.client} ended ${d.sentAs} on ${d.pod}, made for ${made?.client ?? 'nobody'}`);
    }
  }

  /**
   * A3: the stored pin names a session its pod made for this client; and
   * once a request of the client started after the last disturbance and got
   * its pod's 2xx, the pin's pod is listed, up and holds that session.
   */
  private async checkFinalPins(): Promise<void> {
    for (const c of this.clients) {
      if (this.mayBeGone.get(c) === 'deleted') continue;
      const rec = await this.shared.load(c);
      if (!rec) continue;
      const pod = this.pods.get(rec.pod);
      const made = pod?.created.get(rec.backendSessionId);
      if (made?.client !== c) {
        this.violate('A3', `${c}: its pin names ${rec.backendSessionId} on ${rec.pod}, made for ${made?.client ?? 'nobody'}`);
        continue;
      }
      const settled = this.requests.some(
        (r) =>
          r.client === c &&
          r.kind !== 'typo' &&
          r.calm.disturbances === this.disturbances &&
          r.answer?.from === 'pod' &&
          r.answer.status >= 200 &&
          r.answer.status < 300,
      );
      if (settled && !(pod?.up && pod.listed && pod.sessions.has(rec.backendSessionId)))
        this.violate('A3', `${c}: after a calm 2xx, its pin names ${rec.backendSessionId} on ${rec.pod}, which does not hold it`);
    }
  }

  /** I3 and I5: a record leaves the store only by DELETE or by proof that it can never be recovered (never because a client left). A1: a session mcp-pin still holds is never reported gone. A2, A3, D1. */
  async checkRecords(): Promise<void> {
    await Promise.all(this.deletes);
    await Promise.all(this.pendingChecks);
    await this.checkAvailability();
    this.checkDeletes();
    await this.checkFinalPins();
    for (const c of this.clients) {
      // A1: the spec's 404 tells a client to abandon its session: only for one that is gone.
      const toldGone = this.requests.filter(
        (r) => r.client === c && r.kind !== 'typo' && (r.answer?.from === 'pod' || r.answer?.from === 'mcp-pin') && r.answer.status === 404,
      );
      if (toldGone.length > 0 && this.mayBeGone.get(c) !== 'deleted' && !this.flushed.has(c) && (await this.shared.load(c)))
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
    if (w.lockWaits > 0) seen.add('recovery lock waited for');
    if (w.reinitsElsewhere > 0) seen.add('re-initialized on a pod Envoy chose');
    if (w.replicaDeaths > 0) seen.add('a replica died');
    if (w.flushes > 0) seen.add('the store was flushed');
    if (w.adoptions > 0) seen.add('a session adopted after a flush');
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
      if (r.kind === 'get' && r.answer?.from === 'pod' && (r.redirects > 0 || r.deliveries.some((d) => !d.held))) seen.add('a GET stream opened after a loss');
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
