/**
 * The Envoy Gateway recipe (deploy/gateway/envoy-gateway.yaml, written by
 * `npm run render:deploy`): the manifests that give Envoy Gateway's proxies
 * mcp-pin. What Envoy Gateway expresses itself, it does (HTTPRoutes, the
 * ext_proc filter from an EnvoyExtensionPolicy, endpoint override and
 * retries from BackendTrafficPolicies, early header removal and buffer
 * limits from a ClientTrafficPolicy, mcp-pin beside Envoy from an
 * EnvoyProxy); the rest comes from an EnvoyPatchPolicy whose values are cut
 * from the rendered template's pieces (envoy/pieces.ts), so they are the
 * very filters and listener the tests run.
 *
 * Written from Envoy Gateway v1.8.0's API types and translator (names of
 * generated resources: internal/gatewayapi and internal/xds/translator at
 * that tag), which ships Envoy 1.38.0 and Gateway API v1.5.1.
 */
import { parse } from 'yaml';
import { cutPieces } from '../envoy/pieces.js';
import { renderEnvoyConfig } from '../envoy/render.js';
import { paramsFromValues } from '../envoy/values.js';

export const ENVOY_GATEWAY = {
  version: 'v1.8.0',
  envoy: '1.38',
  gatewayApi: 'v1.5.1',
  /** Where the MCP server, its routes and policies live (and the Gateway, in this recipe). */
  namespace: 'mcp',
  gateway: { name: 'eg', listener: 'http' },
  /** Envoy Gateway's proxies run here (its default): mcp-pin's ConfigMap and the Redis Secret go here too. */
  proxyNamespace: 'envoy-gateway-system',
  service: { name: 'mcp-server', port: 8080 },
  /** A headless Service of the same pods: mcp-pin's pin allowlist resolves it to the pod addresses. */
  podsService: 'mcp-server-pods',
  path: '/mcp',
  mcpPinSocket: '/run/mcp-pin/mcp-pin.sock',
  internalSocket: '/run/mcp-pin/envoy-internal.sock',
  /** The policy and filter names below are Envoy Gateway's, derived from these. */
  extProcPolicy: 'mcp-pin',
} as const;

/** The HTTPRoutes, most specific first (Gateway API precedence: method, then header count). */
export const EG_ROUTES = ['mcp-pinned-delete', 'mcp-pinned', 'mcp-search', 'mcp'] as const;
export type EgRoute = (typeof EG_ROUTES)[number];

const ns = ENVOY_GATEWAY.namespace;
/** Names Envoy Gateway v1.8.0 gives what it generates (irRouteDestinationName, irListenerName, irIndexedExtServiceDestinationName, perRouteFilterName). */
export const EG_NAMES = {
  listener: `${ns}/${ENVOY_GATEWAY.gateway.name}/${ENVOY_GATEWAY.gateway.listener}`,
  cluster: (route: EgRoute): string => `httproute/${ns}/${route}/rule/0`,
  extProcCluster: `envoyextensionpolicy/${ns}/${ENVOY_GATEWAY.extProcPolicy}/extproc/0`,
  /** The :authority of its streams: <backend>.<namespace> (buildExtProc). */
  extProcAuthority: `mcp-pin.${ns}`,
  extProcFilter: `envoy.filters.http.ext_proc/envoyextensionpolicy/${ns}/${ENVOY_GATEWAY.extProcPolicy}/extproc/0`,
  internalListener: 'mcp-pin-internal',
};

/** Template values for mcp-pin beside Envoy Gateway's Envoy: the sockets of the proxy pod; no route there is chosen by the method. */
export function envoyGatewayValues(): Record<string, unknown> {
  const pods = `dns:${ENVOY_GATEWAY.podsService}.${ns}.svc.cluster.local:${ENVOY_GATEWAY.service.port}`;
  return {
    extProc: `unix:${ENVOY_GATEWAY.mcpPinSocket}`,
    internalAddress: `unix:${ENVOY_GATEWAY.internalSocket}`,
    // Envoy Gateway discovers the pods itself; the template needs a service to render its pieces.
    service: pods,
    envoyVersion: ENVOY_GATEWAY.envoy,
    // No replay route (Envoy Gateway's routes cannot match the MCP filter's metadata), so nothing is held.
    holdSafeResponses: false,
    replayAfterReset: '',
    mcpPin: { pinAllow: pods },
  };
}

type Obj = Record<string, unknown>;
const LOST = [404, 400];
const BACKOFF = { baseInterval: '1ms', maxInterval: '5ms' };
/** Headers mcp-pin and Envoy use between themselves: a client's are dropped before anything routes on them. */
const PIN_HEADERS = ['x-mcp-pin-dst', 'x-mcp-pin-upstream', 'x-mcp-pin-client-session', 'x-mcp-pin-searched', 'x-mcp-pin-role', 'x-mcp-pin-envoy-reply'];

/**
 * A session recovered before is known to its pod by another id: mcp-pin puts
 * the client's in x-mcp-pin-client-session, and this puts it back on the
 * answer (absent, Envoy adds no empty header: nothing changes).
 */
const CLIENT_SESSION_BACK = {
  type: 'ResponseHeaderModifier',
  responseHeaderModifier: { set: [{ name: 'mcp-session-id', value: '%REQ(x-mcp-pin-client-session)%' }] },
};

function httpRoute(name: EgRoute, headers: Obj[], method?: string, filters?: Obj[]): Obj {
  return {
    apiVersion: 'gateway.networking.k8s.io/v1',
    kind: 'HTTPRoute',
    metadata: { name, namespace: ns },
    spec: {
      parentRefs: [{ name: ENVOY_GATEWAY.gateway.name, sectionName: ENVOY_GATEWAY.gateway.listener }],
      rules: [
        {
          matches: [{ path: { type: 'PathPrefix', value: ENVOY_GATEWAY.path }, ...(headers.length ? { headers } : {}), ...(method ? { method } : {}) }],
          backendRefs: [{ name: ENVOY_GATEWAY.service.name, port: ENVOY_GATEWAY.service.port }],
          ...(filters ? { filters } : {}),
          // SSE streams live as long as they need.
          timeouts: { request: '0s' },
        },
      ],
    },
  };
}

const present = (name: string): Obj => ({ type: 'RegularExpression', name, value: '.+' });
const toRoute = (route: EgRoute): Obj => ({ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: route });

function trafficPolicy(route: EgRoute, spec: Obj): Obj {
  return {
    apiVersion: 'gateway.envoyproxy.io/v1alpha1',
    kind: 'BackendTrafficPolicy',
    metadata: { name: route, namespace: ns },
    spec: { targetRefs: [toRoute(route)], connection: { bufferLimit: '1Mi' }, ...spec },
  };
}

/**
 * The pieces rendered from these values (envoy/pieces.ts), parsed, with the
 * template's names replaced (field -> old value -> new value). An ext_proc
 * call to a renamed cluster gets Envoy Gateway's authority: Envoy sends the
 * cluster name as the gRPC :authority unless told otherwise, and Envoy
 * Gateway's has slashes, which Node's HTTP/2 refuses as a protocol error.
 */
function renamedPieces(values: Record<string, unknown>, renamed: Record<string, Record<string, string>>): (file: string) => unknown {
  const rendered = renderEnvoyConfig(paramsFromValues(values as Parameters<typeof paramsFromValues>[0]));
  const pieces = cutPieces(rendered, { routePrefix: ENVOY_GATEWAY.path });
  const rename = (v: unknown, key = ''): unknown => {
    if (Array.isArray(v)) return v.map((x) => rename(x));
    if (v && typeof v === 'object') {
      const out = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, rename(x, k)]));
      if (out.cluster_name === EG_NAMES.extProcCluster) out.authority = EG_NAMES.extProcAuthority;
      return out;
    }
    return typeof v === 'string' ? (renamed[key]?.[v] ?? v) : v;
  };
  return (file) => rename(parse(pieces.get(file) as string));
}

/** The pinned and search clusters' upstream filters and the internal listener, cut from the rendered template and renamed for Envoy Gateway. */
function templatePieces(): { pinnedOptions: Obj; searchOptions: Obj; internalListener: Obj } {
  const pieces = renamedPieces(envoyGatewayValues(), {
    cluster_name: { mcp_pin: EG_NAMES.extProcCluster },
    cluster: { mcp_pinned: EG_NAMES.cluster('mcp-pinned') },
  });
  const clusters = pieces('clusters.yaml') as Obj[];
  const listeners = pieces('listeners.yaml') as Obj[];
  const cluster = (name: string): Obj => clusters.find((c) => c.name === name)?.typed_extension_protocol_options as Obj;
  const internal = listeners.find((l) => l.name === 'mcp_pin_internal') as Obj;
  return { pinnedOptions: cluster('mcp_pinned'), searchOptions: cluster('mcp_search'), internalListener: { ...internal, name: EG_NAMES.internalListener } };
}

/**
 * mcp-pin as a container of the gateway's Envoy pod (as in deploy/k8s): its
 * values file from the ConfigMap, the store URL built from the Redis Secret
 * in its environment, the sockets on the pod's own emptyDir.
 */
function mcpPinContainer(image: string, redisNamespace: string): Obj {
  return {
    name: 'mcp-pin',
    image,
    env: [
      { name: 'REDIS_PASSWORD', valueFrom: { secretKeyRef: { name: 'redis-auth', key: 'password' } } },
      { name: 'MCP_PIN_STORE_URL', value: `redis://:$(REDIS_PASSWORD)@redis.${redisNamespace}.svc.cluster.local:6379` },
      { name: 'MCP_PIN_CONFIG', value: '/etc/mcp-pin/values.json' },
    ],
    volumeMounts: [
      { name: 'mcp-pin-config', mountPath: '/etc/mcp-pin', readOnly: true },
      { name: 'mcp-pin-sockets', mountPath: '/run/mcp-pin' },
    ],
    ports: [{ name: 'metrics', containerPort: 9464 }],
    // Ready only while the store answers; alive is not the same as ready.
    readinessProbe: { httpGet: { path: '/healthz', port: 'metrics' }, periodSeconds: 2 },
    livenessProbe: { tcpSocket: { port: 'metrics' }, periodSeconds: 10 },
    resources: { requests: { cpu: '100m', memory: '160Mi' }, limits: { memory: '320Mi' } },
    securityContext: { runAsUser: 10001, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
  };
}

/** What a gateway's pod spec gets (a strategic-merge patch): mcp-pin, its values file, the sockets it shares with the proxy container. */
function mcpPinPodSpec(proxyContainer: string, image: string, redisNamespace: string): Obj {
  return {
    containers: [{ name: proxyContainer, volumeMounts: [{ name: 'mcp-pin-sockets', mountPath: '/run/mcp-pin' }] }, mcpPinContainer(image, redisNamespace)],
    volumes: [
      { name: 'mcp-pin-sockets', emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
      { name: 'mcp-pin-config', configMap: { name: 'mcp-pin-config' } },
    ],
  };
}

/** Every resource of the recipe, in the order to apply them. */
export function envoyGatewayRecipe(mcpPinImage = 'mcp-pin:0.1.0'): Obj[] {
  const { pinnedOptions, searchOptions, internalListener } = templatePieces();
  const patch = (type: string, name: string, operation: Obj): Obj => ({ type: `type.googleapis.com/envoy.config.${type}`, name, operation });
  const searchRoute = `$.virtual_hosts[*].routes[?(@.route.cluster=='${EG_NAMES.cluster('mcp-search')}')]`;
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'mcp-pin-config', namespace: ENVOY_GATEWAY.proxyNamespace },
      data: { 'values.json': `${JSON.stringify(envoyGatewayValues(), null, 2)}\n` },
    },
    {
      // The pods once more, headless: mcp-pin's pin allowlist resolves it to their addresses.
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: ENVOY_GATEWAY.podsService, namespace: ns },
      spec: { clusterIP: 'None', selector: { app: ENVOY_GATEWAY.service.name }, ports: [{ name: 'mcp', port: ENVOY_GATEWAY.service.port }] },
    },
    {
      // mcp-pin in every Envoy pod, reaching Envoy through Unix sockets on the pod's own emptyDir.
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'EnvoyProxy',
      metadata: { name: 'mcp-pin', namespace: ns },
      spec: {
        provider: {
          type: 'Kubernetes',
          kubernetes: {
            envoyDeployment: {
              patch: {
                type: 'StrategicMerge',
                value: {
                  spec: {
                    template: {
                      spec: mcpPinPodSpec('envoy', mcpPinImage, ns),
                    },
                  },
                },
              },
            },
          },
        },
        // Envoy closes ext_proc streams gracefully (docs/own-envoy.md: Node's HTTP/2 stack refuses streams after many resets).
        bootstrap: {
          type: 'JSONPatch',
          jsonPatches: [
            {
              op: 'add',
              path: '/layered_runtime/layers/-',
              value: { name: 'mcp_pin_defaults', static_layer: { 'envoy.reloadable_features.ext_proc_graceful_grpc_close': true } },
            },
          ],
        },
      },
    },
    {
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'Backend',
      metadata: { name: 'mcp-pin', namespace: ns },
      spec: { endpoints: [{ unix: { path: ENVOY_GATEWAY.mcpPinSocket } }], appProtocols: ['gateway.envoyproxy.io/h2c'] },
    },
    // A pinned DELETE ends the session: to its pod, never retried elsewhere.
    httpRoute('mcp-pinned-delete', [present('x-mcp-pin-dst')], 'DELETE', [CLIENT_SESSION_BACK]),
    // Pinned (mcp-pin set the pin header; every pinned request carries its session id, which makes this route more specific than the search).
    httpRoute('mcp-pinned', [present('x-mcp-pin-dst'), present('mcp-session-id')], undefined, [CLIENT_SESSION_BACK]),
    // A session mcp-pin does not know: the pods are asked in turn.
    httpRoute('mcp-search', [present('mcp-session-id')]),
    // Everything else (initialize): load-balanced.
    httpRoute('mcp', []),
    {
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'ClientTrafficPolicy',
      metadata: { name: 'mcp-pin', namespace: ns },
      spec: {
        targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: ENVOY_GATEWAY.gateway.name }],
        // Before any route is chosen, so a client's pin header never routes anything.
        headers: { earlyRequestHeaders: { remove: PIN_HEADERS } },
        // Bodies Envoy keeps for a retry and the initialize mcp-pin stores (Envoy Gateway's default: 32 KiB).
        connection: { bufferLimit: '1Mi' },
      },
    },
    {
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'EnvoyExtensionPolicy',
      metadata: { name: ENVOY_GATEWAY.extProcPolicy, namespace: ns },
      spec: {
        targetRefs: EG_ROUTES.map(toRoute),
        extProc: [
          {
            backendRefs: [{ group: 'gateway.envoyproxy.io', kind: 'Backend', name: 'mcp-pin' }],
            messageTimeout: '1s',
            failOpen: false,
            processingMode: { request: {}, response: { attributes: ['upstream.address', 'response.flags', 'response.code_details'] }, allowModeOverride: true },
          },
        ],
      },
    },
    trafficPolicy('mcp-pinned-delete', { loadBalancer: { type: 'RoundRobin', endpointOverride: { extractFrom: [{ header: 'x-mcp-pin-dst' }] } } }),
    trafficPolicy('mcp-pinned', {
      loadBalancer: { type: 'RoundRobin', endpointOverride: { extractFrom: [{ header: 'x-mcp-pin-dst' }] } },
      retry: { numRetries: 2, retryOn: { triggers: ['connect-failure', 'retriable-status-codes'], httpStatusCodes: LOST }, perRetry: { backOff: BACKOFF } },
    }),
    trafficPolicy('mcp-search', {
      retry: { numRetries: 63, retryOn: { triggers: ['connect-failure', 'retriable-status-codes'], httpStatusCodes: LOST }, perRetry: { backOff: BACKOFF } },
    }),
    trafficPolicy('mcp', { retry: { numRetries: 63, retryOn: { triggers: ['connect-failure'] }, perRetry: { backOff: BACKOFF } } }),
    {
      // What Envoy Gateway cannot express. Needs extensionApis.enableEnvoyPatchPolicy in Envoy Gateway's config.
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'EnvoyPatchPolicy',
      metadata: { name: 'mcp-pin', namespace: ns },
      spec: {
        targetRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: ENVOY_GATEWAY.gateway.name },
        type: 'JSONPatch',
        jsonPatches: [
          // Envoy numbers every attempt: the pinned cluster's recovery filter runs on retries only.
          patch('route.v3.RouteConfiguration', EG_NAMES.listener, {
            op: 'add',
            jsonPath: '$.virtual_hosts[*]',
            path: '/include_request_attempt_count',
            value: true,
          }),
          // A search asks each pod once: enough host picks to find one not yet asked.
          patch('route.v3.RouteConfiguration', EG_NAMES.listener, {
            op: 'replace',
            jsonPath: searchRoute,
            path: '/route/retry_policy/host_selection_retry_max_attempts',
            value: 64,
          }),
          // The response phase only where mcp-pin asks for it (the policy's response attributes turn it on for every request).
          patch('listener.v3.Listener', EG_NAMES.listener, {
            op: 'replace',
            jsonPath: `$..http_filters[?(@.name=='${EG_NAMES.extProcFilter}')]`,
            path: '/typed_config/processing_mode/response_header_mode',
            value: 'SKIP',
          }),
          // The pinned cluster's upstream filters: the pin header off once the pod is chosen; mcp-pin on retries (the recovery).
          patch('cluster.v3.Cluster', EG_NAMES.cluster('mcp-pinned'), { op: 'add', path: '/typed_extension_protocol_options', value: pinnedOptions }),
          patch('cluster.v3.Cluster', EG_NAMES.cluster('mcp-pinned-delete'), { op: 'add', path: '/typed_extension_protocol_options', value: pinnedOptions }),
          // The search cluster's: mcp-pin ends a search at the first pod asked twice.
          patch('cluster.v3.Cluster', EG_NAMES.cluster('mcp-search'), { op: 'add', path: '/typed_extension_protocol_options', value: searchOptions }),
          // The internal listener mcp-pin re-initializes through, on the pod's socket.
          patch('listener.v3.Listener', EG_NAMES.internalListener, { op: 'add', value: internalListener }),
        ],
      },
    },
  ];
}

/**
 * The Istio recipe (deploy/gateway/istio.yaml and istio-gateway-patch.yaml):
 * an ingress gateway's routes as a VirtualService (retries, timeouts, the
 * client's session id back), the pinned and search clusters as
 * DestinationRule subsets of the same pods, and an EnvoyFilter carrying
 * mcp-pin's filters, the clusters' load balancing and upstream filters, the
 * mcp-pin cluster and the internal listener, cut from the template's pieces.
 *
 * Written from Istio 1.30.3 (istio/istio at that tag: the CRDs in
 * manifests/charts/base/files/crd-all.gen.yaml, pilot's gateway, route,
 * retry and EnvoyFilter code), whose proxy builds Envoy main of 2026-06-30
 * (istio/proxy 81864a1, between 1.38 and 1.39).
 */
export const ISTIO = {
  version: '1.30.3',
  envoy: '1.38',
  namespace: 'mcp',
  /** The ingress gateway's namespace and its pods' label (Istio's defaults). */
  gatewayNamespace: 'istio-system',
  gatewayLabels: { istio: 'ingressgateway' },
  gatewayDeployment: 'istio-ingressgateway',
  /** Service port 80 on the gateway's container port 8080 (the default ingress gateway). */
  serverPort: 80,
  targetPort: 8080,
  host: `${ENVOY_GATEWAY.service.name}.mcp.svc.cluster.local`,
  mcpPinSocket: '/run/mcp-pin/mcp-pin.sock',
  internalSocket: '/run/mcp-pin/envoy-internal.sock',
} as const;

/** Names Istio 1.30.3 gives what it generates (gatewayRDSRouteName, util.DomainName, BuildSubsetKey). */
export const ISTIO_NAMES = {
  listener: `0.0.0.0_${ISTIO.targetPort}`,
  routeConfig: `http.${ISTIO.targetPort}`,
  virtualHost: `*:${ISTIO.serverPort}`,
  cluster: (subset: 'pinned' | 'search' | ''): string => `outbound|${ENVOY_GATEWAY.service.port}|${subset}|${ISTIO.host}`,
};

export const ISTIO_ROUTES = ['mcp-pinned-delete', 'mcp-pinned', 'mcp-search', 'mcp'] as const;
/** Each route's place in the whole config's route list (envoy/envoy.template.yaml): pinned DELETE, pinned, search, service. */
const WHOLE_CONFIG_ROUTE: Record<(typeof ISTIO_ROUTES)[number], number> = { 'mcp-pinned-delete': 2, 'mcp-pinned': 4, 'mcp-search': 5, mcp: 6 };

export function istioValues(): Record<string, unknown> {
  const pods = `dns:${ENVOY_GATEWAY.podsService}.${ISTIO.namespace}.svc.cluster.local:${ENVOY_GATEWAY.service.port}`;
  return {
    extProc: `unix:${ISTIO.mcpPinSocket}`,
    internalAddress: `unix:${ISTIO.internalSocket}`,
    service: pods,
    envoyVersion: ISTIO.envoy,
    holdSafeResponses: false,
    replayAfterReset: '',
    mcpPin: { pinAllow: pods },
  };
}

/** The pieces the EnvoyFilter carries, with the template's cluster names replaced by Istio's. */
function istioPieces(): { filters: Obj[]; clusters: Obj[]; internalListener: Obj; routeFilters: (i: number) => Obj } {
  const get = renamedPieces(istioValues(), { cluster: { mcp_pinned: ISTIO_NAMES.cluster('pinned') } });
  // Only what works without Envoy's MCP filter: the header strip, the body buffer, ext_proc.
  const kept = ['mcp_pin.header_mutation', 'mcp_pin.buffer', 'mcp_pin.ext_proc'];
  const filters = (get('http-filters.yaml') as Obj[]).filter((f) => kept.includes(f.name as string));
  const vhost = get('virtual-host.yaml') as { routes: Obj[] };
  const listeners = get('listeners.yaml') as Obj[];
  return {
    filters,
    clusters: get('clusters.yaml') as Obj[],
    internalListener: { ...(listeners.find((l) => l.name === 'mcp_pin_internal') as Obj), name: 'mcp-pin-internal' },
    // The filters the whole config's route of the same kind turns on, those kept here.
    routeFilters: (i: number) =>
      Object.fromEntries(Object.entries((vhost.routes[i] as { typed_per_filter_config: Obj }).typed_per_filter_config).filter(([k]) => kept.includes(k))),
  };
}

function istioRoute(name: (typeof ISTIO_ROUTES)[number], match: Obj, subset: string, extra: Obj): Obj {
  return {
    name,
    match: [{ uri: { prefix: ENVOY_GATEWAY.path }, ...match }],
    route: [{ destination: { host: ISTIO.host, ...(subset ? { subset } : {}), port: { number: ENVOY_GATEWAY.service.port } } }],
    // SSE streams live as long as they need.
    timeout: '0s',
    ...extra,
  };
}

/** Every resource of the Istio recipe, in the order to apply them. */
export function istioRecipe(): Obj[] {
  const { filters, clusters, internalListener, routeFilters } = istioPieces();
  const clusterOf = (name: string): Obj => clusters.find((c) => c.name === name) as Obj;
  const pinned = clusterOf('mcp_pinned');
  const gatewayMatch = { context: 'GATEWAY' };
  const routeMatch = (route: string): Obj => ({
    ...gatewayMatch,
    routeConfiguration: { vhost: { name: ISTIO_NAMES.virtualHost, route: { name: route } } },
  });
  const clientSessionBack = { headers: { response: { set: { 'mcp-session-id': '%REQ(x-mcp-pin-client-session)%' } } } };
  const lost = '404,400';
  return [
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: { name: 'mcp-pin-config', namespace: ISTIO.gatewayNamespace },
      data: { 'values.json': `${JSON.stringify(istioValues(), null, 2)}\n` },
    },
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: ENVOY_GATEWAY.podsService, namespace: ISTIO.namespace },
      spec: { clusterIP: 'None', selector: { app: ENVOY_GATEWAY.service.name }, ports: [{ name: 'http', port: ENVOY_GATEWAY.service.port }] },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'Gateway',
      metadata: { name: 'mcp', namespace: ISTIO.namespace },
      spec: { selector: ISTIO.gatewayLabels, servers: [{ port: { number: ISTIO.serverPort, name: 'http', protocol: 'HTTP' }, hosts: ['*'] }] },
    },
    {
      // The pinned and search clusters: the same pods, clusters of their own (their own upstream filters).
      apiVersion: 'networking.istio.io/v1',
      kind: 'DestinationRule',
      metadata: { name: ENVOY_GATEWAY.service.name, namespace: ISTIO.namespace },
      spec: {
        host: ISTIO.host,
        subsets: [
          { name: 'pinned', labels: { app: ENVOY_GATEWAY.service.name } },
          { name: 'search', labels: { app: ENVOY_GATEWAY.service.name } },
        ],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1',
      kind: 'VirtualService',
      metadata: { name: 'mcp', namespace: ISTIO.namespace },
      spec: {
        hosts: ['*'],
        gateways: ['mcp'],
        http: [
          // A pinned DELETE ends the session: never retried elsewhere.
          istioRoute('mcp-pinned-delete', { headers: { 'x-mcp-pin-dst': { regex: '.+' } }, method: { exact: 'DELETE' } }, 'pinned', {
            retries: { attempts: 0 },
            ...clientSessionBack,
          }),
          istioRoute('mcp-pinned', { headers: { 'x-mcp-pin-dst': { regex: '.+' } } }, 'pinned', {
            retries: { attempts: 2, retryOn: `connect-failure,retriable-status-codes,${lost}`, retryIgnorePreviousHosts: true },
            ...clientSessionBack,
          }),
          istioRoute('mcp-search', { headers: { 'mcp-session-id': { regex: '.+' } } }, 'search', {
            retries: { attempts: 63, retryOn: `connect-failure,retriable-status-codes,${lost}`, retryIgnorePreviousHosts: true },
          }),
          istioRoute('mcp', {}, '', { retries: { attempts: 63, retryOn: 'connect-failure', retryIgnorePreviousHosts: true } }),
        ],
      },
    },
    {
      apiVersion: 'networking.istio.io/v1alpha3',
      kind: 'EnvoyFilter',
      metadata: { name: 'mcp-pin', namespace: ISTIO.gatewayNamespace },
      spec: {
        workloadSelector: { labels: ISTIO.gatewayLabels },
        configPatches: [
          // mcp-pin's filters, before the router: the strip on, the others off unless a route of mcp-pin's turns them on.
          ...filters.map((value) => ({
            applyTo: 'HTTP_FILTER',
            match: {
              ...gatewayMatch,
              listener: {
                portNumber: ISTIO.targetPort,
                filterChain: { filter: { name: 'envoy.filters.network.http_connection_manager', subFilter: { name: 'envoy.filters.http.router' } } },
              },
            },
            patch: { operation: 'INSERT_BEFORE', value },
          })),
          // The VirtualService's routes turn them on (the whole config's pinned routes' filters).
          ...ISTIO_ROUTES.map((route) => ({
            applyTo: 'HTTP_ROUTE',
            match: routeMatch(route),
            patch: { operation: 'MERGE', value: { typed_per_filter_config: routeFilters(WHOLE_CONFIG_ROUTE[route]) } },
          })),
          // A search asks each pod once: enough host picks to find one not yet asked.
          {
            applyTo: 'HTTP_ROUTE',
            match: routeMatch('mcp-search'),
            patch: { operation: 'MERGE', value: { route: { retry_policy: { host_selection_retry_max_attempts: 64 } } } },
          },
          // The pinned subset: the pod named by the pin header; the pin header off once it is chosen; mcp-pin on retries.
          {
            applyTo: 'CLUSTER',
            match: { ...gatewayMatch, cluster: { service: ISTIO.host, portNumber: ENVOY_GATEWAY.service.port, subset: 'pinned' } },
            patch: {
              operation: 'MERGE',
              value: { load_balancing_policy: pinned.load_balancing_policy, typed_extension_protocol_options: pinned.typed_extension_protocol_options },
            },
          },
          // The search subset: mcp-pin ends a search at the first pod asked twice.
          {
            applyTo: 'CLUSTER',
            match: { ...gatewayMatch, cluster: { service: ISTIO.host, portNumber: ENVOY_GATEWAY.service.port, subset: 'search' } },
            patch: { operation: 'MERGE', value: { typed_extension_protocol_options: clusterOf('mcp_search').typed_extension_protocol_options } },
          },
          // mcp-pin, on the pod's socket, health-checked.
          { applyTo: 'CLUSTER', match: gatewayMatch, patch: { operation: 'ADD', value: clusterOf('mcp_pin') } },
          // The internal listener mcp-pin re-initializes through.
          { applyTo: 'LISTENER', match: gatewayMatch, patch: { operation: 'ADD', value: internalListener } },
        ],
      },
    },
  ];
}

/**
 * The ingress gateway Deployment's patch (kubectl patch --type strategic):
 * mcp-pin as a container of each gateway pod, the sockets on the pod's own
 * emptyDir, and Envoy's runtime flag (Istio's runtimeValues).
 */
export function istioGatewayPatch(mcpPinImage = 'mcp-pin:0.1.0'): Obj {
  return {
    spec: {
      template: {
        metadata: {
          annotations: { 'proxy.istio.io/config': JSON.stringify({ runtimeValues: { 'envoy.reloadable_features.ext_proc_graceful_grpc_close': 'true' } }) },
        },
        spec: mcpPinPodSpec('istio-proxy', mcpPinImage, ISTIO.namespace),
      },
    },
  };
}
