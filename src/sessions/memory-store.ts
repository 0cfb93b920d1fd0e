/**
 * In-process session store: the default when no Redis URL is given. Honours
 * the same TTL and compare-and-set rules as RedisStore, but lives and dies
 * with this process and is not shared: run a single replica with it.
 *
 * Bounded: past maxEntries live sessions a new one is refused
 * (MCP_PIN_STORE_FULL; its initialize gets 503) after expired ones are swept.
 * Live sessions are never evicted to make room: that would break a client
 * that did nothing wrong.
 */
import { StoreError } from '../errors.js';
import { ExpiringIds } from '../expiring-ids.js';
import type { NewSession, Pin, SessionInfo, SessionInspector, SessionPage, SessionRecord, SessionStore, StoreOptions } from './store.js';
import { applyChange, EMPTY_STATE, type ChangeResult, type StateChange } from '../session-state.js';

export interface MemoryStoreOptions extends StoreOptions {
  /** Most sessions held at once (--memory-store-max-sessions). */
  maxEntries?: number;
  /** How often expired sessions and locks are dropped (30 s; tests shorten it). */
  sweepEveryMs?: number;
}

interface Entry extends SessionRecord {
  expiresAtMs: number;
}

const SWEEP_INTERVAL_MS = 30_000;
/** Made-up ids remembered at once (rememberUnknown); past it the oldest are forgotten. */
const MAX_REMEMBERED_UNKNOWN = 10_000;

export class MemoryStore implements SessionStore, SessionInspector {
  private readonly sessions = new Map<string, Entry>();
  private readonly locks = new Map<string, { token: string; expiresAtMs: number }>();
  /** Ids no pod held (rememberUnknown), each until its time. */
  private readonly unknown: ExpiringIds;
  private readonly ttlMs: number;
  private readonly now: () => number;
  private readonly sweeper: NodeJS.Timeout;
  private readonly maxEntries: number;
  private lastFullSweepMs = -Infinity;

  constructor(opts: MemoryStoreOptions) {
    this.ttlMs = opts.sessionTtlMs;
    this.maxEntries = opts.maxEntries ?? 1_000_000;
    this.now = opts.now ?? Date.now;
    this.unknown = new ExpiringIds(MAX_REMEMBERED_UNKNOWN, this.now);
    this.sweeper = setInterval(() => this.sweep(), opts.sweepEveryMs ?? SWEEP_INTERVAL_MS).unref();
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Recovery locks held in memory, expired ones not yet swept included (what they cost). */
  get lockCount(): number {
    return this.locks.size;
  }

  private live(sid: string): Entry | null {
    const e = this.sessions.get(sid);
    if (!e) return null;
    if (e.expiresAtMs <= this.now()) {
      this.sessions.delete(sid);
      return null;
    }
    return e;
  }

  async inspect(sid: string): Promise<SessionInfo | null> {
    const e = this.live(sid);
    return e ? this.info(sid, e) : null;
  }

  /** In session id order; the cursor is the last id of the page (robust to removals between pages). */
  async list(opts: { pod?: string; cursor?: string; limit: number }): Promise<SessionPage> {
    const now = this.now();
    const ids = [...this.sessions.keys()].filter((k) => opts.cursor === undefined || k > opts.cursor).sort();
    const sessions: SessionInfo[] = [];
    for (const [i, sid] of ids.entries()) {
      const e = this.sessions.get(sid);
      if (!e || e.expiresAtMs <= now || (opts.pod !== undefined && e.pod !== opts.pod)) continue;
      sessions.push(this.info(sid, e));
      if (sessions.length >= opts.limit) return { sessions, cursor: i < ids.length - 1 ? sid : null };
    }
    return { sessions, cursor: null };
  }

  private info(sid: string, e: Entry): SessionInfo {
    return {
      clientSessionId: sid,
      pod: e.pod,
      backendSessionId: e.backendSessionId,
      generation: e.generation,
      createdAtMs: e.createdAtMs,
      lastSeenAtMs: e.lastSeenAtMs,
      ttlMs: Math.max(0, e.expiresAtMs - this.now()),
      recoverable: e.initBody !== null,
    };
  }

  private sweep(): void {
    const now = this.now();
    for (const [k, e] of this.sessions) if (e.expiresAtMs <= now) this.sessions.delete(k);
    for (const [k, l] of this.locks) if (l.expiresAtMs <= now) this.locks.delete(k);
  }

  async lookup(sid: string): Promise<Pin | null> {
    const e = this.live(sid);
    if (!e) return null;
    const now = this.now();
    e.lastSeenAtMs = now;
    e.expiresAtMs = now + this.ttlMs;
    return { pod: e.pod, backendSessionId: e.backendSessionId, generation: e.generation };
  }

  async create(sid: string, s: NewSession): Promise<boolean> {
    const now = this.now();
    if (this.live(sid)) return false;
    if (this.sessions.size >= this.maxEntries) {
      // A sweep walks every session: at most one a second while full, so
      // refused initializes cost no more than that.
      if (now - this.lastFullSweepMs >= 1000) {
        this.lastFullSweepMs = now;
        this.sweep();
      }
      if (this.sessions.size >= this.maxEntries)
        throw new StoreError('MCP_PIN_STORE_FULL', `memory store holds ${this.maxEntries} sessions (--memory-store-max-sessions)`);
    }
    this.sessions.set(sid, {
      pod: s.pod,
      backendSessionId: s.backendSessionId,
      generation: 1,
      initBody: s.initBody ? Buffer.from(s.initBody) : null,
      initPath: s.initPath ?? null,
      state: EMPTY_STATE,
      createdAtMs: now,
      lastSeenAtMs: now,
      expiresAtMs: now + this.ttlMs,
    });
    return true;
  }

  async adopt(sid: string, pod: string, path: string | null = null): Promise<boolean> {
    return this.create(sid, { pod, backendSessionId: sid, initBody: null, initPath: path });
  }

  async load(sid: string): Promise<SessionRecord | null> {
    const e = this.live(sid);
    if (!e) return null;
    const { expiresAtMs: _, ...record } = e;
    return { ...record };
  }

  async replacePin(sid: string, expectedGeneration: number, pod: string, bsid: string): Promise<Pin | null> {
    const e = this.live(sid);
    if (!e || e.generation !== expectedGeneration) return null;
    const now = this.now();
    e.pod = pod;
    e.backendSessionId = bsid;
    e.generation += 1;
    e.lastSeenAtMs = now;
    e.expiresAtMs = now + this.ttlMs;
    return { pod, backendSessionId: bsid, generation: e.generation };
  }

  async changeState(sid: string, change: StateChange): Promise<ChangeResult | 'gone'> {
    const e = this.live(sid);
    if (!e) return 'gone';
    const { state, result } = applyChange(e.state, change);
    e.state = state;
    return result;
  }

  async remove(sid: string): Promise<void> {
    this.sessions.delete(sid);
  }

  async removeIfGeneration(sid: string, expectedGeneration: number): Promise<boolean> {
    const e = this.live(sid);
    if (!e || e.generation !== expectedGeneration) return false;
    this.sessions.delete(sid);
    return true;
  }

  async rememberUnknown(sid: string, ttlMs: number): Promise<void> {
    this.unknown.remember(sid, ttlMs);
  }

  async isRememberedUnknown(sid: string): Promise<boolean> {
    return this.unknown.has(sid);
  }

  async tryLock(sid: string, token: string, ttlMs: number): Promise<boolean> {
    const l = this.locks.get(sid);
    if (l && l.expiresAtMs > this.now()) return false;
    this.locks.set(sid, { token, expiresAtMs: this.now() + ttlMs });
    return true;
  }

  async unlock(sid: string, token: string): Promise<void> {
    if (this.locks.get(sid)?.token === token) this.locks.delete(sid);
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    this.sessions.clear();
    this.locks.clear();
    this.unknown.clear();
  }
}
