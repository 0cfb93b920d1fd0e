/**
 * Times every call that reaches the shared store (Redis), for
 * mcp_pin_store_seconds. It sits under the pin cache, so a lookup answered
 * by the cache costs no timer and no histogram observation (those are
 * counted as hits instead); timing a Map read cost more than the read.
 */
import type { ChangeResult, StateChange } from '../session-state.js';
import type { NewSession, Pin, SessionRecord, SessionStore } from './store.js';

export type StoreOp =
  | 'lookup'
  | 'load'
  | 'create'
  | 'adopt'
  | 'replace_pin'
  | 'change_state'
  | 'remove'
  | 'lock'
  | 'unlock'
  | 'remember_unknown'
  | 'is_unknown';
export const STORE_OPS: readonly StoreOp[] = [
  'lookup',
  'load',
  'create',
  'adopt',
  'replace_pin',
  'change_state',
  'remove',
  'lock',
  'unlock',
  'remember_unknown',
  'is_unknown',
];

export class TimedStore implements SessionStore {
  constructor(
    readonly inner: SessionStore,
    private readonly observe: (op: StoreOp, seconds: number) => void,
  ) {}

  private async timed<T>(op: StoreOp, call: Promise<T>): Promise<T> {
    const start = performance.now();
    try {
      return await call;
    } finally {
      this.observe(op, (performance.now() - start) / 1000);
    }
  }

  lookup(sid: string): Promise<Pin | null> {
    return this.timed('lookup', this.inner.lookup(sid));
  }
  create(sid: string, s: NewSession): Promise<boolean> {
    return this.timed('create', this.inner.create(sid, s));
  }
  rememberUnknown(sid: string, ttlMs: number): Promise<void> {
    return this.timed('remember_unknown', this.inner.rememberUnknown(sid, ttlMs));
  }

  isRememberedUnknown(sid: string): Promise<boolean> {
    return this.timed('is_unknown', this.inner.isRememberedUnknown(sid));
  }

  adopt(sid: string, pod: string, path: string | null = null): Promise<boolean> {
    return this.timed('adopt', this.inner.adopt(sid, pod, path));
  }
  load(sid: string): Promise<SessionRecord | null> {
    return this.timed('load', this.inner.load(sid));
  }
  replacePin(sid: string, expectedGeneration: number, pod: string, bsid: string): Promise<Pin | null> {
    return this.timed('replace_pin', this.inner.replacePin(sid, expectedGeneration, pod, bsid));
  }
  changeState(sid: string, change: StateChange): Promise<ChangeResult | 'gone'> {
    return this.timed('change_state', this.inner.changeState(sid, change));
  }
  remove(sid: string): Promise<void> {
    return this.timed('remove', this.inner.remove(sid));
  }
  removeIfGeneration(sid: string, expectedGeneration: number): Promise<boolean> {
    return this.timed('remove', this.inner.removeIfGeneration(sid, expectedGeneration));
  }
  tryLock(sid: string, token: string, ttlMs: number): Promise<boolean> {
    return this.timed('lock', this.inner.tryLock(sid, token, ttlMs));
  }
  unlock(sid: string, token: string): Promise<void> {
    return this.timed('unlock', this.inner.unlock(sid, token));
  }
  connect(timeoutMs: number): Promise<void> {
    return this.inner.connect?.(timeoutMs) ?? Promise.resolve();
  }
  ping(): Promise<void> {
    return this.inner.ping();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
