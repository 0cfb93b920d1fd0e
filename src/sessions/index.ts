import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';
import { CachedStore } from './cached-store.js';
import type { SessionStore } from './store.js';
import { TimedStore } from './timed-store.js';

export type { Pin, NewSession, SessionRecord, SessionStore } from './store.js';
export { MemoryStore } from './memory-store.js';
export { RedisStore } from './redis-store.js';
export { CachedStore } from './cached-store.js';
export { TimedStore, STORE_OPS, type StoreOp } from './timed-store.js';

/**
 * The store a config names. Redis: timed (every call that reaches Redis,
 * mcp_pin_store_seconds), under the pin cache (whose hits are only counted).
 * The in-process memory store is not timed: a timer costs more than its calls.
 */
export function createStore(
  cfg: Pick<Config, 'storeUrl' | 'keyPrefix' | 'sessionTtlMs' | 'storeTimeoutMs' | 'pinCacheMs' | 'memoryStoreMaxSessions'>,
  metrics?: Pick<Metrics, 'pinCache' | 'storeCall'>,
): SessionStore {
  if (cfg.storeUrl === 'memory:') return new MemoryStore({ sessionTtlMs: cfg.sessionTtlMs, maxEntries: cfg.memoryStoreMaxSessions });
  const redis = new RedisStore({
    url: cfg.storeUrl,
    keyPrefix: cfg.keyPrefix,
    sessionTtlMs: cfg.sessionTtlMs,
    storeTimeoutMs: cfg.storeTimeoutMs,
  });
  const shared = metrics ? new TimedStore(redis, (op, seconds) => metrics.storeCall(op, seconds)) : redis;
  return cfg.pinCacheMs > 0
    ? new CachedStore(shared, { ttlMs: cfg.pinCacheMs, ...(metrics ? { onLookup: (hit: boolean) => metrics.pinCache(hit) } : {}) })
    : shared;
}
