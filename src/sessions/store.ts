import type { ChangeResult, SessionState, StateChange } from '../session-state.js';

/**
 * The session store: client session id -> where that session lives.
 * Two implementations pass the same contract tests (test/integration/store-contract.test.ts):
 * RedisStore (shared by replicas) and MemoryStore (one replica only).
 */

/** What a follow-up request needs: where to send it and under which backend id. */
export interface Pin {
  /** Pod address "ip:port", as Envoy reported connecting to it. */
  pod: string;
  /** The session id the pod knows (visible ASCII, as pods issue them); differs from the client's after a recovery. */
  backendSessionId: string;
  /** Bumped by every replacePin: guards recoveries against each other. */
  generation: number;
}

export interface NewSession {
  pod: string;
  backendSessionId: string;
  /** The raw initialize request, sent again to re-initialize on recovery; null when too large to keep. */
  initBody: Buffer | null;
  /** The path the session was initialized on: where recovery pings and re-initializes (a request's own path may be wrong). */
  initPath?: string | null;
}

export interface SessionRecord extends Pin {
  initBody: Buffer | null;
  /** What the client set in its session (subscriptions, log level): replayed after a re-initialize. */
  state: SessionState;
  /** The session's MCP path: where it was initialized, or found when adopted; null for records made before it was stored. */
  initPath: string | null;
  createdAtMs: number;
  lastSeenAtMs: number;
}

export interface SessionStore {
  /** The pin, or null. Extends the sliding TTL and records last-seen. */
  lookup(clientSessionId: string): Promise<Pin | null>;
  /**
   * Records a new session (generation 1) only if nothing is recorded under
   * that id; false when the id is taken. A new session never overwrites
   * another's pin.
   */
  create(clientSessionId: string, session: NewSession): Promise<boolean>;
  /**
   * Records a session only if the id is unknown (after store data loss, when
   * a pod proved it holds the session), with the MCP path it was found on.
   * Returns true when adopted.
   */
  adopt(clientSessionId: string, pod: string, path?: string | null): Promise<boolean>;
  /** Full record with the init body (for recovery), or null. Does not slide the TTL. */
  load(clientSessionId: string): Promise<SessionRecord | null>;
  /**
   * Moves the session to a new pod/backend id if its generation is still
   * `expectedGeneration`. Returns the new pin, or null when the record is gone
   * or another recovery got there first (compare with a fresh lookup).
   */
  replacePin(clientSessionId: string, expectedGeneration: number, pod: string, backendSessionId: string): Promise<Pin | null>;
  /**
   * Applies one change to the session's state (session-state.ts, its bounds
   * included), atomically against concurrent changes; 'gone' when the
   * record is not there. Keeps the record's TTL.
   */
  changeState(clientSessionId: string, change: StateChange): Promise<ChangeResult | 'gone'>;
  remove(clientSessionId: string): Promise<void>;
  /** Removes the session only while it is still at `expectedGeneration`. */
  removeIfGeneration(clientSessionId: string, expectedGeneration: number): Promise<boolean>;
  /**
   * Remembers, for ttlMs, that a search for this id asked every pod and none
   * held it: every replica then answers a repeat itself (one pass over the
   * pods per made-up id, whatever the replica count). The id is the
   * exchange's `unknownKey`: the session id and the path it was searched at.
   */
  rememberUnknown(searchedId: string, ttlMs: number): Promise<void>;
  /** Whether rememberUnknown was told of this id less than its ttlMs ago. */
  isRememberedUnknown(searchedId: string): Promise<boolean>;
  /** Recovery lock: true when taken by `token`; expires by itself after ttlMs. */
  tryLock(clientSessionId: string, token: string, ttlMs: number): Promise<boolean>;
  /** Releases the lock only if `token` still holds it. */
  unlock(clientSessionId: string, token: string): Promise<void>;
  /** Stores that hold a connection open it here, waiting up to timeoutMs (they keep trying after). */
  connect?(timeoutMs: number): Promise<void>;
  /** Resolves when the store answers; rejects with a StoreError otherwise. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** One session as an operator sees it (mcp-pin sessions get/list). */
export interface SessionInfo extends Pin {
  clientSessionId: string;
  createdAtMs: number;
  lastSeenAtMs: number;
  /** Time left before the record expires unless used; null when the store cannot tell. */
  ttlMs: number | null;
  /** Whether the initialize body is kept (the session can be recovered). */
  recoverable: boolean;
}

/** A page of sessions; cursor is null on the last page. */
export interface SessionPage {
  sessions: SessionInfo[];
  cursor: string | null;
}

/**
 * Reading the store as an operator does: not on any request's path, so
 * apart from SessionStore (whose every method a request may call).
 */
export interface SessionInspector {
  /** The session's record and TTL, or null. Does not slide the TTL. */
  inspect(clientSessionId: string): Promise<SessionInfo | null>;
  /**
   * Sessions in no fixed order, optionally only those pinned to `pod`; a page
   * stops once it holds `limit` sessions (Redis: it may hold a few more, the
   * rest of one SCAN batch). Pass the returned cursor for the next page.
   */
  list(opts: { pod?: string; cursor?: string; limit: number }): Promise<SessionPage>;
}

export interface StoreOptions {
  sessionTtlMs: number;
  now?: () => number;
}

/** The longest initialize path stored with a record; a longer one is not kept (recovery then uses the request's path). */
export const MAX_INIT_PATH_LENGTH = 2048;
