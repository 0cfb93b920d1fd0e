/**
 * Time as recovery sees it: the current time, waits, and deadlines. One
 * narrow interface, so that the interleaving test runs the real protocol
 * code on a virtual clock (test/protocol/) and a failing schedule replays
 * exactly from its seed.
 */
import { setTimeout as sleep } from 'node:timers/promises';

export interface Clock {
  now(): number;
  /** Resolves after ms; rejects with the signal's reason when it aborts first. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** A signal that aborts after ms with a DOMException named "TimeoutError" (as AbortSignal.timeout does). */
  timeout(ms: number): AbortSignal;
}

export const systemClock: Clock = {
  now: Date.now,
  sleep: (ms, signal) => sleep(ms, undefined, signal ? { signal } : {}),
  timeout: (ms) => AbortSignal.timeout(ms),
};

/** True when the signal was aborted by a deadline (a timeout signal), not by a caller leaving. */
export function abortedByDeadline(signal: AbortSignal): boolean {
  return signal.aborted && (signal.reason as { name?: string } | undefined)?.name === 'TimeoutError';
}

/**
 * Waits for `p`, but stops waiting (rejecting with the signal's reason) when
 * the signal aborts: the work behind `p` goes on, shared with others.
 */
export function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    // Given up on before it was awaited: its outcome is no one's to hear
    // here (a shared recovery reports its own), and must not surface as an
    // unhandled rejection.
    p.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
