/**
 * Session ids searched for and not found (every pod that was asked answered
 * 404), kept for --unknown-session-cache-ms: a repeat is answered 404 by
 * mcp-pin and reaches no pod. This replica's own memory, in front of the
 * store's (SessionStore.rememberUnknown), which every replica shares. The
 * store's record is still asked first, so a session recorded meanwhile (an
 * initialize, an adoption) wins. Bounded: the oldest entries go first.
 */
export class RecentlyUnknown {
  private readonly until = new Map<string, number>();

  constructor(
    readonly ttlMs: number,
    private readonly maxEntries = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.until.size;
  }

  remember(sid: string): void {
    if (this.ttlMs <= 0) return;
    this.until.delete(sid);
    if (this.until.size >= this.maxEntries) {
      const oldest = this.until.keys().next().value;
      if (oldest !== undefined) this.until.delete(oldest);
    }
    this.until.set(sid, this.now() + this.ttlMs);
  }

  has(sid: string): boolean {
    const u = this.until.get(sid);
    if (u === undefined) return false;
    if (u > this.now()) return true;
    this.until.delete(sid);
    return false;
  }
}
