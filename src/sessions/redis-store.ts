/**
 * Session store in Redis (ioredis), shared by all mcp-pin replicas.
 *
 * Layout per client session id S (hash tag {S} keeps both keys in one slot):
 *   <prefix>{S}       hash: pod, bsid, gen, init, path, state, created, seen (sliding TTL)
 *   <prefix>{S}:lock  recovery lock: a random token, with expiry
 *   <prefix>{S}:unknown  searched for on every pod and held by none (--unknown-session-cache-ms)
 *
 * A record that is not what mcp-pin writes (another type, missing or
 * malformed fields) is dropped where it is read and reported as
 * MCP_PIN_STORE_CORRUPT (stored-record.ts); a lock without expiry is given one.
 *
 * ioredis defaults are wrong for a request path (offline queue, 20 retries,
 * no command timeout): here a command either answers within storeTimeoutMs
 * or fails with a StoreError, and nothing queues while Redis is away.
 */
import { readFileSync } from 'node:fs';
import { Cluster, Redis, type RedisOptions } from 'ioredis';
import { PinError, StoreError } from '../errors.js';
import { parseRedisUrl } from './redis-url.js';
import type { NewSession, Pin, SessionInfo, SessionInspector, SessionPage, SessionRecord, SessionStore, StoreOptions } from './store.js';
import { checkInitPath, checkPin } from './stored-record.js';
import { MAX_SUBSCRIPTION_BYTES, MAX_SUBSCRIPTIONS, decodeState, type ChangeResult, type StateChange } from '../session-state.js';

const lua = (name: string): string => readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), 'utf8');

interface ScriptCommands {
  mcppinLookup(key: string, ttlMs: number, nowMs: number, slideStepMs: number): Promise<[string | null, string | null, string | null] | null>;
  mcppinDropCorrupt(key: string, how: 'type' | 'fields', pod?: string, bsid?: string, gen?: string): Promise<number>;
  mcppinLock(key: string, token: string, ttlMs: number): Promise<number>;
  mcppinCreate(key: string, ttlMs: number, nowMs: number, pod: string, bsid: string, init: Buffer, path: string): Promise<number>;
  mcppinReplacePin(key: string, ttlMs: number, nowMs: number, gen: number, pod: string, bsid: string): Promise<number>;
  mcppinUnlock(key: string, token: string): Promise<number>;
  mcppinRemoveIfGeneration(key: string, gen: number): Promise<number>;
  mcppinAdopt(key: string, ttlMs: number, nowMs: number, pod: string, bsid: string, path: string): Promise<number>;
  mcppinChangeState(key: string, op: StateChange['op'], value: string, maxSubscriptions: number, maxBytes: number): Promise<ChangeResult | 'gone'>;
}
type ScriptedRedis = (Redis | Cluster) & ScriptCommands;

export interface RedisStoreOptions extends StoreOptions {
  url: string;
  keyPrefix: string;
  storeTimeoutMs: number;
  /** Extra ioredis options (tests); the fail-fast settings below always win. */
  redisOptions?: RedisOptions;
}

export class RedisStore implements SessionStore, SessionInspector {
  readonly redis: ScriptedRedis;
  private readonly ttlMs: number;
  private readonly prefix: string;
  private readonly timeoutMs: number;
  /** The sliding TTL moves in steps of 1% of it: a write per step, not per request. */
  private readonly slideStepMs: number;
  private readonly now: () => number;

  constructor(opts: RedisStoreOptions) {
    this.ttlMs = opts.sessionTtlMs;
    this.slideStepMs = Math.floor(opts.sessionTtlMs / 100);
    this.prefix = opts.keyPrefix;
    this.timeoutMs = opts.storeTimeoutMs;
    this.now = opts.now ?? Date.now;
    const failFast: RedisOptions = {
      ...opts.redisOptions,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: opts.storeTimeoutMs * 2,
      connectTimeout: Math.max(1000, opts.storeTimeoutMs),
      // Keep reconnecting for ever, never slower than once a second.
      retryStrategy: (times) => Math.min(50 * times, 1000),
      // Commands of a dropped connection fail rather than replay late.
      autoResendUnfulfilledCommands: false,
      // Lookups of concurrent requests issued in one tick go out in one
      // write. In the benchmark (c=64) Redis CPU per request fell from
      // 23-26 to 9-11 µs, with mcp-pin's CPU unchanged within noise. (A
      // closed loop of lookups in lockstep is slower with it: not mcp-pin's
      // traffic.)
      enableAutoPipelining: true,
    };
    const target = parseRedisUrl(opts.url);
    let redis: Redis | Cluster;
    if (target.kind === 'single') redis = new Redis(target.url, failFast);
    else if (target.kind === 'sentinel') {
      const { username, password } = target;
      redis = new Redis({
        ...failFast,
        sentinels: target.sentinels,
        name: target.name,
        username,
        password,
        sentinelRetryStrategy: (t) => Math.min(100 * t, 1000),
      });
    } else {
      const { username, password } = target;
      redis = new Cluster(target.nodes, {
        lazyConnect: true,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        maxRedirections: 4,
        clusterRetryStrategy: (times) => Math.min(100 * times, 1000),
        redisOptions: { ...failFast, username, password, lazyConnect: false },
      });
    }
    // Errors reach callers through rejected commands; the connection's own
    // error events (reconnect noise) must not crash the process.
    redis.on('error', () => {});
    redis.defineCommand('mcppinLookup', { numberOfKeys: 1, lua: lua('lookup-2') });
    redis.defineCommand('mcppinDropCorrupt', { numberOfKeys: 1, lua: lua('drop-corrupt-1') });
    redis.defineCommand('mcppinLock', { numberOfKeys: 1, lua: lua('lock-1') });
    redis.defineCommand('mcppinCreate', { numberOfKeys: 1, lua: lua('create-2') });
    redis.defineCommand('mcppinReplacePin', { numberOfKeys: 1, lua: lua('replace-pin-1') });
    redis.defineCommand('mcppinUnlock', { numberOfKeys: 1, lua: lua('unlock-1') });
    redis.defineCommand('mcppinRemoveIfGeneration', { numberOfKeys: 1, lua: lua('remove-if-generation-1') });
    redis.defineCommand('mcppinAdopt', { numberOfKeys: 1, lua: lua('adopt-2') });
    redis.defineCommand('mcppinChangeState', { numberOfKeys: 1, lua: lua('change-state-1') });
    this.redis = redis as ScriptedRedis;
  }

  /** Connects, waiting up to timeoutMs; the store keeps trying after a failure. */
  async connect(timeoutMs = 5000): Promise<void> {
    if (this.redis.status === 'ready') return;
    if (this.redis.status === 'wait') this.redis.connect().catch(() => {});
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        cleanup();
        reject(new StoreError('MCP_PIN_STORE_UNAVAILABLE', `Redis not ready after ${timeoutMs} ms`));
      }, timeoutMs);
      const onReady = (): void => {
        cleanup();
        resolve();
      };
      const cleanup = (): void => {
        clearTimeout(t);
        this.redis.off('ready', onReady);
      };
      this.redis.on('ready', onReady);
    });
  }

  private key(sid: string): string {
    return `${this.prefix}{${sid}}`;
  }

  /**
   * Runs one command within storeTimeoutMs, turning any failure into a
   * StoreError with a stable code. Our own deadline decides "timeout"
   * (ioredis' commandTimeout, set looser, only cleans up behind it).
   */
  private run<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new StoreError('MCP_PIN_STORE_TIMEOUT', `Redis ${what} took longer than ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      fn().then(
        (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        (err: unknown) => {
          clearTimeout(timer);
          // A key of another type under a session's name: Redis answered, the data is wrong.
          if (/WRONGTYPE/.test((err as Error)?.message ?? ''))
            reject(new StoreError('MCP_PIN_STORE_CORRUPT', `Redis ${what}: the key is not a session record (wrong type)`, err));
          else reject(new StoreError('MCP_PIN_STORE_UNAVAILABLE', `Redis ${what} failed (connection ${this.redis.status})`, err));
        },
      );
    });
  }

  async lookup(sid: string): Promise<Pin | null> {
    const v = await this.dropIfWrongType(sid, () => this.run('lookup', () => this.redis.mcppinLookup(this.key(sid), this.ttlMs, this.now(), this.slideStepMs)));
    if (!v) return null;
    const pin = checkPin(v[0], v[1], v[2]);
    if (!pin.ok) return this.dropCorrupt(sid, v, pin.reason);
    return pin.value;
  }

  /**
   * A record mcp-pin cannot use is removed (it can route nothing, and would
   * hold its id for ever) and reported with its own code: the caller treats
   * the session as one the store does not know, and finds it on the pods.
   */
  private async dropCorrupt(sid: string, fields: readonly (string | null)[], reason: string): Promise<never> {
    const [pod, bsid, gen] = fields.map((f) => f ?? '');
    await this.run('drop', () => this.redis.mcppinDropCorrupt(this.key(sid), 'fields', pod, bsid, gen)).catch(() => {});
    throw new StoreError('MCP_PIN_STORE_CORRUPT', `the stored record is not a session record mcp-pin wrote (${reason}): dropped`);
  }

  private async dropIfWrongType<T>(sid: string, op: () => Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (err instanceof StoreError && err.code === 'MCP_PIN_STORE_CORRUPT') {
        await this.run('drop', () => this.redis.mcppinDropCorrupt(this.key(sid), 'type')).catch(() => {});
        throw new StoreError('MCP_PIN_STORE_CORRUPT', `${err.message}: dropped`, err.cause);
      }
      throw err;
    }
  }

  async create(sid: string, s: NewSession): Promise<boolean> {
    const r = await this.run('create', () =>
      this.redis.mcppinCreate(this.key(sid), this.ttlMs, this.now(), s.pod, s.backendSessionId, s.initBody ?? Buffer.alloc(0), s.initPath ?? ''),
    );
    return r === 1;
  }

  async adopt(sid: string, pod: string, path: string | null = null): Promise<boolean> {
    const r = await this.run('adopt', () => this.redis.mcppinAdopt(this.key(sid), this.ttlMs, this.now(), pod, sid, path ?? ''));
    return r === 1;
  }

  async load(sid: string): Promise<SessionRecord | null> {
    const key = this.key(sid);
    const v = await this.dropIfWrongType(sid, () =>
      this.run('load', () => this.redis.hmgetBuffer(key, 'pod', 'bsid', 'gen', 'init', 'path', 'created', 'seen', 'state')),
    );
    const [pod, bsid, gen, init, path, created, seen, state] = v;
    if (v.every((f) => f === null) && (await this.run('load', () => this.redis.exists(key))) === 0) return null;
    const fields = [pod, bsid, gen].map((f) => (f ? f.toString() : null));
    const pin = checkPin(fields[0] ?? null, fields[1] ?? null, fields[2] ?? null);
    if (!pin.ok) return this.dropCorrupt(sid, fields, pin.reason);
    const initPath = checkInitPath(path?.toString() ?? '');
    if (!initPath.ok) return this.dropCorrupt(sid, fields, initPath.reason);
    return {
      ...pin.value,
      initBody: init && init.length > 0 ? init : null,
      initPath: initPath.value,
      state: decodeState(state?.toString()),
      createdAtMs: Number(created?.toString() ?? 0) || 0,
      lastSeenAtMs: Number(seen?.toString() ?? 0) || 0,
    };
  }

  async replacePin(sid: string, expectedGeneration: number, pod: string, bsid: string): Promise<Pin | null> {
    const r = await this.run('replacePin', () => this.redis.mcppinReplacePin(this.key(sid), this.ttlMs, this.now(), expectedGeneration, pod, bsid));
    return r > 0 ? { pod, backendSessionId: bsid, generation: r } : null;
  }

  /** One script: the change applied where the state is, so concurrent changes (two replicas) never lose one. */
  async changeState(sid: string, change: StateChange): Promise<ChangeResult | 'gone'> {
    const value = change.op === 'setLevel' ? change.level : change.uri;
    return this.run('changeState', () => this.redis.mcppinChangeState(this.key(sid), change.op, value, MAX_SUBSCRIPTIONS, MAX_SUBSCRIPTION_BYTES));
  }

  async remove(sid: string): Promise<void> {
    await this.run('remove', () => this.redis.del(this.key(sid)));
  }

  async removeIfGeneration(sid: string, expectedGeneration: number): Promise<boolean> {
    const r = await this.run('remove', () => this.redis.mcppinRemoveIfGeneration(this.key(sid), expectedGeneration));
    return r === 1;
  }

  async rememberUnknown(sid: string, ttlMs: number): Promise<void> {
    await this.run('remember_unknown', () => this.redis.set(`${this.key(sid)}:unknown`, '1', 'PX', ttlMs));
  }

  async isRememberedUnknown(sid: string): Promise<boolean> {
    return (await this.run('is_unknown', () => this.redis.exists(`${this.key(sid)}:unknown`))) === 1;
  }

  async tryLock(sid: string, token: string, ttlMs: number): Promise<boolean> {
    const r = await this.run('lock', () => this.redis.mcppinLock(`${this.key(sid)}:lock`, token, ttlMs));
    return r === 1;
  }

  async unlock(sid: string, token: string): Promise<void> {
    await this.run('unlock', () => this.redis.mcppinUnlock(`${this.key(sid)}:lock`, token));
  }

  async inspect(sid: string): Promise<SessionInfo | null> {
    return this.infoOf(sid);
  }

  /**
   * SCAN over every master (a Cluster's in address order, so a cursor means
   * the same on the next call): "<node index>:<SCAN cursor>". Lock keys
   * ("...}:lock") never match the pattern.
   */
  async list(opts: { pod?: string; cursor?: string; limit: number }): Promise<SessionPage> {
    const nodes: Redis[] =
      this.redis instanceof Cluster ? this.redis.nodes('master').sort((a, b) => nodeName(a).localeCompare(nodeName(b))) : [this.redis as Redis];
    let [node, cursor] = parseCursor(opts.cursor);
    const match = `${this.prefix.replace(/[*?[\]\\]/g, '\\$&')}{*}`;
    const sessions: SessionInfo[] = [];
    for (let at = nodes[node]; at && sessions.length < opts.limit; at = nodes[node]) {
      const scanning = at;
      const [next, keys] = await this.run('scan', () => scanning.scan(cursor, 'MATCH', match, 'COUNT', Math.max(opts.limit, 100)));
      const infos = await Promise.all(keys.map((k) => this.infoOf(k.slice(this.prefix.length + 1, -1))));
      for (const info of infos) if (info && (opts.pod === undefined || info.pod === opts.pod)) sessions.push(info);
      if (next === '0') [node, cursor] = [node + 1, '0'];
      else cursor = next;
    }
    return { sessions, cursor: node < nodes.length ? `${node}:${cursor}` : null };
  }

  private async infoOf(sid: string): Promise<SessionInfo | null> {
    const key = this.key(sid);
    const [fields, initLength, ttl] = await this.run('inspect', () =>
      Promise.all([this.redis.hmget(key, 'pod', 'bsid', 'gen', 'created', 'seen'), this.redis.hstrlen(key, 'init'), this.redis.pttl(key)]),
    );
    const [pod, bsid, gen, created, seen] = fields;
    if (!pod || !bsid || !gen) return null;
    return {
      clientSessionId: sid,
      pod,
      backendSessionId: bsid,
      generation: Number(gen),
      createdAtMs: Number(created ?? 0),
      lastSeenAtMs: Number(seen ?? 0),
      ttlMs: ttl >= 0 ? ttl : null,
      recoverable: initLength > 0,
    };
  }

  async ping(): Promise<void> {
    await this.run('ping', () => this.redis.ping());
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

const nodeName = (r: Redis): string => `${r.options.host ?? ''}:${r.options.port ?? 0}`;

/** "<node>:<cursor>" from list(); a missing cursor starts at the beginning. */
function parseCursor(c: string | undefined): [number, string] {
  if (c === undefined) return [0, '0'];
  const [, node, cursor] = /^(\d+):(\d+)$/.exec(c) ?? [];
  if (node === undefined || cursor === undefined) throw new PinError('MCP_PIN_BAD_CURSOR', `"${c}" is not a cursor this store returned`);
  return [Number(node), cursor];
}
