/**
 * The state a client sets in its session on the server, which a recovery
 * must carry to the new pod: its resource subscriptions and its log level.
 * Kept as that state (not as a log of requests): a subscribe cancelled by an
 * unsubscribe is gone, the last level wins, and a recovery replays the
 * level, then each subscription.
 *
 * Which methods set per-session server state, in the revisions the SDKs
 * speak (2025-03-26, 2025-06-18, 2025-11-25), and why each is in or out:
 * - resources/subscribe, resources/unsubscribe: in (the server keeps the
 *   subscription per session and sends notifications/resources/updated).
 * - logging/setLevel: in (the server filters notifications/message per session).
 * - initialize, notifications/initialized: kept with the record already.
 * - tools/call, prompts/get, resources/read, completion/complete, ping,
 *   list methods: out (no per-session state the protocol defines; what a
 *   server application keeps in memory is its own and cannot be rebuilt).
 * - notifications/roots/list_changed, notifications/cancelled,
 *   notifications/progress: out (the client's own state, or about one request).
 * - tasks/* (2025-11-25): out (a task runs on the pod that died; replaying
 *   its creation would run it again).
 *
 * No dependency on other modules: ext_proc, sessions and recovery all use it.
 */

export const STATE_METHODS = ['resources/subscribe', 'resources/unsubscribe', 'logging/setLevel'] as const;
export type StateMethod = (typeof STATE_METHODS)[number];

/** RFC 5424 levels, as MCP names them. */
export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'] as const;

/** At most this many subscriptions per session are kept; more are not (counted, logged). */
export const MAX_SUBSCRIPTIONS = 128;
/** The longest resource URI kept. */
export const MAX_URI_BYTES = 2048;
/** The subscribed URIs of one session, all together, are kept up to this many bytes. */
export const MAX_SUBSCRIPTION_BYTES = 64 * 1024;

export interface SessionState {
  /** The level of the last logging/setLevel the pod accepted; null before any. */
  level: string | null;
  /** Subscribed resource URIs, in the order they were subscribed. */
  subscriptions: string[];
}

export const EMPTY_STATE: SessionState = Object.freeze({ level: null, subscriptions: Object.freeze([]) as unknown as string[] });

export type StateChange = { op: 'subscribe'; uri: string } | { op: 'unsubscribe'; uri: string } | { op: 'setLevel'; level: string };

/** kept: the state holds it; unchanged: it already did; over_limit: not kept (bounds above). */
export type ChangeResult = 'kept' | 'unchanged' | 'over_limit';

/** The state with one change applied, within the bounds (the memory store's rule; sessions/lua/change-state-1.lua is the same rule in Redis). */
export function applyChange(state: SessionState, change: StateChange): { state: SessionState; result: ChangeResult } {
  switch (change.op) {
    case 'setLevel':
      return state.level === change.level ? { state, result: 'unchanged' } : { state: { ...state, level: change.level }, result: 'kept' };
    case 'unsubscribe': {
      if (!state.subscriptions.includes(change.uri)) return { state, result: 'unchanged' };
      return { state: { ...state, subscriptions: state.subscriptions.filter((u) => u !== change.uri) }, result: 'kept' };
    }
    case 'subscribe': {
      if (state.subscriptions.includes(change.uri)) return { state, result: 'unchanged' };
      const next = { ...state, subscriptions: [...state.subscriptions, change.uri] };
      const bytes = next.subscriptions.reduce((n, u) => n + Buffer.byteLength(u), 0);
      if (next.subscriptions.length > MAX_SUBSCRIPTIONS || bytes > MAX_SUBSCRIPTION_BYTES) return { state, result: 'over_limit' };
      return { state: next, result: 'kept' };
    }
  }
}

/** The stored form (JSON), or null for a state with nothing in it. */
export function encodeState(state: SessionState): string | null {
  return state.level === null && state.subscriptions.length === 0 ? null : JSON.stringify({ l: state.level, s: state.subscriptions });
}

/** The state a stored value holds; anything unusable reads as none (a bad state never costs the session). */
export function decodeState(raw: string | null | undefined): SessionState {
  if (!raw) return EMPTY_STATE;
  try {
    const v = JSON.parse(raw) as { l?: unknown; s?: unknown };
    const level = typeof v.l === 'string' && (LOG_LEVELS as readonly string[]).includes(v.l) ? v.l : null;
    const subscriptions = Array.isArray(v.s) ? v.s.filter((u): u is string => typeof u === 'string' && u.length > 0).slice(0, MAX_SUBSCRIPTIONS) : [];
    return { level, subscriptions };
  } catch {
    return EMPTY_STATE;
  }
}

/** A state-setting JSON-RPC request: its id and the change it asks for; undefined for anything else (or a malformed one). */
export function parseStateRequest(body: Buffer): { id: string | number; change: StateChange } | undefined {
  let msg: { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: { uri?: unknown; level?: unknown } };
  try {
    msg = JSON.parse(body.toString('utf8')) as typeof msg;
  } catch {
    return undefined;
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return undefined;
  const id = msg.id;
  if (typeof id !== 'string' && typeof id !== 'number') return undefined;
  const params = msg.params ?? {};
  if (msg.method === 'logging/setLevel') {
    return typeof params.level === 'string' && (LOG_LEVELS as readonly string[]).includes(params.level)
      ? { id, change: { op: 'setLevel', level: params.level } }
      : undefined;
  }
  if (msg.method === 'resources/subscribe' || msg.method === 'resources/unsubscribe') {
    const uri = params.uri;
    if (typeof uri !== 'string' || uri.length === 0 || Buffer.byteLength(uri) > MAX_URI_BYTES) return undefined;
    return { id, change: { op: msg.method === 'resources/subscribe' ? 'subscribe' : 'unsubscribe', uri } };
  }
  return undefined;
}

/** The changes that take a pod from `from` to `to`: the level first (it shapes what follows), then subscriptions left, then new ones. */
export function changesBetween(from: SessionState, to: SessionState): StateChange[] {
  return [
    ...(to.level !== null && to.level !== from.level ? [{ op: 'setLevel' as const, level: to.level }] : []),
    ...from.subscriptions.filter((u) => !to.subscriptions.includes(u)).map((uri) => ({ op: 'unsubscribe' as const, uri })),
    ...to.subscriptions.filter((u) => !from.subscriptions.includes(u)).map((uri) => ({ op: 'subscribe' as const, uri })),
  ];
}

/** The JSON-RPC request that makes a change. */
export function requestFor(change: StateChange): { method: StateMethod; params: Record<string, string> } {
  switch (change.op) {
    case 'setLevel':
      return { method: 'logging/setLevel', params: { level: change.level } };
    case 'subscribe':
      return { method: 'resources/subscribe', params: { uri: change.uri } };
    case 'unsubscribe':
      return { method: 'resources/unsubscribe', params: { uri: change.uri } };
  }
}

/** The requests that rebuild `state` on a new pod, in order: the level first, then each subscription. */
export function replayRequests(state: SessionState): { method: StateMethod; params: Record<string, string> }[] {
  return changesBetween(EMPTY_STATE, state).map(requestFor);
}

/**
 * What a pod's answer to request `id` says, from its body (JSON, or the SSE
 * stream a POST may be answered with): 'accepted' for a result, 'refused'
 * for a JSON-RPC error, undefined when the answer is not in it.
 */
export function answerTo(id: string | number, body: Buffer, contentType: string | undefined): 'accepted' | 'refused' | undefined {
  const messages: unknown[] = [];
  const text = body.toString('utf8');
  if (contentType?.toLowerCase().includes('text/event-stream')) {
    // Each event's data lines, joined (the SDKs send one JSON-RPC message per event).
    for (const event of text.split(/\r?\n\r?\n/)) {
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data) messages.push(parseOrUndefined(data));
    }
  } else {
    messages.push(parseOrUndefined(text));
  }
  for (const m of messages.flatMap((x) => (Array.isArray(x) ? x : [x]))) {
    if (typeof m !== 'object' || m === null) continue;
    const r = m as { id?: unknown; result?: unknown; error?: unknown };
    if (r.id !== id) continue;
    if (r.error !== undefined) return 'refused';
    if (r.result !== undefined) return 'accepted';
  }
  return undefined;
}

function parseOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
