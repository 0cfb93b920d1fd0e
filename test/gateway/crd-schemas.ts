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

/** Every problem of every document, or none. */
export function validateManifests(docs: unknown[]): string[] {
  const problems: string[] = [];
  docs.forEach((doc, i) => {
    const k = (doc as { kind?: string }).kind ?? '(no kind)';
    const schema = SCHEMAS[k];
    if (!schema) {
      problems.push(`document ${i}: kind ${k} is not in the schema subset`);
      return;
    }
    const r = schema.safeParse(doc);
    if (!r.success) for (const issue of r.error.issues) problems.push(`document ${i} (${k}): ${issue.path.join('.')}: ${issue.message}`);
  });
  return problems;
}
