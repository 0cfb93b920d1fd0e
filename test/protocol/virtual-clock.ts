/**
 * A clock whose time moves only when the simulation says so: the recovery
 * code runs on it unchanged (src/clock.ts), and the driver advances it only
 * when nothing else can happen, so timeouts fire exactly when the work they
 * bound is still unfinished in simulated time.
 */
import type { Clock } from '../../src/clock.js';

interface Timer {
  at: number;
  seq: number;
  fire: () => void;
}

export class VirtualClock implements Clock {
  private t = 1_000_000;
  private seq = 0;
  private timers: Timer[] = [];

  now = (): number => this.t;

  private add(ms: number, fire: () => void): Timer {
    const timer = { at: this.t + Math.max(0, ms), seq: this.seq++, fire };
    this.timers.push(timer);
    return timer;
  }

  private cancel(timer: Timer): void {
    const i = this.timers.indexOf(timer);
    if (i >= 0) this.timers.splice(i, 1);
  }

  sleep = (ms: number, signal?: AbortSignal): Promise<void> => {
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.cancel(timer);
        reject(signal!.reason);
      };
      const timer = this.add(ms, () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  };

  timeout = (ms: number): AbortSignal => {
    const c = new AbortController();
    this.add(ms, () => c.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')));
    return c.signal;
  };

  /** Moves time on by `ms` at once (a stall): every timer due by then fires, in order. */
  jump(ms: number): void {
    this.t += ms;
    const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at || a.seq - b.seq);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const x of due) x.fire();
  }

  /** Moves to the next timer and fires every timer due then. False when none is left. */
  advance(): boolean {
    if (this.timers.length === 0) return false;
    let next = this.timers[0]!;
    for (const x of this.timers) if (x.at < next.at || (x.at === next.at && x.seq < next.seq)) next = x;
    this.t = Math.max(this.t, next.at);
    const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at || a.seq - b.seq);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const x of due) x.fire();
    return true;
  }
}
