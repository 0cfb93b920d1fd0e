/**
 * Every setting, from CLI flags (--name) or environment (MCP_PIN_NAME), with
 * its default, in one table. Validated once at start: every problem is
 * reported, one line each, and the process exits non-zero.
 */
import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { ConfigValueError, InvalidConfigError } from './errors.js';
import { ValuesFileError, derivedSettings, disagreements, readValuesFile, type ValuesFile } from './config-file.js';
import { isLoopbackHost, parseListenAddress, UNIX_PREFIX } from './listen-address.js';
import { PinAllowlist } from './pin-allowlist.js';
import { splitHostPort } from './host-port.js';
import { parseRedisUrl } from './sessions/redis-url.js';
import { MAX_STORED_SESSION_ID_LENGTH } from './sessions/stored-record.js';

const hostPort = z
  .string()
  .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'expected host:port, e.g. 0.0.0.0:50051')
  .refine((s) => (splitHostPort(s)?.port ?? 0) <= 65535, 'port must be 0-65535');
const ms = (min: number, max: number) => z.coerce.number().int('must be a whole number of milliseconds').min(min).max(max);
const statusList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)
      .map(Number),
  )
  .pipe(z.array(z.number().int().min(400).max(599)).min(1, 'give at least one status, e.g. 404'));
const headerName = z.string().regex(/^[a-z0-9-]+$/, 'a lowercase HTTP header name');
/** Envoy's internal listener: http(s)://host:port, or unix:/path (HTTP over a Unix socket, the shipped deployments' way). */
const recoveryUrl = z.string().refine((s) => {
  if (s.startsWith(UNIX_PREFIX)) return parseListenAddress(s)?.kind === 'unix';
  try {
    const u = new URL(s);
    return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
  } catch {
    return false;
  }
}, 'expected http://host:port or unix:/absolute/path of the internal listener');
const listenAddress = z
  .string()
  .refine((s) => parseListenAddress(s) !== undefined, 'expected unix:/absolute/path or host:port, e.g. unix:/run/mcp-pin/mcp-pin.sock or 127.0.0.1:50051');
const yesNo = z.enum(['true', 'false'], 'expected true or false').transform((v) => v === 'true');

interface Option<T extends z.ZodType> {
  flag: string;
  env: string;
  schema: T;
  default: string;
  doc: string;
}
const opt = <T extends z.ZodType>(flag: string, schema: T, def: string, doc: string): Option<T> => ({
  flag,
  env: `MCP_PIN_${flag.toUpperCase().replace(/-/g, '_')}`,
  schema,
  default: def,
  doc,
});

/** The table: flag name, validation, default, one line of documentation. */
export const OPTIONS = {
  config: opt(
    'config',
    z.string(),
    '',
    'values file (JSON) that `render:envoy --values` renders Envoy from: settings both sides ' +
      'use come from it, mcp-pin\'s own from its "mcpPin" object; flags and environment ' +
      'override, and any disagreement with the rendered Envoy is refused at start',
  ),
  listen: opt(
    'listen',
    listenAddress,
    '127.0.0.1:50051',
    'where Envoy opens ext_proc streams: unix:/path (a Unix socket beside Envoy, mode 0660: ' +
      "Envoy must run as mcp-pin's user or group) or host:port (port 0: any free port). The port " +
      'is a control plane (a caller can rewrite any session it knows the id of): an address ' +
      'other than loopback needs mutual TLS (--tls-cert-file, --tls-key-file, ' +
      '--tls-client-ca-file) or --network-is-closed true',
  ),
  networkIsClosed: opt(
    'network-is-closed',
    yesNo,
    'false',
    'true: you state that only Envoy can reach --listen (a network nobody else is on), so ' +
      'mcp-pin may serve it without mutual TLS on an address other than loopback; false: it ' +
      'refuses to start that way',
  ),
  metricsListen: opt('metrics-listen', z.union([z.literal('off'), hostPort]), '0.0.0.0:9464', "Prometheus /metrics address, or 'off'"),
  storeUrl: opt(
    'store-url',
    z
      .string()
      .regex(/^(memory:|rediss?:\/\/|redis-sentinel:\/\/|redis-cluster:\/\/)/, 'expected memory:, redis://, rediss://, redis-sentinel:// or redis-cluster://')
      .superRefine((u, ctx) => {
        if (u === 'memory:') return;
        try {
          parseRedisUrl(u);
        } catch (err) {
          if (!(err instanceof ConfigValueError)) throw err;
          ctx.addIssue({ code: 'custom', message: err.message });
        }
      }),
    'memory:',
    'session store: memory: (single replica only), redis[s]://host:port, redis-sentinel://h1:p1,h2:p2/master or redis-cluster://h1:p1,h2:p2',
  ),
  keyPrefix: opt(
    'key-prefix',
    z
      .string()
      .min(1)
      .max(64)
      .regex(/^[^\s{}]+$/, 'no spaces or braces'),
    'mcp-pin:',
    'prefix of every store key',
  ),
  sessionTtlMs: opt(
    'session-ttl-ms',
    ms(1_000, 30 * 24 * 3_600_000),
    String(2 * 3_600_000),
    'sliding TTL of a session pin; requests extend it (Redis: in steps of 1% of it, a write per step)',
  ),
  storeTimeoutMs: opt('store-timeout-ms', ms(10, 10_000), '250', 'bound on one store command; past it the request fails fast'),
  pinCacheMs: opt(
    'pin-cache-ms',
    ms(0, 60_000),
    '1000',
    'keep pins in this replica for this long (0: off; Redis stores only); saves a store round ' +
      'trip per request; a change by another replica is seen up to this late (a retry corrects ' +
      'it), and cached pins keep routing this long while the store is down',
  ),
  pinHeader: opt('pin-header', headerName, 'x-mcp-pin-dst', "header that carries the pinned pod to Envoy's override_host policy (template value pinHeader)"),
  upstreamHeader: opt('upstream-header', headerName, 'x-mcp-pin-upstream', 'header the internal listener fills with %UPSTREAM_HOST%'),
  recoveryUrl: opt(
    'recovery-url',
    recoveryUrl,
    'http://127.0.0.1:10001',
    "Envoy's internal listener that mcp-pin re-initializes sessions through: http://host:port, " +
      'or unix:/path when that listener is a Unix socket (template value internalAddress ' +
      'unix:/path)',
  ),
  recoveryTimeoutMs: opt(
    'recovery-timeout-ms',
    ms(100, 120_000),
    '10000',
    "bound on each step of a retry attempt's work: a shared recovery (proof of loss, " +
      "re-initialize, notifications/initialized), and a relay to the session's pod; Envoy waits " +
      "this long plus 1 s for each answer (needs Envoy's max_message_timeout at least that)",
  ),
  lostSessionStatuses: opt(
    'lost-session-statuses',
    statusList,
    '404,400',
    'pod answers that mean "session lost", comma-separated (404: the spec, the TypeScript SDK ' +
      'and Python `mcp` >= 1.26; 400: Python `mcp` < 1.26); a 400 for anything else costs a ping ' +
      "and a relay, never a re-initialize; Envoy's pinned route must retry the same statuses " +
      '(template value lostSessionStatuses)',
  ),
  pinAllow: opt(
    'pin-allow',
    z.string().superRefine((v, ctx) => {
      try {
        new PinAllowlist(v);
      } catch (err) {
        if (!(err instanceof ConfigValueError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
      }
    }),
    '*',
    'where a pin may point: CIDR[:port[-port]] or dns:<headless service>[:port], ' +
      'comma-separated; * allows any (set it in production: a poisoned store could aim sessions ' +
      'anywhere)',
  ),
  relayBudgetBytes: opt(
    'relay-budget-bytes',
    z.coerce
      .number()
      .int()
      .min(1024 * 1024)
      .max(4 * 1024 * 1024 * 1024),
    String(64 * 1024 * 1024),
    'bytes of relayed answers held at once across all relays (each is held whole, up to 16 ' +
      'MiB); a relay that would pass it fails (before sending: "did not run"; while reading: ' +
      '"ran, answer too large")',
  ),
  memoryStoreMaxSessions: opt(
    'memory-store-max-sessions',
    z.coerce.number().int().min(1).max(100_000_000),
    '1000000',
    'memory: store only: most sessions held; past it a new initialize gets 503 (live sessions are never evicted)',
  ),
  tlsCertFile: opt('tls-cert-file', z.string(), '', 'PEM certificate chain for TLS on the gRPC port (with --tls-key-file); empty: plain h2c'),
  tlsKeyFile: opt('tls-key-file', z.string(), '', 'PEM private key for --tls-cert-file'),
  tlsClientCaFile: opt(
    'tls-client-ca-file',
    z.string(),
    '',
    "PEM CA that signs Envoy's client certificate: with it, a client without such a " +
      "certificate is refused (mutual TLS; Envoy's side is the template value extProcTls)",
  ),
  maxInitBodyBytes: opt(
    'max-init-body-bytes',
    z.coerce
      .number()
      .int()
      .min(256)
      .max(16 * 1024 * 1024),
    '65536',
    'largest initialize body stored for recovery; larger ones are pinned but not recoverable',
  ),
  maxSessionIdLength: opt(
    'max-session-id-length',
    z.coerce.number().int().min(8).max(MAX_STORED_SESSION_ID_LENGTH),
    '256',
    'longer mcp-session-id values (and ones with characters outside visible ASCII) are answered 404 by mcp-pin: never looked up, never sent to a pod',
  ),
  unknownSessionCacheMs: opt(
    'unknown-session-cache-ms',
    ms(0, 600_000),
    '5000',
    'remember a session id that no pod held (its search ended in 404) this long, at the path it was searched at: repeats there get 404 from ' +
      'mcp-pin after a store lookup, and reach no pod (0: off)',
  ),
  drainDelayMs: opt(
    'drain-delay-ms',
    ms(0, 120_000),
    '2000',
    "on SIGTERM, keep serving (NOT_SERVING) this long so Envoy's health check moves traffic away first",
  ),
  drainGraceMs: opt('drain-grace-ms', ms(0, 600_000), '10000', 'then, how long open streams may finish before they are cut'),
  logLevel: opt('log-level', z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']), 'info', 'log level'),
} as const;

type Options = typeof OPTIONS;
export type Config = { [K in keyof Options]: z.output<Options[K]['schema']> };

export function helpText(): string {
  const lines = [
    'Usage: mcp-pin [--flag value ...]',
    '       mcp-pin --help | --version',
    '       mcp-pin sessions get <id> | list [--pod ip:port] | drop <id>  (mcp-pin sessions --help)',
    "       mcp-pin render-envoy --values file.json [--out file] | --list | --eds host:port,...  (Envoy's config, as npm run render:envoy)",
    '',
    'Each flag can also be given as an environment variable.',
    '',
  ];
  for (const o of Object.values(OPTIONS)) {
    lines.push(`  --${o.flag}  (${o.env})`, `      ${o.doc}`, `      default: ${o.default}`);
  }
  return lines.join('\n');
}

/** Flags win over environment, environment over a values file (--config), that over defaults. Throws InvalidConfigError listing every problem. */
export function loadConfig(argv: string[] = process.argv.slice(2), env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  // Not strict: a bad flag is one problem among all the others, not the only one reported.
  const known = new Set(Object.values(OPTIONS).map((o) => o.flag));
  const { tokens } = parseArgs({
    args: argv,
    options: Object.fromEntries(Object.values(OPTIONS).map((o) => [o.flag, { type: 'string' as const }])),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const flags: Record<string, string> = {};
  for (const t of tokens) {
    if (t.kind === 'positional') problems.push(`unexpected argument '${t.value}'`);
    else if (t.kind === 'option' && !known.has(t.name)) problems.push(`unknown option '${t.rawName}' (see --help)`);
    else if (t.kind === 'option' && typeof t.value !== 'string') problems.push(`option '${t.rawName}' needs a value`);
    else if (t.kind === 'option') flags[t.name] = t.value as string;
  }
  // A values file (--config) sits between the environment and the defaults.
  const configPath = flags.config ?? env[OPTIONS.config.env] ?? '';
  let values: ValuesFile | undefined;
  const fromFile: Record<string, { raw: string; source: string }> = {};
  if (configPath) {
    try {
      values = readValuesFile(configPath, new Set(Object.keys(OPTIONS).filter((k) => k !== 'config')));
      for (const [k, v] of Object.entries(derivedSettings(values.envoy))) fromFile[k] = { raw: v, source: `${configPath} (template values)` };
      for (const [k, v] of Object.entries(values.own)) fromFile[k] = { raw: v, source: `${configPath} mcpPin.${k}` };
    } catch (err) {
      if (!(err instanceof ValuesFileError)) throw err;
      problems.push(...err.problems);
    }
  }
  const out: Record<string, unknown> = {};
  for (const [key, o] of Object.entries(OPTIONS)) {
    const fromFlag = flags[o.flag];
    const raw = typeof fromFlag === 'string' ? fromFlag : (env[o.env] ?? fromFile[key]?.raw ?? o.default);
    const source = typeof fromFlag === 'string' ? `--${o.flag}` : env[o.env] !== undefined ? o.env : (fromFile[key]?.source ?? `default of --${o.flag}`);
    const parsed = (o.schema as z.ZodType).safeParse(raw);
    if (parsed.success) out[key] = parsed.data;
    else problems.push(`${source}=${JSON.stringify(withoutPassword(raw))}: ${parsed.error.issues.map((i) => i.message).join('; ')}`);
  }
  // Settings that only make sense together.
  const file = (k: string): string => String(out[k] ?? '');
  if (Boolean(file('tlsCertFile')) !== Boolean(file('tlsKeyFile')))
    problems.push('--tls-cert-file and --tls-key-file go together (TLS on the gRPC port needs both)');
  if (file('tlsClientCaFile') && !file('tlsCertFile')) problems.push('--tls-client-ca-file needs --tls-cert-file and --tls-key-file (mutual TLS is TLS first)');
  for (const k of ['tlsCertFile', 'tlsKeyFile', 'tlsClientCaFile']) {
    if (file(k) && !existsSync(file(k))) problems.push(`--${OPTIONS[k as keyof typeof OPTIONS].flag}=${JSON.stringify(file(k))}: no such file`);
  }
  // Where the values file's Envoy and mcp-pin disagree on TLS, that line (from disagreements) already names the fix for the port below.
  const tlsDisagrees = values !== undefined && problems.length === 0 && Boolean(values.envoy.extProcTls) !== Boolean(file('tlsCertFile'));
  if (values && problems.length === 0) problems.push(...disagreements(out as Config, values.envoy, configPath));
  const listen = parseListenAddress(file('listen'));
  if (
    listen?.kind === 'tcp' &&
    !isLoopbackHost(listen.host) &&
    !(file('tlsCertFile') && file('tlsClientCaFile')) &&
    out.networkIsClosed !== true &&
    !tlsDisagrees
  ) {
    problems.push(
      `--listen=${file('listen')}: the gRPC port is mcp-pin's control plane (whoever opens ` +
        `a stream there can rewrite any session it knows the id of), and this address is not ` +
        `loopback: ` +
        'listen on a Unix socket beside Envoy (unix:/run/mcp-pin/mcp-pin.sock), or require mutual ' +
        'TLS (--tls-cert-file, --tls-key-file and --tls-client-ca-file), or state that only Envoy ' +
        'can reach it with --network-is-closed true',
    );
  }
  if (listen?.kind === 'unix' && file('tlsCertFile'))
    problems.push(`--listen=${file('listen')}: TLS is for TCP; a Unix socket is guarded by its file permissions (leave --tls-cert-file unset)`);
  if (problems.length > 0) throw new InvalidConfigError(problems);
  return out as Config;
}

/** A value as problems may show it: a URL's password (redis://user:secret@host) never reaches a log. */
function withoutPassword(raw: string): string {
  return raw.replace(/(\/\/[^/@\s]*?:)[^/@\s]*@/g, '$1***@');
}
