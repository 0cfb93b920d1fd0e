/**
 * Session ids searched for and not found (every pod that was asked answered
 * 404), kept for --unknown-session-cache-ms: a repeat is answered 404 by
 * mcp-pin and reaches no pod. This replica's own memory, in front of the
 * store's (SessionStore.rememberUnknown), which every replica shares. The
 * store's record is still asked first, so a session recorded meanwhile (an
 * initialize, an adoption) wins. Bounded: the oldest entries go first.
 */
import { ExpiringIds } from '../expiring-ids.js';
import { pathOnly } from '../session-path.js';
import { MAX_INIT_PATH_LENGTH } from '../sessions/store.js';

export class RecentlyUnknown {
  private readonly ids: ExpiringIds;

  constructor(
    readonly ttlMs: number,
    maxEntries = 10_000,
    now: () => number = Date.now,
  ) {
    this.ids = new ExpiringIds(maxEntries, now);
  }

  get size(): number {
    return this.ids.size;
  }

  remember(sid: string): void {
    this.ids.remember(sid, this.ttlMs);
  }

  has(sid: string): boolean {
    return this.ids.has(sid);
  }
}

/**
 * What a search that ended in 404 is remembered under: the session id and
 * the path it was searched at (its query left out). A pod's 404 at a wrong
 * path says nothing about the session, so a client's request to a wrong
 * path (after the store lost the session) must not make its session
 * unknown at its real one. A path too long to keep is not remembered.
 */
export function unknownKey(sid: string, path: string): string | null {
  const bare = pathOnly(path);
  return bare.length <= MAX_INIT_PATH_LENGTH ? `${sid} ${bare}` : null;
}
