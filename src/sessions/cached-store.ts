/**
 * A per-replica cache of pins in front of the shared store (--pin-cache-ms,
 * 1 s by default: measured in npm run bench, see README). Safe across
 * replicas because nothing is decided from a cached pin alone: a stale entry
 * (another replica recovered or deleted the session) sends the request to
 * the old pod, which answers 404 or refuses the connection, Envoy retries,
 * and the retry's plan is made from the store, where the newer generation
 * (or no record) wins: at worst one extra round trip, never a second
 * re-initialize. Every change made here invalidates the entry. The sliding
 * TTL in the shared store is kept alive by a background touch.
 *
 * Trade-offs, documented: while the shared store is down, cached pins keep
 * routing for up to the cache TTL. And if a pod that refused connections
 * for a moment comes back with its sessions (a network blip, not a restart)
 * after another replica recovered one of them elsewhere, this replica may
 * still send that session's requests to the old pod for up to the cache TTL.
 */
import type { ChangeResult, StateChange } from '../session-state.js';
import type { NewSession, Pin, SessionRecord, SessionStore } from './store.js';

export interface CachedStoreOptions {
  ttlMs: number;
  maxEntries?: number;
  /** How often a cache hit also refreshes the shared store's sliding TTL. */
  touchEveryMs?: number;
  now?: () => number;
  /** Told of every lookup: answered from the cache (true) or the shared store (false). */
  onLookup?: (hit: boolean) => void;
}

interface Entry {
  pin: Pin;
  until: number;
  touchedAt: number;
}

export class CachedStore implements SessionStore {
  private readonly cache = new Map<string, Entry>();
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly touchEveryMs: number;
  private readonly now: () => number;
  private readonly onLookup: (hit: boolean) => void;

  constructor(
    readonly inner: SessionStore,
    opts: CachedStoreOptions,
  ) {
    this.ttlMs = opts.ttlMs;
    this.maxEntries = opts.maxEntries ?? 100_000;
    this.touchEveryMs = opts.touchEveryMs ?? 30_000;
    this.now = opts.now ?? Date.now;
    this.onLookup = opts.onLookup ?? (() => {});
  }

  get size(): number {
    return this.cache.size;
  }

  private put(sid: string, pin: Pin, now: number, touchedAt = now): void {
    this.cache.delete(sid);
    if (this.cache.size >= this.maxEntries) {
      // Oldest first: Map keeps insertion order.
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(sid, { pin, until: now + this.ttlMs, touchedAt });
  }

  async lookup(sid: string): Promise<Pin | null> {
    const now = this.now();
    const e = this.cache.get(sid);
    if (e && e.until > now) {
      if (now - e.touchedAt >= this.touchEveryMs) {
        e.touchedAt = now;
        this.inner.lookup(sid).then(
          (fresh) => (fresh ? this.put(sid, fresh, this.now()) : this.cache.delete(sid)),
          () => {},
        );
      }
      this.onLookup(true);
      return e.pin;
    }
    this.onLookup(false);
    const pin = await this.inner.lookup(sid);
    if (pin) this.put(sid, pin, now);
    else this.cache.delete(sid);
    return pin;
  }

  async create(sid: string, s: NewSession): Promise<boolean> {
    this.cache.delete(sid);
    return this.inner.create(sid, s);
  }

  rememberUnknown(sid: string, ttlMs: number): Promise<void> {
    return this.inner.rememberUnknown(sid, ttlMs);
  }

  isRememberedUnknown(sid: string): Promise<boolean> {
    return this.inner.isRememberedUnknown(sid);
  }

  async adopt(sid: string, pod: string, path: string | null = null): Promise<boolean> {
    this.cache.delete(sid);
    return this.inner.adopt(sid, pod, path);
  }

  load(sid: string): Promise<SessionRecord | null> {
    return this.inner.load(sid);
  }

  /** The state is not cached: the pin stays valid. */
  changeState(sid: string, change: StateChange): Promise<ChangeResult | 'gone'> {
    return this.inner.changeState(sid, change);
  }

  async replacePin(sid: string, expectedGeneration: number, pod: string, bsid: string): Promise<Pin | null> {
    this.cache.delete(sid);
    const pin = await this.inner.replacePin(sid, expectedGeneration, pod, bsid);
    if (pin) this.put(sid, pin, this.now());
    return pin;
  }

  async remove(sid: string): Promise<void> {
    this.cache.delete(sid);
    await this.inner.remove(sid);
  }

  async removeIfGeneration(sid: string, expectedGeneration: number): Promise<boolean> {
    this.cache.delete(sid);
    return this.inner.removeIfGeneration(sid, expectedGeneration);
  }

  tryLock(sid: string, token: string, ttlMs: number): Promise<boolean> {
    return this.inner.tryLock(sid, token, ttlMs);
  }

  unlock(sid: string, token: string): Promise<void> {
    return this.inner.unlock(sid, token);
  }

  async connect(timeoutMs: number): Promise<void> {
    await this.inner.connect?.(timeoutMs);
  }

  ping(): Promise<void> {
    return this.inner.ping();
  }

  async close(): Promise<void> {
    this.cache.clear();
    await this.inner.close();
  }
}
