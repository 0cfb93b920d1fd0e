/**
 * `mcp-pin sessions get <id> | list [--pod ip:port] | drop <id>`: the
 * session store as an operator sees it, read with the same store settings
 * as the server (flags, MCP_PIN_* environment, --config). Bounded: list
 * pages with a cursor (SCAN on Redis, over every master of a Cluster).
 * Exit codes: 0 done, 1 no such session, 2 usage or configuration, 3 store
 * unreachable.
 */
import { parseArgs } from 'node:util';
import { OPTIONS, loadConfig, type Config } from '../config.js';
import { InvalidConfigError, PinError } from '../errors.js';
import { parsePodAddress } from '../pod-address.js';
import { RedisStore } from '../sessions/redis-store.js';
import type { SessionInfo, SessionInspector, SessionStore } from '../sessions/store.js';

export const SESSIONS_USAGE = `usage: mcp-pin sessions get <session id> [--json] [store flags]
       mcp-pin sessions list [--pod ip:port] [--limit n] [--cursor c] [--json] [store flags]
       mcp-pin sessions drop <session id> [--force] [store flags]

Store flags are the server's: --store-url, --key-prefix, --config, ... (or
MCP_PIN_* variables). list prints up to --limit sessions (default 100) and,
when more remain, the --cursor for the next page. drop removes the pin: the
next request of that session searches the pods and is pinned again where a
pod still holds it (to end the session itself, send DELETE through Envoy).
It refuses (exit 4, saying why) a session it would harm: a recovered one
(its pod knows it by another id, so no search can find it again: dropping
it ends it) or one whose initialize mcp-pin keeps (found again, it could no
longer be recovered); --force drops it all the same.
Exit codes: 0 done, 1 no such session, 2 usage, 3 store unreachable, 4 refused.`;

/** A store the command can read: the server's store plus inspection. */
export type InspectableStore = SessionStore & SessionInspector;

export interface CommandIo {
  out(line: string): void;
  err(line: string): void;
  now?: () => number;
  /** Opens the store the settings name (tests pass their own). */
  openStore?: (cfg: ReturnType<typeof loadConfig>) => InspectableStore;
}

const OWN = {
  pod: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
  json: { type: 'boolean' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runSessionsCommand(argv: string[], env: NodeJS.ProcessEnv, io: CommandIo): Promise<number> {
  // Our own flags and the positionals; everything else goes to the server's config parser.
  const serverFlags = Object.fromEntries(Object.values(OPTIONS).map((o) => [o.flag, { type: 'string' as const }]));
  const { values, positionals, tokens } = parseArgs({ args: argv, options: { ...serverFlags, ...OWN }, strict: false, allowPositionals: true, tokens: true });
  if (values.help === true) {
    io.out(SESSIONS_USAGE);
    return 0;
  }
  const rest: string[] = [];
  for (const t of tokens) {
    if (t.kind === 'option' && !(t.name in OWN)) rest.push(t.value === undefined ? t.rawName : `${t.rawName}=${t.value}`);
  }
  const [verb, id, ...extra] = positionals;
  const usage = (why: string): number => {
    io.err(`mcp-pin sessions: ${why}\n${SESSIONS_USAGE}`);
    return 2;
  };
  if (verb !== 'get' && verb !== 'list' && verb !== 'drop')
    return usage(verb === undefined ? 'which command: get, list or drop?' : `unknown command "${verb}"`);
  if ((verb === 'list') !== (id === undefined) || extra.length > 0) return usage(verb === 'list' ? 'list takes no session id' : `${verb} needs one session id`);
  const sid = id ?? '';
  const limit = values.limit === undefined ? 100 : Number(values.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) return usage(`--limit ${String(values.limit)}: a whole number from 1 to 10000`);
  // Pods are stored as parsePodAddress writes them: the same form, or no match.
  const pod = values.pod === undefined ? undefined : parsePodAddress(String(values.pod));
  if (pod === null) return usage(`--pod ${String(values.pod)}: expected ip:port, as Envoy reported the pod`);

  let cfg: Config;
  try {
    cfg = loadConfig(rest, env);
  } catch (err) {
    if (!(err instanceof InvalidConfigError)) throw err;
    io.err(`mcp-pin sessions: ${err.problems.join('\n  ')}`);
    return 2;
  }
  if (cfg.storeUrl === 'memory:' && !io.openStore) {
    io.err(
      'mcp-pin sessions: the store is memory: (the default), which lives inside the running ' +
        'mcp-pin process; give the shared store the replicas use (--store-url redis://..., ' +
        'MCP_PIN_STORE_URL or --config)',
    );
    return 2;
  }
  const store =
    io.openStore?.(cfg) ??
    new RedisStore({ url: cfg.storeUrl, keyPrefix: cfg.keyPrefix, sessionTtlMs: cfg.sessionTtlMs, storeTimeoutMs: Math.max(cfg.storeTimeoutMs, 5000) });
  const now = io.now ?? Date.now;
  try {
    await store.connect?.(5000);
    if (verb === 'get') {
      const info = await store.inspect(sid);
      if (!info) return notFound(io, sid);
      io.out(values.json === true ? JSON.stringify(info) : describe(info, now()));
      return 0;
    }
    if (verb === 'drop') {
      const info = await store.inspect(sid);
      if (!info) return notFound(io, sid);
      const harm =
        info.backendSessionId !== info.clientSessionId
          ? `it was recovered: its pod (${info.pod}) knows it as ${info.backendSessionId}, so no ` +
            `search by ${sid} can find it again, and dropping it ends the session`
          : info.recoverable
            ? 'its pod would be found again, but mcp-pin would no longer hold its initialize: after that the session could not be recovered if its pod went'
            : undefined;
      if (harm && values.force !== true) {
        io.err(`mcp-pin sessions: not dropped: ${harm}. To end the session, send DELETE with its id through Envoy; --force drops it all the same`);
        return 4;
      }
      await store.remove(sid);
      io.out(
        `dropped ${sid} (was pinned to ${info.pod}, generation ${info.generation}); replicas' ` +
          `pin caches forget it within --pin-cache-ms (${cfg.pinCacheMs} ms)`,
      );
      return 0;
    }
    const page = await store.list({ limit, ...(pod !== undefined ? { pod } : {}), ...(values.cursor !== undefined ? { cursor: String(values.cursor) } : {}) });
    if (values.json === true) io.out(JSON.stringify(page));
    else {
      for (const s of page.sessions)
        io.out(
          `${s.clientSessionId}  ${s.pod}  gen ${s.generation}  age ${duration(now() - s.createdAtMs)} ` +
            ` ttl ${s.ttlMs === null ? '?' : duration(s.ttlMs)}${s.recoverable ? '' : '  (not recoverable)'}`,
        );
      io.err(
        page.cursor === null
          ? `${page.sessions.length} session(s); no more`
          : `${page.sessions.length} session(s); more: mcp-pin sessions list --cursor ${page.cursor}${pod !== undefined ? ` --pod ${pod}` : ''}`,
      );
    }
    return 0;
  } catch (err) {
    if (err instanceof PinError && err.code === 'MCP_PIN_BAD_CURSOR') return usage(err.message);
    if (err instanceof PinError && err.code.startsWith('MCP_PIN_STORE')) {
      io.err(`mcp-pin sessions: ${err.message} (${err.code})`);
      return 3;
    }
    throw err;
  } finally {
    await store.close().catch(() => {});
  }
}

function notFound(io: CommandIo, id: string): number {
  io.err(`mcp-pin sessions: no session ${JSON.stringify(id)} in the store (never pinned, ended, or expired)`);
  return 1;
}

function describe(s: SessionInfo, now: number): string {
  return [
    `session      ${s.clientSessionId}`,
    `pod          ${s.pod}`,
    `backend id   ${s.backendSessionId}${s.backendSessionId === s.clientSessionId ? " (the client's own)" : ' (re-created after a loss)'}`,
    `generation   ${s.generation}`,
    `age          ${duration(now - s.createdAtMs)} (created ${new Date(s.createdAtMs).toISOString()})`,
    `last seen    ${duration(now - s.lastSeenAtMs)} ago`,
    `ttl          ${s.ttlMs === null ? 'unknown' : duration(s.ttlMs)}`,
    `recoverable  ${s.recoverable ? 'yes (initialize kept)' : 'no (initialize not kept)'}`,
  ].join('\n');
}

/** 1h02m03s, 4m05s, 6s, 120ms. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const s = Math.floor(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number): string => String(n).padStart(2, '0');
  if (h > 0) return `${h}h${pad(m)}m${pad(s % 60)}s`;
  if (m > 0) return `${m}m${pad(s % 60)}s`;
  return `${s}s`;
}
