/**
 * Ids remembered until a time each, bounded: past maxEntries the oldest
 * remembered goes first. A neutral helper (no layer): the ext_proc layer's
 * memory of unknown session ids and the memory store's share it.
 */
export class ExpiringIds {
  private readonly until = new Map<string, number>();

  constructor(
    private readonly maxEntries: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.until.size;
  }

  remember(id: string, ttlMs: number): void {
    if (ttlMs <= 0) return;
    this.until.delete(id);
    if (this.until.size >= this.maxEntries) {
      const oldest = this.until.keys().next().value;
      if (oldest !== undefined) this.until.delete(oldest);
    }
    this.until.set(id, this.now() + ttlMs);
  }

  has(id: string): boolean {
    const u = this.until.get(id);
    if (u === undefined) return false;
    if (u > this.now()) return true;
    this.until.delete(id);
    return false;
  }

  clear(): void {
    this.until.clear();
  }
}
