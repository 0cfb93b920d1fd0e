/**
 * The Envoy configuration Envoy Gateway v1.8.0 generates from the recipe
 * (deploy/gateway/envoy-gateway.yaml), reproduced by hand in its generated
 * shape from that version's translator (internal/gatewayapi and
 * internal/xds/translator: resource names, the listener's and its
 * connection manager's defaults, the router's suppress_envoy_headers, the
 * per-route enabling of a disabled ext_proc filter, buildRetryPolicy, the
 * clusters' defaults, override_host from endpointOverride), then with the
 * EnvoyProxy's bootstrap patches and the EnvoyPatchPolicy's JSON patches
 * applied as Envoy Gateway applies them (JSONPath to pointers, then RFC 6902;
 * an add with no path adds a resource).
 *
 * Differences from a cluster, all of transport, none of behaviour: the
 * resources are static (Envoy Gateway serves them over ADS), the route
 * configuration is inline (RDS there), the pods come from an EDS file
 * (EndpointSlices there), and the listener port is the test's.
 */
import jsonpatch from 'fast-json-patch';
import { JSONPath } from 'jsonpath-plus';
import { EG_NAMES, EG_ROUTES, ENVOY_GATEWAY, type EgRoute } from '../../scripts/gateway-recipes.js';

// biome-ignore lint/suspicious/noExplicitAny: manifests and xDS resources, walked by the paths Envoy Gateway's translator uses
type Obj = Record<string, any>;

export interface EgEnvironment {
  listenPort: number;
  adminPort: number;
  /** EDS file with the MCP pods (resource name: the service's). */
  edsPath: string;
}

const ANY = (type: string): string => `type.googleapis.com/${type}`;
const ROUTE_FILTER_CONFIG = ANY('envoy.config.route.v3.FilterConfig');
/** Envoy Gateway's defaults (v1.8.0): listener and cluster buffer limit, cluster connect timeout, retry-circuit breaker. */
const EG_DEFAULTS = { bufferLimit: 32768, connectTimeout: '10s', maxRetries: 1024, containerPortOffset: 10000 };

const bytes = (q: string | number | undefined, fallback: number): number => {
  if (q === undefined) return fallback;
  if (typeof q === 'number') return q;
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(q);
  if (!m) throw new Error(`quantity ${q}: not reproduced`);
  return Number(m[1]) * ({ Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[m[2] as 'Ki'] ?? 1);
};
/** A Gateway API Duration ("1ms", "1h30m") as the protobuf Duration Envoy Gateway writes (time.ParseDuration, then durationpb). */
function protoDuration(d: string): string {
  const unit: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  let seconds = 0;
  for (const [, n, u] of d.matchAll(/(\d+)(ms|h|m|s)/g)) seconds += Number(n) * (unit[u as string] as number);
  return `${Number(seconds.toFixed(3))}s`;
}
const by = (docs: Obj[], kind: string): Obj[] => docs.filter((d) => d.kind === kind);
const one = (docs: Obj[], kind: string, name?: string): Obj => {
  const found = by(docs, kind).find((d) => name === undefined || d.metadata.name === name);
  if (!found) throw new Error(`the recipe has no ${kind} ${name ?? ''}`);
  return found;
};
const targets = (policy: Obj, kind: string, name: string): boolean => (policy.spec.targetRefs ?? []).some((t: Obj) => t.kind === kind && t.name === name);

/** Gateway API precedence among the recipe's routes (same path): a method match first, then more header matches. */
function precedence(route: Obj): number {
  const m = route.spec.rules[0].matches[0];
  return (m.method ? 100 : 0) + (m.headers?.length ?? 0);
}

function routeMatch(m: Obj): Obj {
  const headers = (m.headers ?? []).map((h: Obj) => ({
    name: h.name,
    string_match: h.type === 'RegularExpression' ? { safe_regex: { regex: h.value } } : { exact: h.value },
  }));
  if (m.method) headers.push({ name: ':method', string_match: { exact: m.method } });
  // PathPrefix without a trailing slash: path_separated_prefix.
  return { path_separated_prefix: m.path.value, ...(headers.length ? { headers } : {}) };
}

/** buildRetryPolicy (internal/xds/translator/route.go). */
function retryPolicy(retry: Obj): Obj {
  return {
    retry_on: retry.retryOn?.triggers?.join(',') ?? 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
    retriable_status_codes: retry.retryOn?.httpStatusCodes ?? [503],
    num_retries: retry.numRetries ?? 2,
    retry_host_predicate: [
      {
        name: 'envoy.retry_host_predicates.previous_hosts',
        typed_config: { '@type': ANY('envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate') },
      },
    ],
    host_selection_retry_max_attempts: 5,
    ...(retry.perRetry?.backOff
      ? {
          retry_back_off: {
            base_interval: protoDuration(retry.perRetry.backOff.baseInterval),
            max_interval: protoDuration(retry.perRetry.backOff.maxInterval),
          },
        }
      : {}),
  };
}

function roundRobin(): Obj {
  return {
    typed_extension_config: {
      name: 'envoy.load_balancing_policies.round_robin',
      typed_config: {
        '@type': ANY('envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin'),
        locality_lb_config: { locality_weighted_lb_config: {} },
      },
    },
  };
}

export function envoyGatewayXds(docs: Obj[], env: EgEnvironment): Obj {
  const gw = ENVOY_GATEWAY.gateway;
  const ctp = by(docs, 'ClientTrafficPolicy').find((p) => targets(p, 'Gateway', gw.name));
  const eep = one(docs, 'EnvoyExtensionPolicy');
  const extProc = eep.spec.extProc[0];
  const backend = one(docs, 'Backend', extProc.backendRefs[0].name);
  const routes = by(docs, 'HTTPRoute').sort((a, b) => precedence(b) - precedence(a));
  const btp = (route: string): Obj | undefined => by(docs, 'BackendTrafficPolicy').find((p) => targets(p, 'HTTPRoute', route));
  const mode = extProc.processingMode ?? {};

  // ext_proc (internal/xds/translator/extproc.go): disabled in the chain, enabled per route.
  const extProcFilter = {
    name: EG_NAMES.extProcFilter,
    disabled: true,
    typed_config: {
      '@type': ANY('envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor'),
      grpc_service: {
        envoy_grpc: { cluster_name: EG_NAMES.extProcCluster, authority: `${backend.metadata.name}.${backend.metadata.namespace}` },
        timeout: '10s',
      },
      processing_mode: {
        request_header_mode: mode.request ? 'SEND' : 'SKIP',
        response_header_mode: mode.response ? 'SEND' : 'SKIP',
        request_body_mode: 'NONE',
        response_body_mode: 'NONE',
        request_trailer_mode: 'SKIP',
        response_trailer_mode: 'SKIP',
      },
      failure_mode_allow: extProc.failOpen ?? false,
      ...(extProc.messageTimeout ? { message_timeout: protoDuration(extProc.messageTimeout) } : {}),
      ...(mode.request?.attributes ? { request_attributes: mode.request.attributes } : {}),
      ...(mode.response?.attributes ? { response_attributes: mode.response.attributes } : {}),
      allow_mode_override: mode.allowModeOverride ?? false,
    },
  };
  const port = EG_DEFAULTS.containerPortOffset + 80;
  const earlyRemove: string[] = ctp?.spec.headers?.earlyRequestHeaders?.remove ?? [];
  const listener: Obj = {
    name: EG_NAMES.listener,
    address: { socket_address: { address: '127.0.0.1', port_value: env.listenPort } },
    per_connection_buffer_limit_bytes: bytes(ctp?.spec.connection?.bufferLimit, EG_DEFAULTS.bufferLimit),
    max_connections_to_accept_per_socket_event: 1,
    default_filter_chain: {
      name: EG_NAMES.listener,
      filters: [
        {
          name: 'envoy.filters.network.http_connection_manager',
          typed_config: {
            '@type': ANY('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
            stat_prefix: `http-${port}`,
            // Envoy Gateway logs every request to stdout by default (its text format; here with the response details).
            access_log: [
              {
                // (A file logger of /dev/stdout there; the stdout logger here, where stdout is a pipe it cannot open.)
                name: 'envoy.access_loggers.stdout',
                typed_config: {
                  '@type': ANY('envoy.extensions.access_loggers.stream.v3.StdoutAccessLog'),
                  log_format: {
                    text_format_source: {
                      inline_string:
                        '[%START_TIME%] "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%" %RESPONSE_CODE% %RESPONSE_FLAGS% %RESPONSE_CODE_DETAILS% %UPSTREAM_HOST% %UPSTREAM_CLUSTER% %ROUTE_NAME%\n',
                    },
                  },
                },
              },
            ],
            common_http_protocol_options: { headers_with_underscores_action: 'REJECT_REQUEST' },
            http2_protocol_options: { initial_connection_window_size: 1048576, initial_stream_window_size: 65536, max_concurrent_streams: 100 },
            ...(earlyRemove.length
              ? {
                  early_header_mutation_extensions: [
                    {
                      name: 'envoy.http.early_header_mutation.header_mutation',
                      typed_config: {
                        '@type': ANY('envoy.extensions.http.early_header_mutation.header_mutation.v3.HeaderMutation'),
                        mutations: earlyRemove.map((h) => ({ remove: h })),
                      },
                    },
                  ],
                }
              : {}),
            http_filters: [
              extProcFilter,
              {
                name: 'envoy.filters.http.router',
                typed_config: { '@type': ANY('envoy.extensions.filters.http.router.v3.Router'), suppress_envoy_headers: true },
              },
            ],
            merge_slashes: true,
            normalize_path: true,
            path_with_escaped_slashes_action: 'UNESCAPE_AND_REDIRECT',
            rds: { route_config_name: EG_NAMES.listener },
            server_header_transformation: 'PASS_THROUGH',
            use_remote_address: true,
          },
        },
      ],
    },
  };

  const routeConfig: Obj = {
    name: EG_NAMES.listener,
    ignore_port_in_host_matching: true,
    virtual_hosts: [
      {
        name: `${EG_NAMES.listener}/*`,
        domains: ['*'],
        routes: routes.map((r) => {
          const name = r.metadata.name as EgRoute;
          const rule = r.spec.rules[0];
          const policy = btp(name);
          const set: Obj[] = (rule.filters ?? [])
            .filter((f: Obj) => f.type === 'ResponseHeaderModifier')
            .flatMap((f: Obj) => f.responseHeaderModifier.set ?? []);
          return {
            name: `httproute/${ENVOY_GATEWAY.namespace}/${name}/rule/0/match/0/*`,
            match: routeMatch(rule.matches[0]),
            route: {
              cluster: EG_NAMES.cluster(name),
              upgrade_configs: [{ upgrade_type: 'websocket' }],
              ...(rule.timeouts?.request ? { timeout: protoDuration(rule.timeouts.request) } : {}),
              ...(policy?.spec.retry ? { retry_policy: retryPolicy(policy.spec.retry) } : {}),
            },
            ...(set.length
              ? { response_headers_to_add: set.map((h) => ({ header: { key: h.name, value: h.value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })) }
              : {}),
            ...(targets(eep, 'HTTPRoute', name) ? { typed_per_filter_config: { [EG_NAMES.extProcFilter]: { '@type': ROUTE_FILTER_CONFIG, config: {} } } } : {}),
          };
        }),
      },
    ],
  };

  const clusters: Obj[] = EG_ROUTES.map((route) => {
    const policy = btp(route);
    const override = policy?.spec.loadBalancer?.endpointOverride;
    const lb = override
      ? {
          policies: [
            {
              typed_extension_config: {
                name: 'envoy.load_balancing_policies.override_host',
                typed_config: {
                  '@type': ANY('envoy.extensions.load_balancing_policies.override_host.v3.OverrideHost'),
                  fallback_policy: {
                    policies: [
                      {
                        typed_extension_config: {
                          name: 'envoy.load_balancing_policies.round_robin',
                          typed_config: { '@type': ANY('envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin') },
                        },
                      },
                    ],
                  },
                  override_host_sources: override.extractFrom.map((e: Obj) => ({ header: e.header })),
                },
              },
            },
          ],
        }
      : { policies: [roundRobin()] };
    return {
      name: EG_NAMES.cluster(route),
      type: 'EDS',
      eds_cluster_config: { eds_config: { path_config_source: { path: env.edsPath } }, service_name: 'mcp_service' },
      connect_timeout: EG_DEFAULTS.connectTimeout,
      per_connection_buffer_limit_bytes: bytes(policy?.spec.connection?.bufferLimit, EG_DEFAULTS.bufferLimit),
      circuit_breakers: { thresholds: [{ max_retries: EG_DEFAULTS.maxRetries }] },
      common_lb_config: {},
      dns_lookup_family: 'V4_PREFERRED',
      ignore_health_on_host_removal: true,
      load_balancing_policy: lb,
    };
  });
  // The ext_proc backend: a Unix socket (Backend), HTTP/2 (appProtocol h2c).
  clusters.push({
    name: EG_NAMES.extProcCluster,
    type: 'STATIC',
    connect_timeout: EG_DEFAULTS.connectTimeout,
    per_connection_buffer_limit_bytes: EG_DEFAULTS.bufferLimit,
    circuit_breakers: { thresholds: [{ max_retries: EG_DEFAULTS.maxRetries }] },
    common_lb_config: {},
    dns_lookup_family: 'V4_PREFERRED',
    ignore_health_on_host_removal: true,
    load_assignment: {
      cluster_name: EG_NAMES.extProcCluster,
      endpoints: [{ lb_endpoints: backend.spec.endpoints.map((e: Obj) => ({ endpoint: { address: { pipe: { path: e.unix.path } } } })) }],
    },
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': ANY('envoy.extensions.upstreams.http.v3.HttpProtocolOptions'),
        explicit_http_config: { http2_protocol_options: { initial_connection_window_size: 1048576, initial_stream_window_size: 65536 } },
      },
    },
  });

  const xds = { listeners: [listener], routes: [routeConfig], clusters };
  for (const p of by(docs, 'EnvoyPatchPolicy').flatMap((policy) => policy.spec.jsonPatches)) applyPatch(xds, p);

  // Envoy Gateway's bootstrap (internal/xds/bootstrap/bootstrap.yaml.tpl), the parts that shape behaviour, then the EnvoyProxy's patches.
  let bootstrap: Obj = {
    node: { id: 'envoy-gateway-proxy', cluster: `${ENVOY_GATEWAY.namespace}/${gw.name}` },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: env.adminPort } } },
    layered_runtime: {
      layers: [
        {
          name: 'global_config',
          static_layer: {
            'envoy.restart_features.use_eds_cache_for_ads': true,
            're2.max_program_size.error_level': 4294967295,
            're2.max_program_size.warn_level': 1000,
          },
        },
      ],
    },
  };
  for (const proxy of by(docs, 'EnvoyProxy')) {
    if (proxy.spec.bootstrap?.type === 'JSONPatch') bootstrap = jsonpatch.applyPatch(bootstrap, proxy.spec.bootstrap.jsonPatches, true, false).newDocument;
  }
  // Served over ADS there; static here, with each listener's route configuration inline.
  const withRoutes = xds.listeners.map((l) => {
    for (const chain of [l.default_filter_chain, ...(l.filter_chains ?? [])].filter(Boolean)) {
      for (const f of chain.filters) {
        const hcm = f.typed_config;
        if (hcm?.rds) {
          hcm.route_config = xds.routes.find((r) => r.name === hcm.rds.route_config_name);
          delete hcm.rds;
        }
      }
    }
    return l;
  });
  return { ...bootstrap, static_resources: { listeners: withRoutes, clusters: xds.clusters } };
}

/** One EnvoyPatchPolicy patch (internal/xds/translator/jsonpatch.go): an add without path adds a resource; else JSONPath, then the path, then RFC 6902. */
function applyPatch(xds: { listeners: Obj[]; routes: Obj[]; clusters: Obj[] }, p: Obj): void {
  const list = p.type.endsWith('Listener')
    ? xds.listeners
    : p.type.endsWith('RouteConfiguration')
      ? xds.routes
      : p.type.endsWith('.Cluster')
        ? xds.clusters
        : undefined;
  if (!list) throw new Error(`patch type ${p.type}: not reproduced`);
  const op = p.operation;
  if (op.op === 'add' && !op.path && !op.jsonPath) {
    list.push(structuredClone(op.value));
    return;
  }
  const index = list.findIndex((r) => r.name === p.name);
  if (index < 0) throw new Error(`EnvoyPatchPolicy: ${p.type} ${p.name}: resource not found`);
  const doc = list[index] as Obj;
  const pointers: string[] = op.jsonPath ? (JSONPath({ path: op.jsonPath, json: doc, resultType: 'pointer' }) as string[]) : [''];
  if (pointers.length === 0) throw new Error(`EnvoyPatchPolicy: ${p.name}: jsonPath ${op.jsonPath} matched nothing`);
  const ops = pointers.map((ptr) => ({
    op: op.op,
    path: `${ptr}${op.path ?? ''}`,
    ...(op.value !== undefined ? { value: structuredClone(op.value) } : {}),
    ...(op.from ? { from: op.from } : {}),
  }));
  list[index] = jsonpatch.applyPatch(doc, ops as jsonpatch.Operation[], true, false).newDocument;
}
