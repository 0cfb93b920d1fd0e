/**
 * Prometheus metrics on an own registry. Labels are closed sets: never a
 * session id or a pod address.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { STORE_OPS, type StoreOp } from './sessions/timed-store.js';

/** Every outcome, so each series exists at 0 from the start (rate() sees the first event). */
export const REQUEST_OUTCOMES = [
  'passthrough',
  'pinned',
  'unknown_session',
  'unknown_session_remembered',
  'search_ended',
  'invalid_session_id',
  'ambiguous_session_id',
  'initialize_recorded',
  'initialize_unrecorded',
  'session_id_taken',
  'corrupt_record',
  'off_path',
  'client_left',
  'session_deleted',
  'recovered',
  'relayed',
  'redirected',
  'not_lost',
  'recovery_failed',
  'store_error',
  'adopted',
  'adoption_unproven',
  'rejected_pin',
] as const;

export type RequestOutcome = (typeof REQUEST_OUTCOMES)[number];

/**
 * What became of a state-setting request the pod answered (session-state.ts):
 * kept with the session, already so, over the bounds, the pod refused it, no
 * record, or the store failed.
 */
export const STATE_RESULTS = ['kept', 'unchanged', 'over_limit', 'refused', 'gone', 'store_error'] as const;
export type StateResult = (typeof STATE_RESULTS)[number];
/** What a recovery's replay of the session's state got from the new pod, per request. */
export const REPLAY_RESULTS = ['replayed', 'refused'] as const;
export type ReplayResult = (typeof REPLAY_RESULTS)[number];

/** What mcp-pin was doing when it caught a failure it carries on after. */
export const IGNORED_OPS = [
  'drop_poisoned_pin',
  'forget_deleted_session',
  'adopt_session',
  'drop_refused_state',
  'replay_late_state',
  'release_recovery_lock',
  'remember_unknown_session',
  'check_unknown_session',
] as const;
export type IgnoredOp = (typeof IGNORED_OPS)[number];

/** The ext_proc phases a message can carry, and 'unknown' for one that carries none. */
const MESSAGE_PHASES = ['request_headers', 'request_body', 'request_trailers', 'response_headers', 'response_body', 'response_trailers', 'unknown'] as const;

/** One labelled child per label value, resolved once (prom-client hashes the label set on every labels() call). */
function children<K extends string, C>(keys: readonly K[], make: (k: K) => C): Record<K, C> {
  return Object.fromEntries(keys.map((k) => [k, make(k)])) as Record<K, C>;
}

/**
 * Counts kept as plain numbers on the hot path and handed to a prom-client
 * counter when it is scraped (its collect hook): a request never enters
 * prom-client for them (about 0.1-0.2 µs and an object hash each otherwise).
 */
class Tally<K extends string> {
  private readonly counts = new Map<K, { now: number; flushed: number }>();

  constructor(keys: readonly K[]) {
    for (const k of keys) this.counts.set(k, { now: 0, flushed: 0 });
  }

  add(k: K): void {
    const c = this.counts.get(k);
    if (c) c.now++;
  }

  /** What was counted since the last scrape goes into `counter` (every key at least once: its series exists at 0 from the first scrape). */
  flushInto(counter: Counter<string>, label: string | undefined): void {
    for (const [k, c] of this.counts) {
      const delta = c.now - c.flushed;
      c.flushed = c.now;
      if (label === undefined) counter.inc(delta);
      else counter.inc({ [label]: k }, delta);
    }
  }
}

/**
 * The one rule for the `recovered` outcome: a retry of a lost session (sent
 * on to the pod that holds it now, or relayed there) whose answer is not a
 * lost-session status. Counted once per retry, by whichever path carried it.
 */
export function countsAsRecovered(status: number, lostSessionStatuses: readonly number[]): boolean {
  return !lostSessionStatuses.includes(status);
}

export class Metrics {
  readonly registry = new Registry();
  /** Streams open now; the ext_proc server keeps it, the gauge reads it when scraped. */
  openStreams = 0;
  private readonly streamTally = new Tally(['accepted'] as const);
  private readonly outcomeTally = new Tally(REQUEST_OUTCOMES);
  private readonly cacheTally = new Tally(['hit', 'miss'] as const);
  readonly streams: Gauge = new Gauge({
    name: 'mcp_pin_streams_open',
    help: 'ext_proc streams open now',
    registers: [this.registry],
    collect: (): void => this.streams.set(this.openStreams),
  });
  readonly streamsTotal: Counter = new Counter({
    name: 'mcp_pin_streams_total',
    help: 'ext_proc streams accepted',
    registers: [this.registry],
    collect: (): void => this.streamTally.flushInto(this.streamsTotal, undefined),
  });
  readonly streamErrors = new Counter({
    name: 'mcp_pin_stream_errors_total',
    help: 'ext_proc streams ended with an error status',
    labelNames: ['code'] as const,
    registers: [this.registry],
  });
  readonly requests: Counter<'outcome'> = new Counter({
    name: 'mcp_pin_requests_total',
    help: 'HTTP requests by what mcp-pin did with them',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
    collect: (): void => this.outcomeTally.flushInto(this.requests as Counter<string>, 'outcome'),
  });
  readonly storeSeconds = new Histogram({
    name: 'mcp_pin_store_seconds',
    help: 'latency of calls that reach the shared store (Redis; pin-cache hits are counted in mcp_pin_pin_cache_lookups_total, the memory store is not timed)',
    labelNames: ['op'] as const,
    buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  /** Failures mcp-pin deliberately carries on after (the answer is still right); labels: a closed set of ops. */
  readonly ignoredErrors = new Counter({
    name: 'mcp_pin_ignored_errors_total',
    help: 'failures mcp-pin carried on after, by what it was doing',
    labelNames: ['op'] as const,
    registers: [this.registry],
  });
  readonly storeErrors = new Counter({
    name: 'mcp_pin_store_errors_total',
    help: 'session store failures',
    labelNames: ['op', 'code'] as const,
    registers: [this.registry],
  });
  readonly recoverySeconds = new Histogram({
    name: 'mcp_pin_recovery_seconds',
    help: 'duration of a recovery (proof of loss, re-init, notify)',
    labelNames: ['result'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  /** 1 while this replica answers SERVING (store reachable, not draining). */
  readonly serving = new Gauge({
    name: 'mcp_pin_serving',
    help: '1 while this replica reports SERVING (its store answers and it is not draining), else 0',
    registers: [this.registry],
  });
  /** Lookups answered by this replica's pin cache (hit) or by the shared store (miss). A counter, not a histogram: a hit costs nothing worth timing. */
  readonly pinCacheLookups: Counter<'result'> = new Counter({
    name: 'mcp_pin_pin_cache_lookups_total',
    help: "pin lookups by where they were answered: hit (this replica's pin cache) or miss (the shared store)",
    labelNames: ['result'] as const,
    registers: [this.registry],
    collect: (): void => this.cacheTally.flushInto(this.pinCacheLookups as Counter<string>, 'result'),
  });
  readonly messageSeconds = new Histogram({
    name: 'mcp_pin_message_seconds',
    help: 'time to answer one ext_proc message',
    labelNames: ['phase'] as const,
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1],
    registers: [this.registry],
  });

  readonly sessionState = new Counter({
    name: 'mcp_pin_session_state_total',
    help: 'state-setting requests (resources/subscribe, resources/unsubscribe, logging/setLevel) the pods answered, by what became of them',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly lostTasks = new Counter({
    name: 'mcp_pin_lost_tasks_total',
    help:
      'tasks/get, tasks/result and tasks/cancel answers of a moved session whose pod said "Task ' +
      'not found", explained to the client as a task lost with its pod',
    registers: [this.registry],
  });
  readonly stateReplays = new Counter({
    name: 'mcp_pin_state_replays_total',
    help: "requests a recovery sent to rebuild a session's state on its new pod, by the pod's answer",
    labelNames: ['result'] as const,
    registers: [this.registry],
  });

  // Label children resolved once: the hot path never builds or hashes a label set.
  private readonly ignoredOps = children(IGNORED_OPS, (o) => this.ignoredErrors.labels(o));
  private readonly messagePhases = children(MESSAGE_PHASES, (p) => this.messageSeconds.labels(p));
  private readonly storeOps = children(STORE_OPS, (op) => this.storeSeconds.labels(op));

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics) collectDefaultMetrics({ register: this.registry, prefix: 'mcp_pin_' });
    // Series the alerts and the dashboard rate() exist at 0 from the start:
    // a counter that first appears at 1 shows no increase, and its first
    // failures would never fire an alert.
    // (The tallied counters get theirs from their first scrape.)
    for (const r of ['recovered', 'not_lost', 'failed']) this.recoverySeconds.zero({ result: r });
    for (const op of ['lookup', 'load', 'create', 'adopt', 'remove'])
      for (const code of ['MCP_PIN_STORE_UNAVAILABLE', 'MCP_PIN_STORE_TIMEOUT']) this.storeErrors.labels(op, code).inc(0);
    for (const code of ['MCP_PIN_STORE_UNAVAILABLE', 'MCP_PIN_STORE_TIMEOUT']) this.storeErrors.labels('recovery', code).inc(0);
    for (const op of ['lookup', 'load', 'recovery']) this.storeErrors.labels(op, 'MCP_PIN_STORE_CORRUPT').inc(0);
    for (const r of STATE_RESULTS) this.sessionState.labels(r).inc(0);
    for (const r of REPLAY_RESULTS) this.stateReplays.labels(r).inc(0);
  }

  /** Counts a failure that was caught and deliberately not passed on. */
  ignored(op: IgnoredOp): void {
    this.ignoredOps[op].inc();
  }

  outcome(o: RequestOutcome): void {
    this.outcomeTally.add(o);
  }

  /** An ext_proc stream accepted. */
  streamAccepted(): void {
    this.streamTally.add('accepted');
  }

  /** One ext_proc message answered after `seconds` (the one observation a pinned request costs). */
  messageAnswered(phase: string | undefined, seconds: number): void {
    (this.messagePhases[phase as (typeof MESSAGE_PHASES)[number]] ?? this.messagePhases.unknown).observe(seconds);
  }

  pinCache(hit: boolean): void {
    this.cacheTally.add(hit ? 'hit' : 'miss');
  }

  /** One call that reached the shared store (sessions/timed-store.ts). */
  storeCall(op: StoreOp, seconds: number): void {
    this.storeOps[op].observe(seconds);
  }
}
