/**
 * Recovery of a session whose pod lost it: take the session's recovery lock
 * (one recovery per session across all replicas), re-initialize through the
 * service, send notifications/initialized, store the new pin with a
 * compare-and-set on the generation, then replay the request there.
 *
 * Pure orchestration over two narrow interfaces (SessionStore, Forwarder);
 * mapping outcomes to what the client sees is http-recoverer.ts's job.
 */
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { RecoveryError } from '../errors.js';
import { SESSION_HEADER, type LostRequest } from '../extproc/exchange.js';
import { firstHeader, type HeaderPairs } from '../extproc/headers.js';
import { parsePodAddress } from '../extproc/upstream.js';
import type { Pin, SessionStore } from '../sessions/store.js';
import type { ForwardResponse, Forwarder } from './forwarder.js';

/** Headers that belong to one hop (RFC 9110 7.6.1) or to Envoy/mcp-pin, never forwarded or copied back. */
const HOP_HEADERS = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'te',
  'trailer',
  'content-length',
  'host',
  'x-request-id',
  'x-envoy-expected-rq-timeout-ms',
  'x-forwarded-proto',
]);

/** Client headers a replayed request keeps: end-to-end ones (Authorization, MCP-Protocol-Version, ...). */
export function endToEndHeaders(headers: HeaderPairs, drop: Set<string>): HeaderPairs {
  const out: HeaderPairs = [];
  let authority: string | undefined;
  for (const [k, v] of headers) {
    if (k === ':authority') authority = v;
    if (k.startsWith(':') || HOP_HEADERS.has(k) || drop.has(k) || k.startsWith('x-envoy-')) continue;
    out.push([k, v]);
  }
  // Pods may check Host (the SDK's DNS-rebinding guard): keep the client's.
  if (authority) out.push(['host', authority]);
  return out;
}

/** Response headers copied to the client: no hop headers, and its own session id. */
export function clientResponseHeaders(headers: HeaderPairs, clientSessionId: string): [string, string][] {
  const merged = new Map<string, string>();
  for (const [k, v] of headers) {
    if (HOP_HEADERS.has(k) || k.startsWith(':')) continue;
    const value = k === SESSION_HEADER ? clientSessionId : v;
    const prev = merged.get(k);
    merged.set(k, prev === undefined || k === SESSION_HEADER ? value : `${prev}, ${value}`);
  }
  return [...merged];
}

const is2xx = (s: number): boolean => s >= 200 && s < 300;
const INITIALIZED = Buffer.from('{"jsonrpc":"2.0","method":"notifications/initialized"}');

export interface RecoveryOptions {
  store: SessionStore;
  forwarder: Forwarder;
  pinHeader: string;
  timeoutMs: number;
  maxReplayBodyBytes: number;
  /** Where a re-initialized session may be pinned. */
  allows?: (pod: string) => boolean;
  /** Polling interval while another replica holds the lock. */
  lockPollMs?: number;
  newToken?: () => string;
}

export interface Recovered {
  pin: Pin;
  /** True when this call re-initialized; false when it used another's result. */
  reinitialized: boolean;
}

export class SessionRecovery {
  /** Recoveries under way in this process, per client session: later requests join them. */
  private readonly inflight = new Map<string, { fromGeneration: number; done: Promise<Recovered> }>();
  private readonly lockPollMs: number;
  private readonly newToken: () => string;

  constructor(private readonly o: RecoveryOptions) {
    this.lockPollMs = o.lockPollMs ?? 20;
    this.newToken = o.newToken ?? randomUUID;
  }

  /**
   * A working pin for the session, newer than `lost.pin`: made by this call or
   * by a concurrent recovery (here or on another replica).
   */
  obtainPin(lost: LostRequest, signal: AbortSignal): Promise<Recovered> {
    const sid = lost.clientSessionId;
    const running = this.inflight.get(sid);
    if (running && running.fromGeneration === lost.pin.generation) {
      return running.done.then((r) => ({ pin: r.pin, reinitialized: false }));
    }
    const done = this.coordinate(lost, signal).finally(() => {
      if (this.inflight.get(sid)?.done === done) this.inflight.delete(sid);
    });
    this.inflight.set(sid, { fromGeneration: lost.pin.generation, done });
    return done;
  }

  private async coordinate(lost: LostRequest, signal: AbortSignal): Promise<Recovered> {
    const { store } = this.o;
    const sid = lost.clientSessionId;
    const token = this.newToken();
    let wait = this.lockPollMs;
    for (;;) {
      signal.throwIfAborted();
      const rec = await store.load(sid);
      if (!rec) throw new RecoveryError('MCP_PIN_RECOVERY_GONE', 'session no longer in the store');
      if (rec.generation !== lost.pin.generation) return { pin: rec, reinitialized: false };
      if (await store.tryLock(sid, token, this.o.timeoutMs)) {
        try {
          // Someone may have finished between our read and our lock.
          const fresh = await store.load(sid);
          if (!fresh) throw new RecoveryError('MCP_PIN_RECOVERY_GONE', 'session no longer in the store');
          if (fresh.generation !== lost.pin.generation) return { pin: fresh, reinitialized: false };
          if (!fresh.initBody) {
            throw new RecoveryError('MCP_PIN_RECOVERY_NO_INIT_BODY', 'no initialize body stored for this session');
          }
          const next = await this.reinitialize(fresh.initBody, lost, signal);
          const pin = await store.replacePin(sid, fresh.generation, next.pod, next.backendSessionId);
          if (pin) return { pin, reinitialized: true };
          // Our lock expired and another recovery stored first: its pin wins
          // (the backend session we made is left to expire on its pod).
          const winner = await store.lookup(sid);
          if (!winner) throw new RecoveryError('MCP_PIN_RECOVERY_GONE', 'session vanished while recovering');
          return { pin: winner, reinitialized: false };
        } finally {
          await store.unlock(sid, token).catch(() => {});
        }
      }
      // Another replica is recovering this session: wait for its result.
      await sleep(wait, undefined, { signal });
      wait = Math.min(wait * 2, 200);
    }
  }

  /** New backend session on a pod the service picks, announced with notifications/initialized. */
  private async reinitialize(initBody: Buffer, lost: LostRequest, signal: AbortSignal): Promise<{ pod: string; backendSessionId: string }> {
    const base = endToEndHeaders(lost.headers, new Set([SESSION_HEADER, this.o.pinHeader, 'accept', 'content-type', 'last-event-id']));
    const headers: HeaderPairs = [...base, ['content-type', 'application/json'], ['accept', 'application/json, text/event-stream']];
    let res: ForwardResponse;
    try {
      res = await this.o.forwarder.send({ method: 'POST', path: lost.path, headers, body: initBody, signal, maxBodyBytes: this.o.maxReplayBodyBytes });
    } catch (err) {
      throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', 're-initialize request failed', err);
    }
    if (!is2xx(res.status)) throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', `re-initialize answered ${res.status}`);
    const backendSessionId = firstHeader(res.headers, SESSION_HEADER);
    if (!backendSessionId) throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', 're-initialize answered without a session id');
    const pod = parsePodAddress(res.upstream);
    if (!pod) throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', `Envoy reported no usable upstream for re-initialize (${res.upstream ?? 'none'})`);
    if (this.o.allows && !this.o.allows(pod)) throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', `re-initialized pod ${pod} is outside --pin-allow`);

    let note: ForwardResponse;
    try {
      note = await this.o.forwarder.send({
        method: 'POST',
        path: lost.path,
        headers: [...headers, [SESSION_HEADER, backendSessionId]],
        body: INITIALIZED,
        pod,
        signal,
        maxBodyBytes: this.o.maxReplayBodyBytes,
      });
    } catch (err) {
      throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', 'notifications/initialized failed', err);
    }
    if (!is2xx(note.status)) throw new RecoveryError('MCP_PIN_RECOVERY_REINIT_FAILED', `notifications/initialized answered ${note.status}`);
    return { pod, backendSessionId };
  }

  /** The original request, sent to the recovered pod under the backend's session id. */
  async replay(lost: LostRequest, pin: Pin, signal: AbortSignal): Promise<ForwardResponse> {
    const headers: HeaderPairs = [
      ...endToEndHeaders(lost.headers, new Set([SESSION_HEADER, this.o.pinHeader])),
      [SESSION_HEADER, pin.backendSessionId],
    ];
    try {
      return await this.o.forwarder.send({
        method: lost.method,
        path: lost.path,
        headers,
        body: lost.body,
        pod: pin.pod,
        signal,
        maxBodyBytes: this.o.maxReplayBodyBytes,
      });
    } catch (err) {
      throw new RecoveryError('MCP_PIN_RECOVERY_REPLAY_FAILED', 'replay to the recovered pod failed', err);
    }
  }
}
