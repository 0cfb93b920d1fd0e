/**
 * The Envoy configuration Istio 1.30.3's ingress gateway gets from the
 * recipe (deploy/gateway/istio.yaml), reproduced by hand in its generated
 * shape from that version's pilot (pkg/model/gateway.go: the listener and
 * route names; networking/core: the connection manager's filters in order,
 * the virtual host with the attempt count, route matches with headers sorted
 * by name, ConvertPolicy's retries, timeouts, response headers; the
 * outbound clusters and their subsets), then with the EnvoyFilter's patches
 * applied as pilot applies them (INSERT_BEFORE the router, MERGE with
 * pkg/proto/merge: lists appended, maps replaced by key, messages merged,
 * an Any replaced whole; ADD appends), and the Deployment patch's
 * runtimeValues in the bootstrap's runtime.
 *
 * What differs, and why: Istio's own filters (istio.metadata_exchange,
 * istio.alpn, istio.stats, a stats and telemetry set built into Istio's
 * proxy, not into upstream Envoy) are left out; the pods have no sidecar,
 * so the clusters' Istio mTLS transport socket matches are left out (they
 * choose plaintext for such pods); resources are static (ADS there), the
 * route configuration inline (RDS), the pods from an EDS file.
 */
import { ISTIO, ISTIO_NAMES } from '../../scripts/gateway-recipes.js';

// biome-ignore lint/suspicious/noExplicitAny: manifests and xDS resources, walked by the paths pilot uses
type Obj = Record<string, any>;

export interface IstioEnvironment {
  listenPort: number;
  adminPort: number;
  edsPath: string;
}

const ANY = (type: string): string => `type.googleapis.com/${type}`;
const MAX = 4294967295;
/** Fields of the xDS messages the recipe's patches touch that are proto maps (merged by key, each value replaced). */
const MAP_FIELDS = new Set(['typed_per_filter_config', 'typed_extension_protocol_options', 'filter_metadata', 'typed_filter_metadata']);

/** pkg/proto/merge on the JSON form: lists appended, maps replaced by key, an Any replaced whole, messages merged, scalars set. */
export function protoMerge(dst: Obj, src: Obj, field = ''): Obj {
  if ('@type' in src) return structuredClone(src);
  const out = { ...dst };
  for (const [k, v] of Object.entries(src)) {
    if (Array.isArray(v)) out[k] = [...(Array.isArray(out[k]) ? out[k] : []), ...structuredClone(v)];
    else if (v && typeof v === 'object') {
      if (MAP_FIELDS.has(field)) out[k] = structuredClone(v);
      else out[k] = protoMerge(out[k] && typeof out[k] === 'object' ? out[k] : {}, v, k);
    } else out[k] = v;
  }
  return out;
}

/** retry.ConvertPolicy (pilot/pkg/networking/core/route/retry). */
function retryPolicy(retries: Obj | undefined): Obj | undefined {
  const previousHosts = [
    {
      name: 'envoy.retry_host_predicates.previous_hosts',
      typed_config: { '@type': ANY('envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate') },
    },
  ];
  if (!retries)
    return {
      num_retries: 2,
      retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
      host_selection_retry_max_attempts: 5,
      retry_host_predicate: previousHosts,
    };
  if ((retries.attempts ?? 0) <= 0) return undefined;
  const out: Obj = {
    num_retries: retries.attempts,
    retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
    host_selection_retry_max_attempts: 5,
    retry_host_predicate: previousHosts,
  };
  if (retries.retryOn) {
    const parts = String(retries.retryOn)
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const codes = parts.filter((p) => /^\d{3}$/.test(p)).map(Number);
    out.retry_on = parts.filter((p) => !/^\d{3}$/.test(p)).join(',');
    if (codes.length) {
      out.retriable_status_codes = codes;
      if (!out.retry_on.includes('retriable-status-codes')) out.retry_on += ',retriable-status-codes';
    }
  }
  if (retries.retryIgnorePreviousHosts === false) delete out.retry_host_predicate;
  if (retries.backoff) out.retry_back_off = { base_interval: retries.backoff };
  return out;
}

function routeMatch(m: Obj): Obj {
  const headers = Object.entries((m.headers ?? {}) as Record<string, Obj>)
    .map(([name, sm]) => ({
      name,
      string_match: sm.regex !== undefined ? { safe_regex: { regex: sm.regex } } : sm.prefix !== undefined ? { prefix: sm.prefix } : { exact: sm.exact },
    }))
    .sort((a, b) => (a.name < b.name ? -1 : 1));
  if (m.method) headers.push({ name: ':method', string_match: { exact: m.method.exact } });
  return { prefix: m.uri.prefix, case_sensitive: !m.ignoreUriCase, ...(headers.length ? { headers } : {}) };
}

function outboundCluster(name: string, edsPath: string): Obj {
  return {
    name,
    type: 'EDS',
    eds_cluster_config: { eds_config: { path_config_source: { path: edsPath } }, service_name: 'mcp_service' },
    connect_timeout: '10s',
    lb_policy: 'LEAST_REQUEST',
    circuit_breakers: { thresholds: [{ max_connections: MAX, max_pending_requests: MAX, max_requests: MAX, max_retries: MAX, track_remaining: true }] },
    common_lb_config: {},
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': ANY('envoy.extensions.upstreams.http.v3.HttpProtocolOptions'),
        common_http_protocol_options: { idle_timeout: '3600s' },
        use_downstream_protocol_config: { http_protocol_options: {}, http2_protocol_options: {} },
      },
    },
  };
}

export function istioXds(docs: Obj[], deploymentPatch: Obj, env: IstioEnvironment): Obj {
  const vs = docs.find((d) => d.kind === 'VirtualService') as Obj;
  const routes = (vs.spec.http as Obj[]).map((h) => {
    const d = h.route[0].destination;
    const cluster = `outbound|${d.port.number}|${d.subset ?? ''}|${d.host}`;
    const retry = retryPolicy(h.retries);
    const set = Object.entries((h.headers?.response?.set ?? {}) as Record<string, string>);
    return {
      name: h.name,
      match: routeMatch(h.match[0]),
      route: { cluster, timeout: h.timeout ?? '0s', max_grpc_timeout: '0s', ...(retry ? { retry_policy: retry } : {}) },
      decorator: { operation: `${d.host}:${d.port.number}${h.match[0].uri.prefix}*` },
      ...(set.length ? { response_headers_to_add: set.map(([key, value]) => ({ header: { key, value }, append_action: 'OVERWRITE_IF_EXISTS_OR_ADD' })) } : {}),
    };
  });
  const clusterNames = [...new Set(routes.map((r) => r.route.cluster))];
  const router = { name: 'envoy.filters.http.router', typed_config: { '@type': ANY('envoy.extensions.filters.http.router.v3.Router') } };
  const listener: Obj = {
    name: ISTIO_NAMES.listener,
    address: { socket_address: { address: '127.0.0.1', port_value: env.listenPort } },
    filter_chains: [
      {
        filters: [
          {
            name: 'envoy.filters.network.http_connection_manager',
            typed_config: {
              '@type': ANY('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager'),
              stat_prefix: `outbound_${ISTIO_NAMES.listener}`,
              // (istio.metadata_exchange first, istio.alpn after grpc_stats, istio.stats after cors: Istio's proxy only.)
              http_filters: [
                {
                  name: 'envoy.filters.http.grpc_stats',
                  typed_config: {
                    '@type': ANY('envoy.extensions.filters.http.grpc_stats.v3.FilterConfig'),
                    emit_filter_state: true,
                    stats_for_all_methods: false,
                  },
                },
                { name: 'envoy.filters.http.fault', typed_config: { '@type': ANY('envoy.extensions.filters.http.fault.v3.HTTPFault') } },
                { name: 'envoy.filters.http.cors', typed_config: { '@type': ANY('envoy.extensions.filters.http.cors.v3.Cors') } },
                router,
              ],
              use_remote_address: true,
              forward_client_cert_details: 'SANITIZE_SET',
              upgrade_configs: [{ upgrade_type: 'websocket' }],
              normalize_path: true,
              path_with_escaped_slashes_action: 'KEEP_UNCHANGED',
              request_id_extension: {
                typed_config: { '@type': ANY('envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig'), use_request_id_for_trace_sampling: true },
              },
              rds: { route_config_name: ISTIO_NAMES.routeConfig },
            },
          },
        ],
      },
    ],
  };
  const xds = {
    listeners: [listener],
    routes: [
      {
        name: ISTIO_NAMES.routeConfig,
        validate_clusters: false,
        virtual_hosts: [{ name: ISTIO_NAMES.virtualHost, domains: ['*'], routes, include_request_attempt_count: true }],
      },
    ],
    clusters: clusterNames.map((n) => outboundCluster(n, env.edsPath)),
  };

  for (const ef of docs.filter((d) => d.kind === 'EnvoyFilter')) for (const p of ef.spec.configPatches) applyEnvoyFilterPatch(xds, p);

  // The bootstrap's runtime: Istio's "global config" layer with the Deployment patch's runtimeValues.
  const annotation = deploymentPatch.spec.template.metadata?.annotations?.['proxy.istio.io/config'];
  const runtimeValues = annotation ? (JSON.parse(annotation).runtimeValues as Record<string, string>) : {};
  const flags = Object.fromEntries(Object.entries(runtimeValues).map(([k, v]) => [k, v === 'true' ? true : v === 'false' ? false : v]));
  for (const l of xds.listeners) {
    for (const chain of l.filter_chains ?? []) {
      for (const f of chain.filters) {
        const hcm = f.typed_config;
        if (hcm?.rds) {
          hcm.route_config = xds.routes.find((r) => r.name === hcm.rds.route_config_name);
          delete hcm.rds;
        }
      }
    }
  }
  return {
    node: {
      id: `router~10.0.0.1~${ISTIO.gatewayDeployment}.${ISTIO.gatewayNamespace}~${ISTIO.gatewayNamespace}.svc.cluster.local`,
      cluster: `${ISTIO.gatewayDeployment}.${ISTIO.gatewayNamespace}`,
    },
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: env.adminPort } } },
    layered_runtime: {
      layers: [
        { name: 'global config', static_layer: flags },
        { name: 'admin', admin_layer: {} },
      ],
    },
    static_resources: { listeners: xds.listeners, clusters: xds.clusters },
  };
}

function hcmOf(listener: Obj): Obj | undefined {
  return listener.filter_chains?.[0]?.filters?.find((f: Obj) => f.name === 'envoy.filters.network.http_connection_manager')?.typed_config;
}

/** One configPatch of an EnvoyFilter, as pilot's envoyfilter package applies it to a gateway's resources. */
function applyEnvoyFilterPatch(xds: { listeners: Obj[]; routes: Obj[]; clusters: Obj[] }, p: Obj): void {
  const { operation, value } = p.patch;
  const m = p.match ?? {};
  switch (p.applyTo) {
    case 'HTTP_FILTER': {
      const port = m.listener?.portNumber;
      for (const l of xds.listeners) {
        if (port !== undefined && l.name !== `0.0.0.0_${port}`) continue;
        const hcm = hcmOf(l);
        if (!hcm) continue;
        const at = hcm.http_filters.findIndex((f: Obj) => f.name === m.listener?.filterChain?.filter?.subFilter?.name);
        if (operation !== 'INSERT_BEFORE' || at < 0) throw new Error(`HTTP_FILTER ${operation}: not reproduced`);
        hcm.http_filters.splice(at, 0, structuredClone(value));
      }
      return;
    }
    case 'HTTP_ROUTE': {
      if (operation !== 'MERGE') throw new Error(`HTTP_ROUTE ${operation}: not reproduced`);
      let applied = false;
      for (const rc of xds.routes)
        for (const vh of rc.virtual_hosts) {
          if (m.routeConfiguration?.vhost?.name && vh.name !== m.routeConfiguration.vhost.name) continue;
          vh.routes = vh.routes.map((r: Obj) => {
            if (m.routeConfiguration?.vhost?.route?.name && r.name !== m.routeConfiguration.vhost.route.name) return r;
            applied = true;
            return protoMerge(r, value);
          });
        }
      if (!applied) throw new Error(`HTTP_ROUTE patch for ${JSON.stringify(m.routeConfiguration)} matched no route`);
      return;
    }
    case 'CLUSTER': {
      if (operation === 'ADD') {
        xds.clusters.push(structuredClone(value));
        return;
      }
      if (operation !== 'MERGE') throw new Error(`CLUSTER ${operation}: not reproduced`);
      const c = m.cluster ?? {};
      const name = c.name ?? `outbound|${c.portNumber}|${c.subset ?? ''}|${c.service}`;
      const i = xds.clusters.findIndex((x) => x.name === name);
      if (i < 0) throw new Error(`CLUSTER MERGE: no cluster ${name}`);
      xds.clusters[i] = protoMerge(xds.clusters[i] as Obj, value);
      return;
    }
    case 'LISTENER': {
      if (operation !== 'ADD') throw new Error(`LISTENER ${operation}: not reproduced`);
      xds.listeners.push(structuredClone(value));
      return;
    }
    default:
      throw new Error(`applyTo ${p.applyTo}: not reproduced`);
  }
}
