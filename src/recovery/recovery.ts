/**
 * Recovery of a session whose pod lost it. Envoy does the replay: when the
 * pinned pod answers with a lost-session status or cannot be reached, it
 * retries the request (with the body it kept) on another pod, and asks
 * mcp-pin, for that attempt only, how to send it. The plan:
 *
 * - the stored pin is the one the failed attempt used: under the session's
 *   recovery lock (one recovery per session across all replicas), first make
 *   sure the session is really lost (its pod is unreachable, or answers a
 *   ping in it with a lost-session status); if it is, re-initialize a
 *   backend session on this attempt's pod (stored initialize +
 *   notifications/initialized) and store it with a compare-and-set on the
 *   generation; if it is not (the failure was about something else), the
 *   request goes back to its pod by relay and the client gets that pod's
 *   own answer;
 * - the session was moved meanwhile (another request recovered it): follow
 *   that pin: on this pod if it is there; else the request is relayed to
 *   that pod by mcp-pin (Envoy cannot steer a retry once it is under way).
 *
 * Pure orchestration over two narrow interfaces (SessionStore, Forwarder);
 * it returns a plain plan, and the ext_proc layer turns it into Envoy's
 * answer.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { RecoveryError } from '../errors.js';
import { HOP_BY_HOP_HEADERS, SESSION_HEADER, firstHeader, isProxyHeader, type HeaderPairs } from '../mcp-headers.js';
import { parsePodAddress } from '../pod-address.js';
import type { Pin, SessionStore } from '../sessions/store.js';
import type { ForwardResponse, Forwarder } from './forwarder.js';

/** Headers that belong to one hop (RFC 9110 7.6.1) or to Envoy/mcp-pin, never forwarded. */
/** Besides hop-by-hop ones: headers of this hop's routing, which the pod's own request gets anew. */
const ROUTING_HEADERS = new Set(['host', 'x-request-id', 'x-forwarded-proto']);

/** Client headers a re-initialize keeps: end-to-end ones (Authorization, MCP-Protocol-Version, ...). */
export function endToEndHeaders(headers: HeaderPairs, drop: Set<string>): HeaderPairs {
  const out: HeaderPairs = [];
  let authority: string | undefined;
  for (const [k, v] of headers) {
    if (k === ':authority') authority = v;
    if (k.startsWith(':') || HOP_BY_HOP_HEADERS.has(k) || ROUTING_HEADERS.has(k) || drop.has(k) || isProxyHeader(k)) continue;
    out.push([k, v]);
  }
  // Pods may check Host (the SDK's DNS-rebinding guard): keep the client's.
  if (authority) out.push(['host', authority]);
  return out;
}

const is2xx = (s: number): boolean => s >= 200 && s < 300;
const pinOf = (r: Pin): Pin => ({ pod: r.pod, backendSessionId: r.backendSessionId, generation: r.generation });
const INITIALIZED = Buffer.from('{"jsonrpc":"2.0","method":"notifications/initialized"}');
const PING = Buffer.from('{"jsonrpc":"2.0","id":"mcp-pin-probe","method":"ping"}');

/** A retry Envoy is about to send, after the attempt before it failed. */
export interface RetryAttempt {
  clientSessionId: string;
  /** The session id the failed attempt carried: the backend id of the pin it used. */
  failedSessionId: string;
  /** The pod ("ip:port") this attempt goes to. */
  pod: string;
  path: string;
  /** The request's headers (end-to-end ones are reused for a re-initialize). */
  headers: HeaderPairs;
}

/** A request to send to the pod that holds its session, under that session's backend id. */
export interface RelayRequest {
  pin: Pin;
  method: string;
  path: string;
  headers: HeaderPairs;
  body: Buffer | null;
}

/** How to send a retry attempt. */
export type RetryPlan =
  /** Send it on this attempt's pod under pin.backendSessionId. */
  | { kind: 'send'; pin: Pin; reinitialized: boolean }
  /** The session lives on another pod (moved meanwhile, or never lost): relay the request there (relay()). */
  | { kind: 'relay'; pin: Pin; notLost?: true }
  /** The store does not know the session (deleted, expired): send it untouched. */
  | { kind: 'unknown' };

export interface RecoveryOptions {
  store: SessionStore;
  forwarder: Forwarder;
  timeoutMs: number;
  /** Largest re-initialize response read. */
  maxResponseBytes: number;
  /** Pod answers that mean "session lost" (--lost-session-statuses). */
  lostSessionStatuses: readonly number[];
  /** Largest relayed answer read (it is held whole before it goes to the client). */
  maxRelayBytes: number;
  /** Where a re-initialized session may be pinned. */
  allows?: (pod: string) => Promise<boolean>;
  /** Polling interval while another replica holds the lock. */
  lockPollMs?: number;
  /** Told of a failure recovery carries on after (a lock it could not release expires by itself). */
  onIgnoredError?: (op: 'release_recovery_lock') => void;
  newToken?: () => string;
}

export interface Recovered {
  pin: Pin;
  /** True when this call re-initialized; false when it used another's result. */
  reinitialized: boolean;
  /** The pod still holds the session: nothing was lost, pin unchanged. */
  notLost?: true;
}

export class SessionRecovery {
  /** Recoveries under way in this process, per client session: later attempts join them. */
  private readonly inflight = new Map<string, { fromGeneration: number; done: Promise<Recovered> }>();
  private readonly lockPollMs: number;
  private readonly newToken: () => string;

  constructor(private readonly o: RecoveryOptions) {
    this.lockPollMs = o.lockPollMs ?? 20;
    this.newToken = o.newToken ?? randomUUID;
  }

  /** Decides how to send a retry attempt; recovers the session first when its pin is the one that failed. */
  async planRetry(attempt: RetryAttempt, signal: AbortSignal): Promise<RetryPlan> {
    // Not the pin cache: a retry must see what other replicas stored.
    const rec = await this.o.store.load(attempt.clientSessionId);
    if (!rec) return { kind: 'unknown' };
    let pin = pinOf(rec);
    let reinitialized = false;
    if (rec.backendSessionId === attempt.failedSessionId) {
      const r = await this.obtainPin(attempt, pin, signal);
      if (r.notLost) return { kind: 'relay', pin: r.pin, notLost: true };
      pin = r.pin;
      reinitialized = r.reinitialized;
    }
    return pin.pod === attempt.pod ? { kind: 'send', pin, reinitialized } : { kind: 'relay', pin };
  }

  /**
   * A working pin for the session, newer than `failed`: made by this call (on
   * the attempt's pod) or by a concurrent recovery (here or on another replica).
   */
  private obtainPin(attempt: RetryAttempt, failed: Pin, signal: AbortSignal): Promise<Recovered> {
    const sid = attempt.clientSessionId;
    const running = this.inflight.get(sid);
    if (running && running.fromGeneration === failed.generation) {
      return running.done.then((r) => ({ pin: r.pin, reinitialized: false }));
    }
    const done = this.coordinate(attempt, failed, signal).finally(() => {
      if (this.inflight.get(sid)?.done === done) this.inflight.delete(sid);
    });
    this.inflight.set(sid, { fromGeneration: failed.generation, done });
    return done;
  }

  private async coordinate(attempt: RetryAttempt, failed: Pin, signal: AbortSignal): Promise<Recovered> {
    const { store } = this.o;
    const sid = attempt.clientSessionId;
    const token = this.newToken();
    let wait = this.lockPollMs;
    for (;;) {
      signal.throwIfAborted();
      const rec = await store.load(sid);
      if (!rec) throw new RecoveryError('MCP_PIN_RECOVERY_GONE', 'session no longer in the store');
      if (rec.generation !== failed.generation) return { pin: pinOf(rec), reinitialized: false };
      if (await store.tryLock(sid, token, this.o.timeoutMs)) {
        try {
          // Someone may have finished between our read and our lock.
          const fresh = await store.load(sid);
          if (!fresh) throw new RecoveryError('MCP_PIN_RECOVERY_GONE', 'session no longer in the store');
          if (fresh.generation !== failed.generation) return { pin: pinOf(fresh), reinitialized: false };
          // A status alone is no proof (a 404 for a wrong path, a 400 for a
          // malformed body): ask the pod itself.
          if (await this.stillHolds(fresh, attempt, signal)) return { pin: pinOf(fresh), reinitialized: false, notLost: true };
          if (!fresh.initBody) {
            throw new RecoveryError('MCP_PIN_RECOVERY_NO_INIT_BODY', 'no initialize body stored for this session');
          }
          const next = await this.reinitialize(fresh.initBody, attempt, signal);
          const pin = await store.replacePin(sid, fresh.generation, next.pod, next.backendSessionId);
          if (pin) return { pin, reinitialized: true };
          // Our lock expired and another recovery stored first: its pin wins
          // (the backend session we made is left to expire on its pod).
          const winner = await store.lookup(sid);
          if (!winner) throw new RecoveryError('MCP_PIN_RECOVERY_GONE', 'session vanished while recovering');
          return { pin: winner, reinitialized: false };
        } finally {
          await store.unlock(sid, token).catch(() => this.o.onIgnoredError?.('release_recovery_lock'));
        }
      }
      // Another replica is recovering this session: wait for its result.
      await sleep(wait, undefined, { signal });
      wait = Math.min(wait * 2, 200);
    }
  }

  /**
   * Whether the pin's pod still holds the session: a ping in it. Lost means
   * the pod cannot be reached (or Envoy had to send the ping elsewhere: the
   * pod left discovery) or it answers a lost-session status; any other answer
   * means the session is there.
   */
  private async stillHolds(pin: Pin, attempt: RetryAttempt, signal: AbortSignal): Promise<boolean> {
    let res: ForwardResponse;
    try {
      res = await this.o.forwarder.send({
        method: 'POST',
        path: attempt.path,
        headers: [...this.postHeaders(attempt), [SESSION_HEADER, pin.backendSessionId]],
        body: PING,
        pod: pin.pod,
        signal,
        maxBodyBytes: this.o.maxResponseBytes,
      });
    } catch {
      signal.throwIfAborted();
      return false;
    }
    if (parsePodAddress(res.upstream) !== pin.pod) return false;
    return !this.o.lostSessionStatuses.includes(res.status);
  }

  /** A POST of mcp-pin's own (ping, initialize), with the client's end-to-end headers. */
  private postHeaders(attempt: RetryAttempt): HeaderPairs {
    const base = endToEndHeaders(attempt.headers, new Set([SESSION_HEADER, 'accept', 'content-type', 'last-event-id']));
    // JSON and SSE accepted, also when a GET is being recovered.
    return [...base, ['content-type', 'application/json'], ['accept', 'application/json, text/event-stream']];
  }

  /** The request, once, to pin.pod under the session's backend id; its answer as the pod gave it. */
  async relay(req: RelayRequest, signal: AbortSignal): Promise<ForwardResponse> {
    const headers: HeaderPairs = [...endToEndHeaders(req.headers, new Set([SESSION_HEADER])), [SESSION_HEADER, req.pin.backendSessionId]];
    return this.o.forwarder.send({ method: req.method, path: req.path, headers, body: req.body, pod: req.pin.pod, signal, maxBodyBytes: this.o.maxRelayBytes });
  }

  /** New backend session on the attempt's pod, announced with notifications/initialized. */
  private async reinitialize(initBody: Buffer, attempt: RetryAttempt, signal: AbortSignal): Promise<{ pod: string; backendSessionId: string }> {
    const headers = this.postHeaders(attempt);
    const send = { method: 'POST', path: attempt.path, signal, maxBodyBytes: this.o.maxResponseBytes };
    let res: ForwardResponse;
    try {
      res = await this.o.forwarder.send({ ...send, headers, body: initBody, pod: attempt.pod });
    } catch (err) {
      throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', 're-initialize request failed', err);
    }
    if (!is2xx(res.status)) throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', `re-initialize answered ${res.status}`);
    const backendSessionId = firstHeader(res.headers, SESSION_HEADER);
    if (!backendSessionId) throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', 're-initialize answered without a session id');
    // The pod Envoy really used (it is the attempt's, unless that one left discovery meanwhile).
    const pod = parsePodAddress(res.upstream);
    if (!pod) throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', `Envoy reported no usable upstream for re-initialize (${res.upstream ?? 'none'})`);
    if (this.o.allows && !(await this.o.allows(pod))) throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', `re-initialized pod ${pod} is outside --pin-allow`);

    let note: ForwardResponse;
    try {
      note = await this.o.forwarder.send({ ...send, headers: [...headers, [SESSION_HEADER, backendSessionId]], body: INITIALIZED, pod });
    } catch (err) {
      throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', 'notifications/initialized failed', err);
    }
    if (!is2xx(note.status)) throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', `notifications/initialized answered ${note.status}`);
    return { pod, backendSessionId };
  }
}
