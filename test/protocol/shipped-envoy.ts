/**
 * The rules the protocol simulation runs, read from what ships, never written
 * here: Envoy's from the config rendered from the template with the shipped
 * Kubernetes values (deploy/k8s/values.json, the template's defaults for the
 * rest), parsed as YAML; mcp-pin's from its own defaults (src/config.ts).
 * A change to the template, a template default or an mcp-pin default changes
 * the model. Every retry, timeout and redirect rule in the rendered config is
 * either read here or listed in NOT_MODELLED with the reason; a rule in
 * neither fails test/protocol/shipped-envoy.test.ts.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { renderEnvoyConfig } from '../../envoy/render.js';
import { ENVOY_DEFAULTS } from '../../envoy/params.js';
import { paramsFromValues } from '../../envoy/values.js';
import { loadConfig } from '../../src/config.js';

type Yaml = Record<string, unknown>;

/** The value matcher of a route's dynamic_metadata (the subset the template uses). */
interface ValueMatcher {
  string_match?: { exact?: string; prefix?: string };
  or_match?: { value_matchers: ValueMatcher[] };
  null_match?: Record<string, never>;
}

interface HeaderMatcher {
  name: string;
  present_match?: boolean;
  string_match?: { exact?: string; prefix?: string; safe_regex?: { regex: string } };
}

function headerMatches(m: HeaderMatcher, v: string | undefined): boolean {
  if (m.present_match !== undefined) return (v !== undefined) === m.present_match;
  const sm = m.string_match;
  if (!sm) throw new Error(`shipped-envoy: a header matcher the model cannot read: ${JSON.stringify(m)}`);
  if (v === undefined) return false;
  if (sm.exact !== undefined) return v === sm.exact;
  if (sm.prefix !== undefined) return v.startsWith(sm.prefix);
  // Envoy's safe_regex matches the whole value (RE2 full match).
  if (sm.safe_regex) return new RegExp(`^(?:${sm.safe_regex.regex})$`).test(v);
  throw new Error(`shipped-envoy: a string matcher the model cannot read: ${JSON.stringify(sm)}`);
}

interface RetryPolicy {
  retry_on: string;
  retriable_status_codes?: number[];
  num_retries: number;
  host_selection_retry_max_attempts?: number;
}

/** One route of the public listener, as the model needs it. */
export interface ShippedRoute {
  /** Where it is in the route list: rules are named by it. */
  index: number;
  cluster: string | undefined;
  /** Its header matchers, as Envoy reads them (name, present or not, or a string match). */
  headers: HeaderMatcher[];
  /** dynamic_metadata matchers (Envoy's MCP filter): metadata path -> value matcher. */
  metadata: { path: string[]; value: ValueMatcher }[];
  retry?: RetryPolicy;
  maxInternalRedirects?: number;
  /** The statuses Envoy follows itself (internal_redirect_policy.redirect_response_codes; Envoy's default 302). */
  redirectCodes?: number[];
}

function valueMatches(m: ValueMatcher, v: string | undefined): boolean {
  if (m.null_match) return v === undefined;
  if (m.or_match) return m.or_match.value_matchers.some((x) => valueMatches(x, v));
  if (m.string_match?.exact !== undefined) return v === m.string_match.exact;
  if (m.string_match?.prefix !== undefined) return v?.startsWith(m.string_match.prefix) === true;
  throw new Error(`shipped-envoy: a value matcher the model cannot read: ${JSON.stringify(m)}`);
}

const durationMs = (d: string): number => {
  const m = /^(\d+(?:\.\d+)?)s$/.exec(d);
  if (!m) throw new Error(`shipped-envoy: not a duration: ${d}`);
  return Math.round(Number(m[1]) * 1000);
};

export const RENDERED = renderEnvoyConfig(
  paramsFromValues(JSON.parse(readFileSync(new URL('../../deploy/k8s/values.json', import.meta.url), 'utf8')) as Record<string, string>),
);
const MCP_PIN = loadConfig([], {});

/** What Envoy does after an attempt ended so, on this route: retry or not. */
export function retriesAfter(route: ShippedRoute, outcome: { status: number } | 'connect-failure' | 'reset'): boolean {
  const on = (route.retry?.retry_on ?? '').split(',');
  if (outcome === 'connect-failure') return on.includes('connect-failure');
  if (outcome === 'reset') return on.includes('reset');
  return on.includes('retriable-status-codes') && (route.retry?.retriable_status_codes ?? []).includes(outcome.status);
}

export const maxAttempts = (route: ShippedRoute): number => 1 + (route.retry?.num_retries ?? 0);

/** A reply Envoy makes itself, as its local-reply mappers see it. */
export interface EnvoyReply {
  details: string;
  /** Response flags (UF, UC, UH, ...). */
  flags: string[];
  /** Whether a pod had been chosen (the upstream address is set): a retry's upstream filter, a reset, a connect failure. */
  upstream: boolean;
}

interface Mapper {
  filter: Yaml;
  status_code?: number;
  body_format_override?: { json_format?: { error?: { message?: string } } };
}

/**
 * Envoy's access-log CEL filter, for the expressions the template writes
 * (terms joined by &&): code_details equal to or starting with a string,
 * either negated, and whether the upstream address is set. Anything else
 * fails loudly, so the model never guesses.
 */
function celHolds(expression: string, r: EnvoyReply): boolean {
  return expression.split(' && ').every((term) => {
    const starts = /^(!?)response\.code_details\.startsWith\('([^']*)'\)$/.exec(term);
    if (starts) return r.details.startsWith(starts[2]!) !== (starts[1] === '!');
    const equals = /^response\.code_details == '([^']*)'$/.exec(term);
    if (equals) return r.details === equals[1];
    if (term === "upstream.address != ''") return r.upstream;
    throw new Error(`shipped-envoy: a local-reply expression the model cannot read: ${term}`);
  });
}

function mapperHolds(filter: Yaml, r: EnvoyReply): boolean {
  if (filter.response_flag_filter) return (filter.response_flag_filter as { flags: string[] }).flags.some((f) => r.flags.includes(f));
  if (filter.extension_filter) return celHolds((filter.extension_filter as { typed_config: { expression: string } }).typed_config.expression, r);
  throw new Error(`shipped-envoy: a local-reply filter the model cannot read: ${JSON.stringify(filter)}`);
}

/** The model's Envoy, read from one rendered config. */
export function readEnvoy(rendered: string) {
  const config = parse(rendered) as Yaml;
  const listeners = (config.static_resources as { listeners: Yaml[] }).listeners;
  const clusters = (config.static_resources as { clusters: Yaml[] }).clusters;
  const publicHcm = (listeners.find((l) => l.name === 'mcp') ?? listeners[0]) as { filter_chains: { filters: { typed_config: Yaml }[] }[] };
  const hcm = publicHcm.filter_chains[0]!.filters[0]!.typed_config as {
    route_config: { virtual_hosts: { routes: Yaml[] }[] };
    local_reply_config: { mappers: Mapper[] };
  };

  /**
   * What the client reads in a reply Envoy made itself: the first mapper
   * whose filter holds (Envoy's order) sets its status and message; whether
   * that message says the request may have run is what I2 holds it to.
   */
  const localReply = (status: number, r: EnvoyReply): { status: number; message: string; saysMayHaveRun: boolean } => {
    const m = hcm.local_reply_config.mappers.find((x) => mapperHolds(x.filter, r));
    const message = m?.body_format_override?.json_format?.error?.message ?? '';
    return { status: m?.status_code ?? status, message, saysMayHaveRun: /may have run/.test(message) };
  };

  const routes: ShippedRoute[] = hcm.route_config.virtual_hosts[0]!.routes.map((r, index) => {
    const match = r.match as {
      prefix?: string;
      headers?: HeaderMatcher[];
      dynamic_metadata?: { filter: string; path: { key: string }[]; value: ValueMatcher }[];
    };
    if (match.prefix !== '/') throw new Error(`shipped-envoy: route ${index} matches ${JSON.stringify(match)}: the model knows only prefix "/"`);
    const route = r.route as
      | { cluster?: string; retry_policy?: RetryPolicy; internal_redirect_policy?: { max_internal_redirects?: number; redirect_response_codes?: number[] } }
      | undefined;
    return {
      index,
      cluster: route?.cluster,
      headers: match.headers ?? [],
      metadata: (match.dynamic_metadata ?? []).map((d) => ({ path: d.path.map((p) => p.key), value: d.value })),
      ...(route?.retry_policy ? { retry: route.retry_policy } : {}),
      ...(route?.internal_redirect_policy
        ? {
            maxInternalRedirects: route.internal_redirect_policy.max_internal_redirects ?? 1,
            redirectCodes: route.internal_redirect_policy.redirect_response_codes ?? [302],
          }
        : {}),
    };
  });

  /**
   * The route a request takes: the first whose match holds (the template's
   * order), given its headers and the MCP filter's metadata (method, and
   * params.name of a tools/call).
   */
  const routeFor = (headers: [string, string][], metadata: { method?: string; params?: { name?: string } }): ShippedRoute => {
    const has = (name: string): string | undefined => headers.find(([k]) => k === name)?.[1];
    const meta = (path: string[]): string | undefined => {
      let v: unknown = metadata;
      for (const k of path) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
      return typeof v === 'string' ? v : undefined;
    };
    for (const r of routes) {
      if (!r.headers.every((h) => headerMatches(h, has(h.name)))) continue;
      if (!r.metadata.every((m) => valueMatches(m.value, meta(m.path)))) continue;
      return r;
    }
    throw new Error(`shipped-envoy: no route for ${JSON.stringify(headers)} ${JSON.stringify(metadata)}`);
  };

  // The pinned cluster's upstream filters: which attempts open an ext_proc
  // stream to mcp-pin (the composite's matcher on x-envoy-attempt-count).
  const pinned = clusters.find((c) => c.name === 'mcp_pinned') as { typed_extension_protocol_options: Record<string, { http_filters: Yaml[] }> };
  const upstreamFilters = Object.values(pinned.typed_extension_protocol_options)[0]!.http_filters;
  const upstreamComposite = upstreamFilters.find((f) => JSON.stringify(f).includes('x-envoy-attempt-count')) as Yaml;
  const attemptMatcher = (upstreamComposite.typed_config as { xds_matcher: { matcher_tree: { exact_match_map: { map: Record<string, unknown> } } } })
    .xds_matcher.matcher_tree;
  // Attempts whose action is SkipFilter open no stream; the rest (on_no_match) run the ext_proc filter.
  const skippedAttempts = Object.entries(attemptMatcher.exact_match_map.map)
    .filter(([, a]) => JSON.stringify(a).includes('SkipFilter'))
    .map(([count]) => Number(count));
  const upstreamExtProc = JSON.stringify(upstreamComposite);
  const timer = (name: string): number => {
    const m = new RegExp(`"${name}":"([^"]+)"`).exec(upstreamExtProc);
    if (!m?.[1]) throw new Error(`shipped-envoy: the upstream ext_proc has no ${name}`);
    return durationMs(m[1]);
  };

  return {
    config,
    routes,
    routeFor,
    /** Whether a pinned request of this method is retried after a reset (the replay route): safe to run twice. */
    replayedAfterReset: (method: string): boolean =>
      retriesAfter(
        routeFor(
          [
            [':method', 'POST'],
            ['mcp-session-id', 's'],
            [ENVOY_DEFAULTS.pinHeader, 'pod'],
          ],
          { method },
        ),
        'reset',
      ),
    localReply,
    /** The upstream ext_proc runs on attempts the matcher does not skip (it skips the first). */
    upstreamExtProcOn: (attempt: number): boolean => !skippedAttempts.includes(attempt),
    /** The upstream ext_proc's message_timeout and max_message_timeout. */
    messageTimeoutMs: timer('message_timeout'),
    maxMessageTimeoutMs: timer('max_message_timeout'),
  };
}

/** The Envoy that ships (deploy/k8s/values.json). */
export const SHIPPED_ENVOY = readEnvoy(RENDERED);
export const ROUTES = SHIPPED_ENVOY.routes;
export const routeFor = SHIPPED_ENVOY.routeFor;
export const replayedAfterReset = SHIPPED_ENVOY.replayedAfterReset;

export const SHIPPED = {
  /** mcp-pin's --lost-session-statuses default. */
  lostSessionStatuses: MCP_PIN.lostSessionStatuses,
  /** mcp-pin's --recovery-timeout-ms default. */
  recoveryTimeoutMs: MCP_PIN.recoveryTimeoutMs,
  /** mcp-pin's --store-timeout-ms default: how long a store call may take before it fails. */
  storeTimeoutMs: MCP_PIN.storeTimeoutMs,
  /** mcp-pin's --unknown-session-cache-ms default: how long a search that ended in 404 is remembered. */
  unknownSessionCacheMs: MCP_PIN.unknownSessionCacheMs,
  upstreamExtProcOn: SHIPPED_ENVOY.upstreamExtProcOn,
  localReply: SHIPPED_ENVOY.localReply,
  messageTimeoutMs: SHIPPED_ENVOY.messageTimeoutMs,
  maxMessageTimeoutMs: SHIPPED_ENVOY.maxMessageTimeoutMs,
};

/** The names of the rules a protocol can depend on: retries, timeouts, redirects, health, breakers. */
const RULE_KEYS = new Set([
  'retry_policy',
  'timeout',
  'idle_timeout',
  'per_try_timeout',
  'per_try_idle_timeout',
  'hedge_policy',
  'max_stream_duration',
  'stream_idle_timeout',
  'request_timeout',
  'request_headers_timeout',
  'message_timeout',
  'max_message_timeout',
  'internal_redirect_policy',
  'outlier_detection',
  'health_checks',
  'connect_timeout',
  'circuit_breakers',
  'common_http_protocol_options',
  'drain_timeout',
  'delayed_close_timeout',
  'request_body_buffer_limit',
  'max_request_bytes',
  'per_connection_buffer_limit_bytes',
]);

/** Every such rule in the rendered config: where (names where the YAML has them), which, and its value. */
export function rulesInRendered(): { where: string; key: string; value: unknown }[] {
  const out: { where: string; key: string; value: unknown }[] = [];
  const walk = (node: unknown, where: string): void => {
    if (Array.isArray(node)) {
      for (const [i, x] of node.entries()) walk(x, `${where}[${x && typeof x === 'object' && typeof (x as Yaml).name === 'string' ? (x as Yaml).name : i}]`);
      return;
    }
    if (!node || typeof node !== 'object') return;
    for (const [k, v] of Object.entries(node as Yaml)) {
      if (RULE_KEYS.has(k)) out.push({ where, key: k, value: v });
      walk(v, `${where}.${k}`);
    }
  };
  walk(SHIPPED_ENVOY.config, '');
  return out;
}
