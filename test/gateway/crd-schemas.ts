/**
 * The project's own schema subset of the Envoy Gateway and Gateway API CRDs,
 * for the fields the recipes use: field names, types, enums, patterns and
 * required fields written from Envoy Gateway v1.8.0's API types
 * (api/v1alpha1: envoyextensionpolicy, ext_proc, backendtrafficpolicy,
 * loadbalancer, retry, clienttrafficpolicy, connection, backend, envoyproxy,
 * envoypatchpolicy, policy_helpers) and Gateway API v1.5.1's (apis/v1:
 * httproute, shared types), the version Envoy Gateway v1.8.0 builds with.
 * Objects are strict: a field these versions do not have (a typo, or one
 * of a newer version) is refused, as the API server would prune or refuse it.
 */
import { z } from 'zod';

// Gateway API shared types.
const duration = z.string().regex(/^([0-9]{1,5}(h|m|s|ms)){1,4}$/, 'a Gateway API Duration');
const headerName = z
  .string()
  .min(1)
  .max(256)
  .regex(/^[A-Za-z0-9!#$%&'*+\-.^_`|~]+$/);
const objectName = z.string().min(1).max(253);
const sectionName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/);
const group = z.string().max(253);
const kind = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-zA-Z]([-a-zA-Z0-9]*[a-zA-Z0-9])?$/);
const port = z.number().int().min(1).max(65535);
/** Kubernetes resource.Quantity. */
const quantity = z.union([z.number(), z.string().regex(/^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i?|[mun])?$/)]);
const metadata = z.strictObject({ name: objectName, namespace: objectName.optional(), labels: z.record(z.string(), z.string()).optional() });
const localTargetRef = z.strictObject({ group, kind, name: objectName, sectionName: sectionName.optional() });

// HTTPRoute (gateway.networking.k8s.io/v1).
const parentRef = z.strictObject({
  group: group.optional(),
  kind: kind.optional(),
  namespace: objectName.optional(),
  name: objectName,
  sectionName: sectionName.optional(),
  port: port.optional(),
});
const headerMatch = z.strictObject({ type: z.enum(['Exact', 'RegularExpression']).optional(), name: headerName, value: z.string().min(1).max(4096) });
const pathMatch = z.strictObject({
  type: z.enum(['Exact', 'PathPrefix', 'RegularExpression']).optional(),
  value: z.string().max(1024).optional(),
});
const routeMatch = z.strictObject({
  path: pathMatch.optional(),
  headers: z.array(headerMatch).max(16).optional(),
  method: z.enum(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH']).optional(),
});
const httpHeader = z.strictObject({ name: headerName, value: z.string().min(1).max(4096) });
const headerFilter = z.strictObject({
  set: z.array(httpHeader).max(16).optional(),
  add: z.array(httpHeader).max(16).optional(),
  remove: z.array(z.string()).max(16).optional(),
});
const routeFilter = z
  .strictObject({
    type: z.enum(['RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestMirror', 'RequestRedirect', 'URLRewrite', 'ExtensionRef', 'CORS', 'ExternalAuth']),
    requestHeaderModifier: headerFilter.optional(),
    responseHeaderModifier: headerFilter.optional(),
  })
  .refine(
    (f) => f.type !== 'ResponseHeaderModifier' || f.responseHeaderModifier !== undefined,
    'responseHeaderModifier must be set for type ResponseHeaderModifier',
  );
const backendRef = z.strictObject({
  group: group.optional(),
  kind: kind.optional(),
  name: objectName,
  namespace: objectName.optional(),
  port: port.optional(),
  weight: z.number().int().min(0).max(1_000_000).optional(),
});
export const HTTPRoute = z.strictObject({
  apiVersion: z.literal('gateway.networking.k8s.io/v1'),
  kind: z.literal('HTTPRoute'),
  metadata,
  spec: z.strictObject({
    parentRefs: z.array(parentRef).max(32).optional(),
    hostnames: z.array(z.string()).max(16).optional(),
    rules: z
      .array(
        z.strictObject({
          name: sectionName.optional(),
          matches: z.array(routeMatch).max(64).optional(),
          filters: z.array(routeFilter).max(16).optional(),
          backendRefs: z.array(backendRef).max(16).optional(),
          timeouts: z.strictObject({ request: duration.optional(), backendRequest: duration.optional() }).optional(),
        }),
      )
      .max(16)
      .optional(),
  }),
});

// Envoy Gateway (gateway.envoyproxy.io/v1alpha1).
const egGroupVersion = z.literal('gateway.envoyproxy.io/v1alpha1');
const targets = {
  targetRef: localTargetRef.optional(),
  targetRefs: z.array(localTargetRef).optional(),
};
const bodyMode = z.enum(['Streamed', 'Buffered', 'BufferedPartial', 'FullDuplexStreamed']);
const attributes = z.array(z.string().regex(/^(connection\.|source\.|destination\.|request\.|response\.|upstream\.|xds\.route_)[a-z_1-9]*$/));
const processingModeOptions = z.strictObject({ body: bodyMode.optional(), attributes: attributes.optional() });
const egBackendRef = backendRef.refine(
  (r) =>
    ['Service', 'ServiceImport', 'Backend', undefined].includes(r.kind) && ['', 'multicluster.x-k8s.io', 'gateway.envoyproxy.io', undefined].includes(r.group),
  'backendRefs: only Service, ServiceImport and Backend of the core, multicluster.x-k8s.io and gateway.envoyproxy.io groups',
);
export const EnvoyExtensionPolicy = z.strictObject({
  apiVersion: egGroupVersion,
  kind: z.literal('EnvoyExtensionPolicy'),
  metadata,
  spec: z
    .strictObject({
      ...targets,
      extProc: z
        .array(
          z.strictObject({
            backendRefs: z.array(egBackendRef).min(1).max(16),
            messageTimeout: duration.optional(),
            failOpen: z.boolean().optional(),
            processingMode: z
              .strictObject({
                request: processingModeOptions.optional(),
                response: processingModeOptions.optional(),
                allowModeOverride: z.boolean().optional(),
              })
              .optional(),
          }),
        )
        .max(16)
        .optional(),
    })
    .refine((s) => s.targetRef !== undefined || (s.targetRefs?.length ?? 0) > 0, 'either targetRef or targetRefs must be used'),
});

const trigger = z.enum([
  '5xx',
  'gateway-error',
  'reset',
  'reset-before-request',
  'connect-failure',
  'retriable-4xx',
  'refused-stream',
  'retriable-status-codes',
  'cancelled',
  'deadline-exceeded',
  'internal',
  'resource-exhausted',
  'unavailable',
]);
export const BackendTrafficPolicy = z.strictObject({
  apiVersion: egGroupVersion,
  kind: z.literal('BackendTrafficPolicy'),
  metadata,
  spec: z.strictObject({
    ...targets,
    loadBalancer: z
      .strictObject({
        type: z.enum(['ConsistentHash', 'LeastRequest', 'Random', 'RoundRobin', 'BackendUtilization', 'DynamicModule']),
        endpointOverride: z
          .strictObject({
            extractFrom: z
              .array(z.strictObject({ header: z.string().optional() }))
              .min(1)
              .max(10),
          })
          .optional(),
      })
      .optional(),
    retry: z
      .strictObject({
        numRetries: z.number().int().min(0).optional(),
        retryOn: z.strictObject({ triggers: z.array(trigger).optional(), httpStatusCodes: z.array(z.number().int().min(100).max(599)).optional() }).optional(),
        perRetry: z
          .strictObject({
            timeout: duration.optional(),
            backOff: z.strictObject({ baseInterval: duration.optional(), maxInterval: duration.optional() }).optional(),
          })
          .optional(),
      })
      .optional(),
    connection: z.strictObject({ bufferLimit: quantity.optional() }).optional(),
  }),
});

export const ClientTrafficPolicy = z.strictObject({
  apiVersion: egGroupVersion,
  kind: z.literal('ClientTrafficPolicy'),
  metadata,
  spec: z.strictObject({
    ...targets,
    headers: z.strictObject({ earlyRequestHeaders: headerFilter.optional() }).optional(),
    connection: z.strictObject({ bufferLimit: quantity.optional() }).optional(),
  }),
});

export const Backend = z.strictObject({
  apiVersion: egGroupVersion,
  kind: z.literal('Backend'),
  metadata,
  spec: z.strictObject({
    type: z.enum(['Endpoints', 'DynamicResolver']).optional(),
    endpoints: z
      .array(
        z.strictObject({
          unix: z.strictObject({ path: z.string() }).optional(),
          ip: z.strictObject({ address: z.string(), port }).optional(),
          fqdn: z.strictObject({ hostname: z.string(), port }).optional(),
        }),
      )
      .max(64)
      .optional(),
    appProtocols: z.array(z.enum(['gateway.envoyproxy.io/h2c', 'gateway.envoyproxy.io/ws', 'gateway.envoyproxy.io/wss'])).optional(),
  }),
});

const jsonPatchOperation = z
  .strictObject({
    op: z.enum(['add', 'remove', 'replace', 'move', 'copy', 'test']),
    path: z.string().optional(),
    jsonPath: z.string().optional(),
    from: z.string().optional(),
    value: z.unknown().optional(),
  })
  .refine((o) => !['add', 'replace'].includes(o.op) || o.value !== undefined, 'add and replace need a value');

export const EnvoyProxy = z.strictObject({
  apiVersion: egGroupVersion,
  kind: z.literal('EnvoyProxy'),
  metadata,
  spec: z.strictObject({
    provider: z
      .strictObject({
        type: z.enum(['Kubernetes', 'Custom', 'Host']),
        kubernetes: z
          .strictObject({
            envoyDeployment: z
              .strictObject({
                patch: z.strictObject({ type: z.enum(['StrategicMerge', 'JSONMerge']).optional(), value: z.record(z.string(), z.unknown()) }).optional(),
              })
              .optional(),
          })
          .optional(),
      })
      .optional(),
    bootstrap: z
      .strictObject({
        type: z.enum(['Merge', 'Replace', 'JSONPatch']).optional(),
        value: z.string().optional(),
        jsonPatches: z.array(jsonPatchOperation).optional(),
      })
      .refine(
        (b) => (b.type === 'JSONPatch' ? (b.jsonPatches?.length ?? 0) > 0 : b.value !== undefined),
        "provided bootstrap patch doesn't match the configured patch type",
      )
      .optional(),
  }),
});

export const EnvoyPatchPolicy = z.strictObject({
  apiVersion: egGroupVersion,
  kind: z.literal('EnvoyPatchPolicy'),
  metadata,
  spec: z.strictObject({
    type: z.literal('JSONPatch'),
    targetRef: localTargetRef.omit({ sectionName: true }),
    priority: z.number().int().optional(),
    jsonPatches: z
      .array(
        z.strictObject({
          type: z.enum([
            'type.googleapis.com/envoy.config.listener.v3.Listener',
            'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
            'type.googleapis.com/envoy.config.cluster.v3.Cluster',
            'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
            'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
          ]),
          name: z.string(),
          operation: jsonPatchOperation,
        }),
      )
      .optional(),
  }),
});

// Istio (networking.istio.io), written from Istio 1.30.3's CRDs (manifests/charts/base/files/crd-all.gen.yaml).
const istioDuration = z.string().regex(/^([0-9]+(\.[0-9]+)?(h|m|s|ms|us|ns))+$/, 'a protobuf Duration');
const stringMatch = z
  .strictObject({ exact: z.string().optional(), prefix: z.string().optional(), regex: z.string().optional() })
  .refine((m) => [m.exact, m.prefix, m.regex].filter((x) => x !== undefined).length === 1, 'exactly one of exact, prefix, regex');
const headerOperations = z.strictObject({
  set: z.record(z.string(), z.string()).optional(),
  add: z.record(z.string(), z.string()).optional(),
  remove: z.array(z.string()).optional(),
});
export const IstioGateway = z.strictObject({
  apiVersion: z.enum(['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']),
  kind: z.literal('Gateway'),
  metadata,
  spec: z.strictObject({
    selector: z.record(z.string(), z.string()).optional(),
    servers: z.array(
      z.strictObject({
        port: z.strictObject({
          number: z.number().int().min(0).max(4294967295),
          protocol: z.string(),
          name: z.string(),
          targetPort: z.number().int().optional(),
        }),
        hosts: z.array(z.string()).min(1),
        bind: z.string().optional(),
        name: z.string().optional(),
      }),
    ),
  }),
});
export const VirtualService = z.strictObject({
  apiVersion: z.enum(['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']),
  kind: z.literal('VirtualService'),
  metadata,
  spec: z.strictObject({
    hosts: z.array(z.string()).optional(),
    gateways: z.array(z.string()).optional(),
    http: z
      .array(
        z.strictObject({
          name: z.string().optional(),
          match: z
            .array(
              z.strictObject({
                name: z.string().optional(),
                uri: stringMatch.optional(),
                method: stringMatch.optional(),
                headers: z.record(z.string(), stringMatch).optional(),
                ignoreUriCase: z.boolean().optional(),
              }),
            )
            .optional(),
          route: z
            .array(
              z.strictObject({
                destination: z.strictObject({
                  host: z.string(),
                  subset: z.string().optional(),
                  port: z.strictObject({ number: z.number().int().min(0).max(4294967295) }).optional(),
                }),
                weight: z.number().int().optional(),
              }),
            )
            .optional(),
          timeout: istioDuration.optional(),
          retries: z
            .strictObject({
              attempts: z.number().int().optional(),
              perTryTimeout: istioDuration.optional(),
              retryOn: z.string().optional(),
              retryRemoteLocalities: z.boolean().optional(),
              retryIgnorePreviousHosts: z.boolean().optional(),
              backoff: istioDuration.optional(),
            })
            .optional(),
          headers: z.strictObject({ request: headerOperations.optional(), response: headerOperations.optional() }).optional(),
        }),
      )
      .optional(),
  }),
});
export const DestinationRule = z.strictObject({
  apiVersion: z.enum(['networking.istio.io/v1', 'networking.istio.io/v1beta1', 'networking.istio.io/v1alpha3']),
  kind: z.literal('DestinationRule'),
  metadata,
  spec: z.strictObject({
    host: z.string(),
    subsets: z.array(z.strictObject({ name: z.string(), labels: z.record(z.string(), z.string()).optional() })).optional(),
  }),
});
const envoyFilterMatch = z
  .strictObject({
    context: z.enum(['ANY', 'SIDECAR_INBOUND', 'SIDECAR_OUTBOUND', 'GATEWAY', 'WAYPOINT']).optional(),
    listener: z
      .strictObject({
        portNumber: z.number().int().optional(),
        name: z.string().optional(),
        filterChain: z
          .strictObject({
            name: z.string().optional(),
            filter: z.strictObject({ name: z.string().optional(), subFilter: z.strictObject({ name: z.string().optional() }).optional() }).optional(),
          })
          .optional(),
      })
      .optional(),
    routeConfiguration: z
      .strictObject({
        portNumber: z.number().int().optional(),
        name: z.string().optional(),
        gateway: z.string().optional(),
        vhost: z
          .strictObject({
            name: z.string().optional(),
            route: z.strictObject({ name: z.string().optional(), action: z.enum(['ANY', 'ROUTE', 'REDIRECT', 'DIRECT_RESPONSE']).optional() }).optional(),
          })
          .optional(),
      })
      .optional(),
    cluster: z
      .strictObject({ portNumber: z.number().int().optional(), service: z.string().optional(), subset: z.string().optional(), name: z.string().optional() })
      .optional(),
  })
  .refine((m) => [m.listener, m.routeConfiguration, m.cluster].filter((x) => x !== undefined).length <= 1, 'one of listener, routeConfiguration, cluster');
export const EnvoyFilter = z.strictObject({
  apiVersion: z.literal('networking.istio.io/v1alpha3'),
  kind: z.literal('EnvoyFilter'),
  metadata,
  spec: z.strictObject({
    workloadSelector: z.strictObject({ labels: z.record(z.string(), z.string()) }).optional(),
    priority: z.number().int().optional(),
    configPatches: z.array(
      z.strictObject({
        applyTo: z.enum([
          'INVALID',
          'LISTENER',
          'FILTER_CHAIN',
          'NETWORK_FILTER',
          'HTTP_FILTER',
          'ROUTE_CONFIGURATION',
          'VIRTUAL_HOST',
          'HTTP_ROUTE',
          'CLUSTER',
          'EXTENSION_CONFIG',
          'BOOTSTRAP',
          'LISTENER_FILTER',
        ]),
        match: envoyFilterMatch.optional(),
        patch: z.strictObject({
          operation: z.enum(['INVALID', 'MERGE', 'ADD', 'REMOVE', 'INSERT_BEFORE', 'INSERT_AFTER', 'INSERT_FIRST', 'REPLACE']),
          value: z.record(z.string(), z.unknown()).optional(),
          filterClass: z.enum(['UNSPECIFIED', 'AUTHN', 'AUTHZ', 'STATS']).optional(),
        }),
      }),
    ),
  }),
});

/** Core kinds the recipes carry, checked for the fields they use. */
export const ConfigMap = z.strictObject({ apiVersion: z.literal('v1'), kind: z.literal('ConfigMap'), metadata, data: z.record(z.string(), z.string()) });
export const Service = z.strictObject({
  apiVersion: z.literal('v1'),
  kind: z.literal('Service'),
  metadata,
  spec: z.strictObject({
    clusterIP: z.string().optional(),
    selector: z.record(z.string(), z.string()),
    ports: z.array(z.strictObject({ name: z.string().optional(), port, targetPort: z.union([port, z.string()]).optional() })).min(1),
  }),
});

/** Envoy Gateway's and Gateway API's kinds, and the core ones. */
export const SCHEMAS: Record<string, z.ZodType> = {
  HTTPRoute,
  EnvoyExtensionPolicy,
  BackendTrafficPolicy,
  ClientTrafficPolicy,
  Backend,
  EnvoyProxy,
  EnvoyPatchPolicy,
  ConfigMap,
  Service,
};

/** Istio's kinds, and the core ones (Gateway is Istio's own here, not Gateway API's). */
export const ISTIO_SCHEMAS: Record<string, z.ZodType> = { Gateway: IstioGateway, VirtualService, DestinationRule, EnvoyFilter, ConfigMap, Service };

/** The ingress gateway Deployment's strategic-merge patch: what it adds (containers by name, volumes, the pod annotation). */
export const DeploymentPatch = z.strictObject({
  spec: z.strictObject({
    template: z.strictObject({
      metadata: z.strictObject({ annotations: z.record(z.string(), z.string()) }).optional(),
      spec: z.strictObject({
        containers: z.array(z.looseObject({ name: z.string() })),
        volumes: z.array(z.looseObject({ name: z.string() })).optional(),
      }),
    }),
  }),
});

/** Every problem of every document, or none. */
export function validateManifests(docs: unknown[], schemas: Record<string, z.ZodType> = SCHEMAS): string[] {
  const problems: string[] = [];
  docs.forEach((doc, i) => {
    const k = (doc as { kind?: string }).kind ?? '(no kind)';
    const schema = schemas[k];
    if (!schema) {
      problems.push(`document ${i}: kind ${k} is not in the schema subset`);
      return;
    }
    const r = schema.safeParse(doc);
    if (!r.success) for (const issue of r.error.issues) problems.push(`document ${i} (${k}): ${issue.path.join('.')}: ${issue.message}`);
  });
  return problems;
}
