/**
 * Recovery: every decision about a retry attempt of a pinned request, and
 * every store change recovery makes. The protocol and its invariants (I1-I7)
 * are written down in docs/recovery-protocol.md; this module upholds those
 * that are mcp-pin's, and test/protocol/ checks them over generated
 * interleavings.
 *
 * Envoy does the replay: when the pinned pod answers with a lost-session
 * status or cannot be reached, it retries the request (with the body it
 * kept) on another pod and asks mcp-pin, for that attempt only, how to send
 * it. planRetry answers with one plan:
 *
 * - send: on this attempt's pod, under the pin's backend session id (after
 *   a re-initialize there, or because the session already lives there);
 * - relay: the session lives on another pod (moved meanwhile: Envoy cannot
 *   steer a retry once it is under way), or its pod still holds it (the
 *   failure was about something else: the pod's own answer stands); mcp-pin
 *   sends the request there itself (relay(), in relay.ts);
 * - unknown: the store does not know the session: send it untouched;
 * - failed: nothing was sent; the code says what the client gets.
 *
 * A recovery (proof of loss, re-initialize, notifications/initialized,
 * storing the new pin) is shared: one per session across replicas (a lock
 * in the store), and one per session in this process (later attempts join
 * it and get its whole result). It runs under its own deadline, never under
 * a caller's cancellation: a caller that leaves stops waiting, and the
 * recovery still finishes or fails on its own terms (I3). A record is removed
 * here only on proof that the session can never come back: no stored
 * initialize, or a pod refused it with a 4xx (I5). A transient failure keeps
 * it.
 */
import { randomUUID } from 'node:crypto';
import { abortedByDeadline, systemClock, untilAborted, type Clock } from '../clock.js';
import { PinError, RecoveryError, type PinErrorCode } from '../errors.js';
import { SESSION_HEADER, firstHeader, is2xx, type HeaderPairs } from '../mcp-headers.js';
import { parsePodAddress } from '../pod-address.js';
import { isValidSessionId } from '../session-id.js';
import { onSessionPath } from '../session-path.js';
import { EMPTY_STATE, answerTo, applyChange, changesBetween, requestFor, type SessionState, type StateChange } from '../session-state.js';
import type { Pin, SessionRecord, SessionStore } from '../sessions/store.js';
import type { ByteBudget } from './byte-budget.js';
import type { ForwardResponse, Forwarder } from './forwarder.js';
import { negotiatedVersion, requestedVersion, saysSessionUnknown } from './lost-session.js';
import type { CatchUpOutcome, RelayOutcome, RelayRequest, RetryAttempt, RetryPlan } from './plans.js';
import { Relayer } from './relay.js';
import { endToEndHeaders } from '../header-rules.js';

const VERSION_HEADER = 'mcp-protocol-version';

const pinOf = (r: Pin): Pin => ({ pod: r.pod, backendSessionId: r.backendSessionId, generation: r.generation });
const INITIALIZED = Buffer.from('{"jsonrpc":"2.0","method":"notifications/initialized"}');
const PING = Buffer.from('{"jsonrpc":"2.0","id":"mcp-pin-probe","method":"ping"}');
/** The recovery lock outlives the recovery's own deadline, so it never expires under a recovery still running (I4). */
export const LOCK_MARGIN_MS = 1000;

/** A retry Envoy is about to send, after the attempt before it failed. */
export interface RecoveryOptions {
  store: SessionStore;
  forwarder: Forwarder;
  /** Bound on a shared recovery, and on each caller's wait and relay (--recovery-timeout-ms). */
  timeoutMs: number;
  /** Largest re-initialize response read. */
  maxResponseBytes: number;
  /** Pod answers that mean "session lost" (--lost-session-statuses). */
  lostSessionStatuses: readonly number[];
  /** Largest relayed answer read (it is held whole before it goes to the client). */
  maxRelayBytes: number;
  /** A pod's new session id longer than this is refused as it is at initialize. */
  maxSessionIdLength: number;
  /** Where a pin may point (--pin-allow): re-initialized pods and relay targets. */
  allows?: (pod: string) => Promise<boolean>;
  /** Shared by all relays of this process (--relay-budget-bytes). */
  relayBudget?: ByteBudget;
  /** Polling interval while another replica holds the lock. */
  lockPollMs?: number;
  /**
   * Told once per shared recovery, when it ends, of what it was (whoever is
   * still waiting for it, or nobody): the session re-initialized, found not
   * lost, or the recovery failed (its code, and why in words: the step and
   * what the pod or the store said); and how long it took.
   */
  onRecoveryDone?: (outcome: {
    clientSessionId: string;
    result: 'recovered' | 'not_lost' | 'failed';
    code?: PinErrorCode;
    reason?: string;
    ms: number;
  }) => void;
  /** Told of each request a recovery sent to rebuild the session's state on the new pod, and whether the pod took it. */
  onStateReplayed?: (r: { clientSessionId: string; method: string; result: 'replayed' | 'refused'; status: number }) => void;
  /** Told of a failure recovery carries on after (a lock it could not release expires by itself). */
  onIgnoredError?: (op: 'release_recovery_lock' | 'drop_refused_state' | 'replay_late_state') => void;
  newToken?: () => string;
  clock?: Clock;
}

/** A new backend session, with the session's state replayed on it. */
interface Reinitialized {
  pod: string;
  backendSessionId: string;
  /** The changes that undo what the new pod refused (a subscription dropped from the session). */
  refused: StateChange[];
  /** The state the new pod holds now. */
  replayed: SessionState;
  /** The protocol version the new pod settled on. */
  version: string | undefined;
}

/** The result of a shared recovery. */
interface Recovered {
  pin: Pin;
  /** True for the caller whose call re-initialized; joiners see false. */
  reinitialized: boolean;
  /** The pod still holds the session: nothing was lost, pin unchanged. */
  notLost?: true;
}

export class SessionRecovery {
  /** Recoveries under way in this process, per client session: later attempts join them. */
  private readonly inflight = new Map<string, { fromGeneration: number; done: Promise<Recovered> }>();
  private readonly lockPollMs: number;
  private readonly newToken: () => string;
  private readonly clock: Clock;

  private readonly relayer: Relayer;

  constructor(private readonly o: RecoveryOptions) {
    this.relayer = new Relayer({
      forwarder: o.forwarder,
      lostSessionStatuses: o.lostSessionStatuses,
      maxRelayBytes: o.maxRelayBytes,
      ...(o.allows ? { allows: o.allows } : {}),
      ...(o.relayBudget ? { relayBudget: o.relayBudget } : {}),
      planRetry: (attempt, signal) => this.planRetry(attempt, signal),
    });
    this.lockPollMs = o.lockPollMs ?? 20;
    this.newToken = o.newToken ?? randomUUID;
    this.clock = o.clock ?? systemClock;
  }

  /** The bound of one caller's work (a plan, a relay): the recovery timeout, or the caller leaving. */
  deadline(cancelled: AbortSignal): AbortSignal {
    return AbortSignal.any([this.clock.timeout(this.o.timeoutMs), cancelled]);
  }

  /** Decides how to send a retry attempt; recovers the session first when its pin is the one that failed. Never throws. */
  async planRetry(attempt: RetryAttempt, signal: AbortSignal): Promise<RetryPlan> {
    try {
      return await this.plan(attempt, signal);
    } catch (err) {
      return { kind: 'failed', code: failureCode(err, signal) };
    }
  }

  private async plan(attempt: RetryAttempt, signal: AbortSignal): Promise<RetryPlan> {
    // Not the pin cache: a retry must see what other replicas stored.
    const rec = await this.o.store.load(attempt.clientSessionId);
    if (!rec) return { kind: 'unknown' };
    const onPath = onSessionPath(attempt.path, rec.initPath);
    // Not the session's MCP path: its failure says nothing about the session;
    // the answer of the pod that holds it now stands (asked once: I1).
    if (onPath === false) return { kind: 'relay', pin: pinOf(rec), why: 'off-path' };
    // The pin that failed is no longer the stored one: follow the newer one.
    if (rec.backendSessionId !== attempt.failedSessionId) return this.toward(pinOf(rec), attempt, false, onPath === true);
    const r = await untilAborted(this.shared(attempt, rec), signal);
    if (r.notLost) return { kind: 'relay', pin: r.pin, why: 'not-lost' };
    return this.toward(r.pin, attempt, r.reinitialized, onPath === true);
  }

  private toward(pin: Pin, attempt: RetryAttempt, reinitialized: boolean, onPath: boolean): RetryPlan {
    return pin.pod === attempt.pod ? { kind: 'send', pin, reinitialized, onPath } : { kind: 'relay', pin, why: 'moved' };
  }

  /** The recovery of this session from this generation: the one under way here, or a new one. */
  private shared(attempt: RetryAttempt, rec: SessionRecord): Promise<Recovered> {
    const sid = attempt.clientSessionId;
    const running = this.inflight.get(sid);
    // Joiners get the whole result (not lost included), and never re-plan from it.
    if (running && running.fromGeneration === rec.generation) return running.done.then((r) => ({ ...r, reinitialized: false }));
    const started = this.clock.now();
    const done = this.coordinate(attempt, rec.generation).finally(() => {
      if (this.inflight.get(sid)?.done === done) this.inflight.delete(sid);
    });
    // Its own outcome, once, whether or not anyone still waits for it (a
    // recovery another replica made is that replica's to report).
    done.then(
      (r) => {
        if (r.reinitialized || r.notLost)
          this.o.onRecoveryDone?.({ clientSessionId: sid, result: r.reinitialized ? 'recovered' : 'not_lost', ms: this.clock.now() - started });
      },
      (err: unknown) =>
        this.o.onRecoveryDone?.({
          clientSessionId: sid,
          result: 'failed',
          code: err instanceof PinError ? err.code : 'MCP_PIN_UNEXPECTED',
          reason: reasonOf(err),
          ms: this.clock.now() - started,
        }),
    );
    this.inflight.set(sid, { fromGeneration: rec.generation, done });
    return done;
  }

  /**
   * A working pin for the session, newer than `fromGeneration`: made by this
   * call (on the attempt's pod) or by a concurrent recovery on another
   * replica. Runs under its own deadline, not a caller's.
   */
  private async coordinate(attempt: RetryAttempt, fromGeneration: number): Promise<Recovered> {
    const { store } = this.o;
    const sid = attempt.clientSessionId;
    const own = this.clock.timeout(this.o.timeoutMs);
    const token = this.newToken();
    let wait = this.lockPollMs;
    try {
      for (;;) {
        own.throwIfAborted();
        const rec = await store.load(sid);
        if (!rec) throw new RecoveryError('MCP_PIN_RECOVERY_GONE', 'session no longer in the store');
        if (rec.generation !== fromGeneration) return { pin: pinOf(rec), reinitialized: false };
        if (await store.tryLock(sid, token, this.o.timeoutMs + LOCK_MARGIN_MS)) {
          try {
            return await this.recoverUnderLock(attempt, fromGeneration, own);
          } finally {
            await store.unlock(sid, token).catch(() => this.o.onIgnoredError?.('release_recovery_lock'));
          }
        }
        // Another replica is recovering this session: wait for its result.
        await this.clock.sleep(wait, own);
        wait = Math.min(wait * 2, 200);
      }
    } catch (err) {
      if (err instanceof PinError) throw err;
      if (own.aborted) throw new RecoveryError('MCP_PIN_RECOVERY_TIMEOUT', `recovery took longer than ${this.o.timeoutMs} ms`, err);
      throw err;
    }
  }

  private async recoverUnderLock(attempt: RetryAttempt, fromGeneration: number, own: AbortSignal): Promise<Recovered> {
    const { store } = this.o;
    const sid = attempt.clientSessionId;
    // Someone may have finished between our read and our lock.
    const fresh = await store.load(sid);
    if (!fresh) throw new RecoveryError('MCP_PIN_RECOVERY_GONE', 'session no longer in the store');
    if (fresh.generation !== fromGeneration) return { pin: pinOf(fresh), reinitialized: false };
    // A status alone is no proof (a 404 for a wrong path, a 400 for a
    // malformed body): ask the pod itself (I6).
    if (await this.stillHolds(fresh, attempt, own)) return { pin: pinOf(fresh), reinitialized: false, notLost: true };
    if (!fresh.initBody)
      return this.forget(sid, fresh.generation, new RecoveryError('MCP_PIN_RECOVERY_NO_INIT_BODY', 'no initialize body stored for this session'));
    let next: Reinitialized;
    try {
      next = await this.reinitialize(fresh, attempt, own);
    } catch (err) {
      // A pod refused the stored initialize itself: it can never succeed (I5).
      if (err instanceof RecoveryError && err.code === 'MCP_PIN_RECOVERY_REINIT_REFUSED') return this.forget(sid, fresh.generation, err);
      throw err;
    }
    const pin = await store.replacePin(sid, fresh.generation, next.pod, next.backendSessionId);
    if (pin) {
      // What the new pod refused is no longer part of the session (a
      // subscription to a resource that is gone): not replayed again.
      for (const change of next.refused)
        if (change.op === 'unsubscribe') await store.changeState(sid, change).catch(() => this.o.onIgnoredError?.('drop_refused_state'));
      // A change the old pod accepted while this recovery ran (a subscribe
      // answered just before that pod died) is not in what was replayed:
      // the new pod gets it too (I8).
      const now = await store.load(sid).catch(() => null);
      if (now && now.generation === pin.generation) {
        const late = changesBetween(next.replayed, now.state);
        if (late.length > 0)
          await this.replay(late, now, attempt, { pod: pin.pod, backendSessionId: pin.backendSessionId, version: next.version }, own).catch(() =>
            this.o.onIgnoredError?.('replay_late_state'),
          );
      }
      return { pin, reinitialized: true };
    }
    // Our lock expired and another recovery stored first: its pin wins (the
    // backend session we made is left to expire on its pod).
    const winner = await store.load(sid);
    if (!winner) throw new RecoveryError('MCP_PIN_RECOVERY_GONE', 'session vanished while recovering');
    return { pin: pinOf(winner), reinitialized: false };
  }

  /**
   * A change the pod that answered it accepted, kept after the session had
   * already moved on (that pod died and a recovery that ran meanwhile did
   * not see the change): the pod that holds the session now gets it too
   * (I8). `answeredBy` is the backend session id the request went with.
   * Best effort: a failure is reported, and the next recovery replays the
   * kept state anyway.
   */
  async catchUpState(clientSessionId: string, answeredBy: string, change: StateChange, headers: HeaderPairs): Promise<CatchUpOutcome> {
    const rec = await this.o.store.load(clientSessionId);
    if (!rec || rec.backendSessionId === answeredBy) return 'current';
    const own = this.clock.timeout(this.o.timeoutMs);
    const attempt: RetryAttempt = { clientSessionId, failedSessionId: answeredBy, pod: rec.pod, path: rec.initPath ?? '/', headers };
    let refused: StateChange[];
    try {
      refused = await this.replay(
        [change],
        rec,
        attempt,
        { pod: rec.pod, backendSessionId: rec.backendSessionId, version: firstHeader(headers, VERSION_HEADER) ?? requestedVersion(rec.initBody) },
        own,
      );
    } catch {
      // That pod lost the session too: its next recovery replays the kept state.
      return 'failed';
    }
    for (const c of refused) await this.o.store.changeState(clientSessionId, c).catch(() => this.o.onIgnoredError?.('drop_refused_state'));
    return refused.length > 0 ? 'refused' : 'sent';
  }

  /**
   * Drops a record that can never be recovered (I5) and throws `proof`, the
   * spec's "session gone", only once the record is no longer stored (A1): a
   * removal the store did not confirm is a "try again" (the next attempt
   * proves it anew), and a newer pin stored meanwhile (our lock expired, and
   * another pod took the initialize) is the session's, not lost.
   */
  private async forget(sid: string, generation: number, proof: RecoveryError): Promise<Recovered> {
    let removed: boolean;
    try {
      removed = await this.o.store.removeIfGeneration(sid, generation);
    } catch (err) {
      throw new RecoveryError('MCP_PIN_RECOVERY_UNAVAILABLE', `${proof.message}, and the store did not confirm dropping the record`, err);
    }
    const now = removed ? null : await this.o.store.load(sid);
    if (!now) throw proof;
    return { pin: pinOf(now), reinitialized: false };
  }

  /**
   * Whether the pin's pod still holds the session: a ping in it, at the path
   * the session was initialized on. Lost means the pod cannot be reached (or
   * Envoy had to send the ping elsewhere: the pod left discovery) or it
   * answers a lost-session status; any other answer means the session is there.
   */
  private async stillHolds(rec: SessionRecord, attempt: RetryAttempt, own: AbortSignal): Promise<boolean> {
    let res: ForwardResponse;
    try {
      res = await this.o.forwarder.send({
        method: 'POST',
        path: rec.initPath ?? attempt.path,
        // The version the session was initialized with, never the failing
        // request's own (a client's unsupported version gets every request a 400).
        headers: [...this.postHeaders(attempt, requestedVersion(rec.initBody)), [SESSION_HEADER, rec.backendSessionId]],
        body: PING,
        pod: rec.pod,
        signal: own,
        maxBodyBytes: this.o.maxResponseBytes,
      });
    } catch (err) {
      if (own.aborted) throw err;
      return false;
    }
    if (parsePodAddress(res.upstream) !== rec.pod) return false;
    // Where the session's MCP path is not known (a record from before it was
    // kept), the pod answered, and a lost status at a guessed path proves nothing.
    if (rec.initPath === null) return true;
    return !(this.o.lostSessionStatuses.includes(res.status) && saysSessionUnknown(res.status, res.body));
  }

  /**
   * A POST of mcp-pin's own (ping, initialize, notifications/initialized),
   * with the client's end-to-end headers but its MCP-Protocol-Version: these
   * speak `version` (none on an initialize, which negotiates it).
   */
  private postHeaders(attempt: RetryAttempt, version: string | undefined): HeaderPairs {
    const base = endToEndHeaders(attempt.headers, new Set([SESSION_HEADER, 'accept', 'content-type', 'last-event-id', VERSION_HEADER]));
    // JSON and SSE accepted, also when a GET is being recovered.
    return [
      ...base,
      ['content-type', 'application/json'],
      ['accept', 'application/json, text/event-stream'],
      ...(version ? [[VERSION_HEADER, version] as [string, string]] : []),
    ];
  }

  /**
   * New backend session on the attempt's pod, announced with
   * notifications/initialized. Throws REINIT_REFUSED when a pod answered the
   * stored initialize with a 4xx (it will never work), UNAVAILABLE for
   * anything that may go better next time.
   */
  private async reinitialize(rec: SessionRecord, attempt: RetryAttempt, own: AbortSignal): Promise<Reinitialized> {
    const send = { method: 'POST', path: rec.initPath ?? attempt.path, signal: own, maxBodyBytes: this.o.maxResponseBytes };
    const unavailable = (why: string, cause?: unknown) => new RecoveryError('MCP_PIN_RECOVERY_UNAVAILABLE', why, cause);
    let res: ForwardResponse;
    try {
      res = await this.o.forwarder.send({ ...send, headers: this.postHeaders(attempt, undefined), body: rec.initBody, pod: attempt.pod });
    } catch (err) {
      if (own.aborted) throw err;
      throw unavailable('re-initialize request failed', err);
    }
    if (res.envoyReply !== undefined) throw unavailable(`no pod answered the re-initialize (${res.envoyReply})`);
    if (res.status >= 400 && res.status < 500)
      throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_REFUSED', `the stored initialize was refused with ${res.status}`);
    if (!is2xx(res.status)) throw unavailable(`re-initialize answered ${res.status}`);
    const backendSessionId = firstHeader(res.headers, SESSION_HEADER);
    if (!backendSessionId || !isValidSessionId(backendSessionId, this.o.maxSessionIdLength))
      throw unavailable('re-initialize answered without a usable session id');
    // The pod Envoy really used (it is the attempt's, unless that one left discovery meanwhile).
    const pod = parsePodAddress(res.upstream);
    if (!pod) throw unavailable(`Envoy reported no usable upstream for re-initialize (${res.upstream ?? 'none'})`);
    if (!(await this.allowed(pod))) throw unavailable(`re-initialized pod ${pod} is outside --pin-allow`);
    let note: ForwardResponse;
    try {
      // In the version the new pod settled on (what the client asked for, when the answer does not say).
      const version = negotiatedVersion(res.body) ?? requestedVersion(rec.initBody);
      note = await this.o.forwarder.send({
        ...send,
        headers: [...this.postHeaders(attempt, version), [SESSION_HEADER, backendSessionId]],
        body: INITIALIZED,
        pod,
      });
    } catch (err) {
      if (own.aborted) throw err;
      throw unavailable('notifications/initialized failed', err);
    }
    if (!is2xx(note.status)) throw unavailable(`notifications/initialized answered ${note.status}`);
    const version = negotiatedVersion(res.body) ?? requestedVersion(rec.initBody);
    const refused = await this.replay(changesBetween(EMPTY_STATE, rec.state), rec, attempt, { pod, backendSessionId, version }, own);
    // What the new pod holds now: the stored state but what it refused.
    const replayed = refused.reduce((st, change) => (change.op === 'unsubscribe' ? applyChange(st, change).state : st), rec.state);
    return { pod, backendSessionId, refused, replayed, version };
  }

  /**
   * Sends `changes` (session-state.ts: the log level, subscriptions) to
   * the new backend session, before the retried request goes there (I8):
   * the whole state after a re-initialize, and what changed while the
   * recovery ran. A subscribe the pod refuses (a JSON-RPC error: the
   * resource is gone, say) is left out and reported; any other answer but a
   * 2xx fails the recovery for now, like notifications/initialized.
   * Returns the changes that undo what was refused.
   */
  private async replay(
    changes: StateChange[],
    rec: SessionRecord,
    attempt: RetryAttempt,
    to: { pod: string; backendSessionId: string; version: string | undefined },
    own: AbortSignal,
  ): Promise<StateChange[]> {
    const refused: StateChange[] = [];
    for (const [i, change] of changes.entries()) {
      const r = requestFor(change);
      const id = `mcp-pin-replay-${i}`;
      let res: ForwardResponse;
      try {
        res = await this.o.forwarder.send({
          method: 'POST',
          path: rec.initPath ?? attempt.path,
          headers: [...this.postHeaders(attempt, to.version), [SESSION_HEADER, to.backendSessionId]],
          body: Buffer.from(JSON.stringify({ jsonrpc: '2.0', id, method: r.method, params: r.params })),
          pod: to.pod,
          signal: own,
          maxBodyBytes: this.o.maxResponseBytes,
        });
      } catch (err) {
        if (own.aborted) throw err;
        throw new RecoveryError('MCP_PIN_RECOVERY_UNAVAILABLE', `replaying ${r.method} failed`, err);
      }
      // Not an answer to the method (the pod lost the new session, or is gone): for now.
      if (res.envoyReply !== undefined || !is2xx(res.status))
        throw new RecoveryError('MCP_PIN_RECOVERY_UNAVAILABLE', `replaying ${r.method} answered ${res.status}`);
      // The method ran and said no (a JSON-RPC error: the resource is gone, subscriptions unsupported).
      const taken = answerTo(id, res.body, firstHeader(res.headers, 'content-type')) !== 'refused';
      this.o.onStateReplayed?.({ clientSessionId: attempt.clientSessionId, method: r.method, result: taken ? 'replayed' : 'refused', status: res.status });
      // A subscription the pod refused is dropped from the session; a refused level or unsubscribe changes nothing kept.
      if (!taken && change.op === 'subscribe') refused.push({ op: 'unsubscribe', uri: change.uri });
    }
    return refused;
  }

  private async allowed(pod: string): Promise<boolean> {
    return this.o.allows ? this.o.allows(pod) : true;
  }

  /** Sends a relayed attempt to its session's pod (relay.ts); may plan once more when that pod lost the session meanwhile. */
  relay(req: RelayRequest, signal: AbortSignal): Promise<RelayOutcome> {
    return this.relayer.relay(req, signal);
  }
}

/** The code a failed plan carries: the error's own, or what ended the caller's wait. */
function failureCode(err: unknown, signal: AbortSignal): PinErrorCode {
  if (err instanceof PinError) return err.code;
  if (signal.aborted) return abortedByDeadline(signal) ? 'MCP_PIN_RECOVERY_TIMEOUT' : 'MCP_PIN_RECOVERY_CANCELLED';
  return 'MCP_PIN_UNEXPECTED';
}

/**
 * Why a recovery failed, for the operator's log line: the error's message
 * and its cause's (the connection error under "re-initialize request
 * failed"). Messages name steps, statuses and pods, never a session id.
 */
function reasonOf(err: unknown): string {
  const text = (e: unknown): string => (e instanceof Error ? e.message : String(e));
  // A deadline's own abort adds nothing to "took longer than".
  const told = (c: unknown): c is Error => c instanceof Error && c.name !== 'AbortError' && c.name !== 'TimeoutError';
  return err instanceof Error && told(err.cause) ? `${text(err)}: ${err.cause.message}` : text(err);
}
