/**
 * Renders envoy/envoy.template.yaml. The stack, the tests, the benchmark and
 * the compose file all go through here, so there is one Envoy config that
 * cannot drift into copies.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TemplateError } from '../src/errors.js';
import { REDIRECTED_SESSION_HEADER } from '../src/mcp-headers.js';
import { TASK_METHODS } from '../src/lost-task.js';
import { STATE_METHODS } from '../src/session-state.js';
import { CIDR_PATTERN, PIPE_MODE, internalSocketPath, isSocketPath, mcpMetadataNamespace, type EnvoyParams, type ExtProcEndpoint } from './params.js';

export const ENVOY_TEMPLATE_PATH = fileURLToPath(new URL('./envoy.template.yaml', import.meta.url));

/** The Envoy value matcher for the methods Envoy's MCP filter reports, for replayAfterReset. */
export function replayMatcher(methods: readonly string[]): string {
  // No method: null_match, which no method name (always a string) satisfies.
  if (methods.length === 0) return '{ null_match: {} }';
  const items = methods.map((m) => {
    if (m === 'responses') return '{ string_match: { exact: "__jsonrpc_response" } }';
    if (m.endsWith('/*')) return `{ string_match: { prefix: "${m.slice(0, -1)}" } }`;
    return `{ string_match: { exact: "${m}" } }`;
  });
  return anyOf(items);
}

/**
 * The route for calls of the tools the operator named safe to run twice
 * (replaySafeTools), at the route list's indentation, or nothing: replayed
 * like the methods of replayAfterReset (the route above it, whose action it
 * shares). Envoy's MCP filter puts a tools/call's tool name in params.name.
 */
function safeToolsRoute(params: EnvoyParams): string {
  if (params.replaySafeTools.length === 0) return '';
  return [
    '              # Pinned calls of the tools the operator named safe to run twice',
    '              # (template value replaySafeTools): replayed like the methods above.',
    '              - match:',
    '                  prefix: "/"',
    '                  headers:',
    `                  - name: "${params.pinHeader}"`,
    '                    present_match: true',
    '                  dynamic_metadata:',
    `                  - filter: ${mcpMetadataNamespace(params.envoyVersion)}`,
    '                    path: [ { key: method } ]',
    '                    value: { string_match: { exact: "tools/call" } }',
    `                  - filter: ${mcpMetadataNamespace(params.envoyVersion)}`,
    '                    path: [ { key: params }, { key: name } ]',
    `                    value: ${exactMatcher(params.replaySafeTools)}`,
    '                response_headers_to_add: *client_session_id_back',
    `                request_body_buffer_limit: ${holdLimitBytes(params)}`,
    '                route: *replay_route',
    '',
  ].join('\n');
}

/** A value matcher that holds when any of these does (Envoy's or_match takes two or more). */
function anyOf(items: string[]): string {
  const [only] = items;
  return items.length === 1 && only ? only : `{ or_match: { value_matchers: [ ${items.join(', ')} ] } }`;
}

/** An Envoy value matcher for any of these exact strings. */
function exactMatcher(names: readonly string[]): string {
  const items = names.map((n) => `{ string_match: { exact: "${n}" } }`);
  return anyOf(items);
}

/** The route's buffer limit is also the upstream filters' (the held answer); request bodies stay bounded by the buffer filter. */
function holdLimitBytes(params: EnvoyParams): number {
  return params.holdSafeResponses ? Math.max(params.holdSafeResponsesMaxBytes, params.bufferLimitBytes) : params.bufferLimitBytes;
}

/**
 * Lines of the pinned cluster's upstream filter list (at its indentation):
 * the answer's headers wait until its body is whole. Only the replay route
 * runs it (every other route to the pinned cluster turns it off, holdOffHere):
 * a pod that dies mid-answer is then a reset before the response started,
 * which that route retries on another pod.
 */
function holdFilter(on: boolean): string {
  if (!on) return '';
  return [
    '        # 1b. Requests of the replay route only (the other routes to this',
    '        #     cluster turn it off): the answer goes on once it is whole, so a',
    '        #     pod that dies while it streams (SSE) is a reset before the',
    '        #     response started, which Envoy retries.',
    '        - name: envoy.filters.http.lua',
    '          typed_config:',
    '            "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua',
    '            default_source_code:',
    '              inline_string: "function envoy_on_response(h) h:body() end"',
    '',
  ].join('\n');
}

/** The stats listener and the cluster that reaches the admin interface (YAML at the list indentation), or nothing. */
function statsListener(params: EnvoyParams): { listener: string; cluster: string } {
  const at = params.statsListen;
  if (!at) return { listener: '', cluster: '' };
  const hcm = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
  return {
    listener: [
      '',
      "  # Envoy's own stats and readiness, for a scraper and the kubelet: only",
      '  # /stats/prometheus and /ready of the admin interface, which stays on loopback',
      '  # (template value statsListen).',
      '  - name: envoy_stats',
      `    address: { socket_address: { address: "${at.host}", port_value: ${at.port} } }`,
      '    filter_chains:',
      '    - filters:',
      '      - name: envoy.filters.network.http_connection_manager',
      '        typed_config:',
      `          "@type": ${hcm}`,
      '          stat_prefix: envoy_stats',
      '          route_config:',
      '            virtual_hosts:',
      '            - name: envoy_stats',
      '              domains: ["*"]',
      '              routes:',
      '              - { match: { path: /stats/prometheus }, route: { cluster: envoy_admin } }',
      '              - { match: { path: /ready }, route: { cluster: envoy_admin } }',
      '          http_filters:',
      '          - name: envoy.filters.http.router',
      '            typed_config: { "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router }',
    ].join('\n'),
    cluster: [
      '  - name: envoy_admin',
      '    type: STATIC',
      '    connect_timeout: 0.25s',
      `    load_assignment: { cluster_name: envoy_admin, endpoints: [ { lb_endpoints: ${flowEndpoints([{ host: params.adminAddress, port: params.adminPort }])} } ] }`,
      '',
    ].join('\n'),
  };
}

/** The mcp_pin cluster's transport socket (YAML at the cluster's indentation), or nothing for h2c. */
function extProcTls(tls: EnvoyParams['extProcTls']): string {
  if (!tls) return '';
  return [
    '    # Mutual TLS to mcp-pin (template value extProcTls): Envoy proves itself with',
    "    # its client certificate, and trusts only mcp-pin's CA. gRPC needs ALPN h2.",
    '    transport_socket:',
    '      name: envoy.transport_sockets.tls',
    '      typed_config:',
    '        "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext',
    '        common_tls_context:',
    '          alpn_protocols: [h2]',
    `          tls_certificates: [ { certificate_chain: { filename: "${tls.certFile}" }, private_key: { filename: "${tls.keyFile}" } } ]`,
    `          validation_context: { trusted_ca: { filename: "${tls.caFile}" } }`,
    '',
  ].join('\n');
}

/** A route's typed_per_filter_config that turns the hold filter off there. */
function holdOffHere(on: boolean): string {
  return on ? '{ envoy.filters.http.lua: { "@type": type.googleapis.com/envoy.extensions.filters.http.lua.v3.LuaPerRoute, disabled: true } }' : '{}';
}

const seconds = (ms: number): string => `${(ms / 1000).toFixed(3)}s`;

/**
 * Header room. The request's header capacity (HCM limits) is what ext_proc
 * checks mcp-pin's changes against; a change past it is an opaque 500. So
 * the capacity is the client's limit plus what Envoy adds before the
 * header-room check (x-request-id, x-forwarded-proto, ...) plus what Envoy and
 * mcp-pin add after it (the pin header, a rewritten session id of up to
 * --max-session-id-length, x-mcp-pin-client-session, x-envoy-attempt-count,
 * x-envoy-expected-rq-timeout-ms): a request the check lets through always
 * fits, and one it does not gets a clear 431.
 */
export const HEADER_ROOM = {
  /** Envoy's additions before the check. */
  envoyBefore: { count: 4, bytes: 512 },
  /** Envoy's and mcp-pin's additions after it (two session ids of 1024 bytes at most, plus the rest). */
  addedAfter: { count: 16, bytes: 4096 },
} as const;

function headerRoom(params: EnvoyParams): { roomCount: number; roomBytes: number; capacityCount: number; capacityKb: number } {
  const roomCount = params.clientHeadersMaxCount + HEADER_ROOM.envoyBefore.count;
  const roomBytes = params.clientHeadersMaxKb * 1024 + HEADER_ROOM.envoyBefore.bytes;
  return {
    roomCount,
    roomBytes,
    capacityCount: roomCount + HEADER_ROOM.addedAfter.count,
    capacityKb: Math.ceil((roomBytes + HEADER_ROOM.addedAfter.bytes) / 1024),
  };
}

/** An address prefix as the RBAC principals take it: address/length. */

/** RBAC principals: the connection's own peer address (not X-Forwarded-For) in one of these CIDRs. */
function cidrPrincipals(cidrs: readonly string[]): string {
  if (cidrs.length === 0) throw new TemplateError('envoy config: at least one internal client CIDR is needed');
  const items = cidrs.map((c) => {
    const m = CIDR_PATTERN.exec(c);
    if (!m) throw new TemplateError(`envoy config: "${c}" is not a CIDR`);
    return `{ direct_remote_ip: { address_prefix: "${m[1]}", prefix_len: ${m[2]} } }`;
  });
  return `[ ${items.join(', ')} ]`;
}

function flowEndpoints(hosts: ExtProcEndpoint[]): string {
  if (hosts.length === 0) throw new TemplateError('envoy config: at least one mcp-pin endpoint is needed');
  const items = hosts.map((h) =>
    isSocketPath(h)
      ? `{ endpoint: { address: { pipe: { path: "${h.path}" } } } }`
      : `{ endpoint: { address: { socket_address: { address: "${h.host}", port_value: ${h.port} } } } }`,
  );
  return `[ ${items.join(', ')} ]`;
}

/** The internal listener's address (flow YAML). */
function internalListen(params: EnvoyParams): string {
  const path = internalSocketPath(params);
  if (path) return `pipe: { path: "${path}", mode: ${PIPE_MODE} }`;
  return `socket_address: { address: "${params.internalAddress}", port_value: ${params.internalPort} }`;
}

/** One cluster's discovery, as YAML lines at the cluster's indentation. */
const CLUSTER_INDENT = '\n    ';

/** Discovery from an EDS file, watched by directory so a renamed-over file is seen whole. */
function edsDiscovery(edsPath: string, serviceName: string): string {
  const dir = edsPath.replace(/\/[^/]*$/, '') || '/';
  return [
    'type: EDS',
    `eds_cluster_config: { service_name: ${serviceName}, eds_config: { resource_api_version: V3, path_config_source: { path: "${edsPath}", watched_directory: { path: "${dir}" } } } }`,
  ].join(CLUSTER_INDENT);
}

/** Discovery of the pods for one of the two clusters that hold them (mcp_service, mcp_pinned): the same source for both. */
function podDiscovery(service: EnvoyParams['service'], cluster: string): string {
  // One EDS resource (named mcp_service) feeds both clusters.
  if ('edsPath' in service) return edsDiscovery(service.edsPath, 'mcp_service');
  return [
    'type: STRICT_DNS',
    'dns_lookup_family: V4_PREFERRED',
    `load_assignment: { cluster_name: ${cluster}, endpoints: [ { lb_endpoints: ${flowEndpoints([service.dns])} } ] }`,
  ].join(CLUSTER_INDENT);
}

function extProcDiscovery(params: EnvoyParams): string {
  if (!Array.isArray(params.extProc)) return edsDiscovery(params.extProc.edsPath, 'mcp_pin');
  if (params.extProcDiscovery === 'dns' && params.extProc.some(isSocketPath))
    throw new TemplateError('envoy config: extProcDiscovery dns takes host:port, not a Unix socket');
  return [
    ...(params.extProcDiscovery === 'dns' ? ['type: STRICT_DNS', 'dns_lookup_family: V4_PREFERRED'] : ['type: STATIC']),
    `load_assignment: { cluster_name: mcp_pin, endpoints: [ { lb_endpoints: ${flowEndpoints(params.extProc)} } ] }`,
  ].join(CLUSTER_INDENT);
}

export function renderEnvoyConfig(params: EnvoyParams, template = readFileSync(ENVOY_TEMPLATE_PATH, 'utf8')): string {
  const stats = statsListener(params);
  const room = headerRoom(params);
  const values: Record<string, string> = {
    CLIENT_HEADERS_COUNT: String(params.clientHeadersMaxCount),
    CLIENT_HEADERS_KB: String(params.clientHeadersMaxKb),
    HEADER_ROOM_COUNT: String(room.roomCount),
    HEADER_ROOM_BYTES: String(room.roomBytes),
    HEADER_CAPACITY_COUNT: String(room.capacityCount),
    HEADER_CAPACITY_KB: String(room.capacityKb),
    ADMIN_ADDRESS: params.adminAddress,
    ADMIN_PORT: String(params.adminPort),
    LISTEN_ADDRESS: params.listenAddress,
    LISTEN_PORT: String(params.listenPort),
    INTERNAL_LISTEN: internalListen(params),
    EXTPROC_DISCOVERY: extProcDiscovery(params),
    SERVICE_DISCOVERY: podDiscovery(params.service, 'mcp_service'),
    PINNED_DISCOVERY: podDiscovery(params.service, 'mcp_pinned'),
    SEARCH_DISCOVERY: podDiscovery(params.service, 'mcp_search'),
    LOST_SESSION_STATUSES: `[${params.lostSessionStatuses.join(', ')}]`,
    MCP_METADATA: mcpMetadataNamespace(params.envoyVersion),
    // A Unix socket's door is its file mode (who can open it); RBAC on peer addresses has none to check.
    INTERNAL_CLIENTS: internalSocketPath(params) ? '[ { any: true } ]' : cidrPrincipals(params.internalClients),
    REPLAY_AFTER_RESET: replayMatcher(params.replayAfterReset),
    HOLD_SAFE_RESPONSES_FILTER: holdFilter(params.holdSafeResponses),
    HOLD_OFF_HERE: holdOffHere(params.holdSafeResponses),
    STATE_METHODS: replayMatcher(STATE_METHODS),
    TASK_METHODS: replayMatcher(TASK_METHODS),
    EXTPROC_TLS: extProcTls(params.extProcTls),
    STATS_LISTENER: stats.listener,
    STATS_CLUSTER: stats.cluster,
    HOLD_LIMIT_BYTES: String(holdLimitBytes(params)),
    SAFE_TOOLS_ROUTE: safeToolsRoute(params),
    PIN_HEADER: params.pinHeader,
    UPSTREAM_HEADER: params.upstreamHeader,
    REDIRECTED_SESSION_HEADER,
    MESSAGE_TIMEOUT: seconds(params.messageTimeoutMs),
    MAX_MESSAGE_TIMEOUT: seconds(params.maxMessageTimeoutMs),
    CONNECT_TIMEOUT: seconds(params.connectTimeoutMs),
    RECOVERY_ROUTE_TIMEOUT: seconds(params.recoveryRouteTimeoutMs),
    BUFFER_LIMIT_BYTES: String(params.bufferLimitBytes),
    HEALTH_CHECK_INTERVAL: seconds(params.healthCheckIntervalMs),
    SESSION_SEARCH_RETRIES: String(params.sessionSearchRetries),
  };
  const used = new Set<string>();
  const out = template.replace(/\{\{([A-Z_]+)\}\}/g, (_m, name: string) => {
    const v = values[name];
    if (v === undefined) throw new TemplateError(`envoy template: unknown placeholder {{${name}}}`);
    used.add(name);
    return v;
  });
  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (unused.length > 0) throw new TemplateError(`envoy template: values never used: ${unused.join(', ')}`);
  return out;
}
