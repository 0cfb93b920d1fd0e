import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import { MemoryStore } from './memory-store.js';
import { RedisStore } from './redis-store.js';
import { CachedStore } from './cached-store.js';
import type { SessionStore } from './store.js';

export type { Pin, NewSession, SessionRecord, SessionStore } from './store.js';
export { MemoryStore } from './memory-store.js';
export { RedisStore } from './redis-store.js';
export { CachedStore } from './cached-store.js';

export function createStore(cfg: Pick<Config, 'storeUrl' | 'keyPrefix' | 'sessionTtlMs' | 'storeTimeoutMs' | 'pinCacheMs' | 'memoryStoreMaxSessions'>, metrics?: Pick<Metrics, 'pinCache'>): SessionStore {
  if (cfg.storeUrl === 'memory:') return new MemoryStore({ sessionTtlMs: cfg.sessionTtlMs, maxEntries: cfg.memoryStoreMaxSessions });
  const redis = new RedisStore({
    url: cfg.storeUrl,
    keyPrefix: cfg.keyPrefix,
    sessionTtlMs: cfg.sessionTtlMs,
    storeTimeoutMs: cfg.storeTimeoutMs,
  });
  return cfg.pinCacheMs > 0 ? new CachedStore(redis, { ttlMs: cfg.pinCacheMs, ...(metrics ? { onLookup: (hit: boolean) => metrics.pinCache(hit) } : {}) }) : redis;
}
