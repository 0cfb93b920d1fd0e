/**
 * Renders the deploy files from the one Envoy template: deploy/compose/
 * (values.json, the one configuration of Envoy and mcp-pin there, envoy.yaml
 * rendered from it, eds/eds.json for docker-compose.yml) and deploy/k8s/envoy/envoy.yaml
 * (the kustomize base's configMapGenerator turns it into a ConfigMap whose
 * name carries a hash of it). `--check` exits 1 if the committed files differ (the test
 * suite runs the same comparison).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { renderEnvoyConfig } from '../envoy/render.js';
import { renderEds } from '../envoy/eds.js';
import { paramsFromValues } from '../envoy/values.js';
import { stringify } from 'yaml';
import { ENVOY_GATEWAY, ISTIO, envoyGatewayRecipe, istioGatewayPatch, istioRecipe } from './gateway-recipes.js';

/**
 * The compose stack: the pods' fixed addresses on the network Envoy shares
 * with them (docker-compose.yml, network mcp), and the Unix sockets on the
 * volume only Envoy and mcp-pin mount, through which they reach each other.
 */
export const COMPOSE = {
  pods: [
    { host: '172.28.0.11', port: 8080 },
    { host: '172.28.0.12', port: 8080 },
  ],
  /** Each replica's ext_proc socket (its MCP_PIN_LISTEN), on the shared volume. */
  mcpPinSockets: ['/run/mcp-pin/mcp-pin-1.sock', '/run/mcp-pin/mcp-pin-2.sock'],
  /** Envoy's internal listener, on the same volume. */
  internalSocket: '/run/mcp-pin/envoy-internal.sock',
};

/**
 * The compose stack's one configuration: Envoy is rendered from it here, and
 * the mcp-pin containers read the same file (MCP_PIN_CONFIG), so the two
 * cannot disagree. mcp-pin's control plane (its gRPC port) and Envoy's
 * internal listener are Unix sockets on a volume no pod mounts: a pod, or
 * anything else on a network, cannot open a stream to mcp-pin.
 */
export function composeValues(): Record<string, unknown> {
  return {
    // Admin only inside the Envoy container.
    adminAddress: '127.0.0.1',
    listenAddress: '0.0.0.0',
    internalAddress: `unix:${COMPOSE.internalSocket}`,
    extProc: COMPOSE.mcpPinSockets.map((p) => `unix:${p}`),
    service: 'eds:/etc/envoy/eds/eds.json',
    mcpPin: {
      // Redis is on a network only the mcp-pin containers share with it.
      storeUrl: 'redis://redis:6379',
      // The demo pods (172.28.0.11-12, port 8080): pins may point nowhere else.
      pinAllow: '172.28.0.8/29:8080',
    },
  };
}

export function renderCompose(): { 'envoy.yaml': string; 'eds.json': string; 'values.json': string } {
  const values = composeValues();
  return {
    'envoy.yaml': renderEnvoyConfig(paramsFromValues(values as Parameters<typeof paramsFromValues>[0])),
    'eds.json': renderEds(COMPOSE.pods).replace(/"version_info": "\d+"/, '"version_info": "compose"'),
    'values.json': `${JSON.stringify(values, null, 2)}\n`,
  };
}

/**
 * Names in the kustomize base (deploy/k8s). Short: they resolve in whatever
 * namespace the base is applied to (the pod's DNS search path), so the
 * namespace is set in one place, kustomization.yaml.
 */
export const K8S = {
  service: { host: 'mcp-server-pods', port: 8080 },
  /** mcp-pin runs beside Envoy in its pod; they share these sockets on an emptyDir only that pod mounts. */
  mcpPinSocket: '/run/mcp-pin/mcp-pin.sock',
  internalSocket: '/run/mcp-pin/envoy-internal.sock',
  envoyStatsPort: 9902,
  envoyAdminPort: 9901,
};

/**
 * The Kubernetes base's one configuration: Envoy's ConfigMap is rendered from
 * it, and mcp-pin reads it (ConfigMap mcp-pin-config, MCP_PIN_CONFIG). The
 * store URL, which carries the Redis password, stays in mcp-pin's
 * environment (built from the Secret), never in a ConfigMap. mcp-pin is a
 * container of Envoy's pod: its gRPC port and Envoy's internal listener are
 * Unix sockets no other pod can open, whether or not the cluster enforces
 * NetworkPolicy.
 */
export function k8sValues(): Record<string, unknown> {
  return {
    adminAddress: '127.0.0.1',
    listenAddress: '0.0.0.0',
    internalAddress: `unix:${K8S.internalSocket}`,
    extProc: `unix:${K8S.mcpPinSocket}`,
    service: `dns:${K8S.service.host}:${K8S.service.port}`,
    // Readiness for the kubelet and stats for Prometheus; the admin interface stays on loopback.
    statsListen: `0.0.0.0:${K8S.envoyStatsPort}`,
    mcpPin: {
      // Pins may only point at the pods behind the headless Service.
      pinAllow: `dns:${K8S.service.host}:${K8S.service.port}`,
    },
  };
}

/** Where the mTLS overlay mounts the certificates (Secrets mcp-pin-server-tls and mcp-pin-client-tls, kubernetes.io/tls with ca.crt). */
export const K8S_MTLS = {
  /** mcp-pin's server certificate, and the CA whose client certificates it admits. */
  server: '/etc/mcp-pin-tls',
  /** Envoy's client certificate, and the CA it checks mcp-pin's against. */
  client: '/etc/envoy-tls',
  port: 50051,
};

/**
 * The mTLS overlay (deploy/overlays/mtls): as the base, but mcp-pin's gRPC
 * port is TCP on the pod's loopback with mutual TLS instead of a Unix
 * socket (for clusters whose policy wants every connection encrypted and
 * authenticated). Envoy's internal listener stays a socket of the pod.
 */
export function k8sMtlsValues(): Record<string, unknown> {
  const base = k8sValues() as { mcpPin: Record<string, unknown> };
  return {
    ...base,
    extProc: `127.0.0.1:${K8S_MTLS.port}`,
    // cert,key,ca: Envoy's client certificate and the CA it checks mcp-pin's against.
    extProcTls: `${K8S_MTLS.client}/tls.crt,${K8S_MTLS.client}/tls.key,${K8S_MTLS.client}/ca.crt`,
    mcpPin: {
      ...base.mcpPin,
      tlsCertFile: `${K8S_MTLS.server}/tls.crt`,
      tlsKeyFile: `${K8S_MTLS.server}/tls.key`,
      tlsClientCaFile: `${K8S_MTLS.server}/ca.crt`,
    },
  };
}

export function renderK8sEnvoyConfig(): string {
  return [
    '# Generated by `npm run render:deploy` from envoy/envoy.template.yaml and deploy/k8s/values.json: do not edit.',
    renderEnvoyConfig(paramsFromValues(k8sValues() as Parameters<typeof paramsFromValues>[0])),
  ].join('\n');
}

/** The Prometheus Operator's PrometheusRule, from the one rules file (deploy/prometheus/mcp-pin.rules.yaml). */
export function renderPrometheusRule(): string {
  const rules = readFileSync(new URL('../deploy/prometheus/mcp-pin.rules.yaml', import.meta.url), 'utf8');
  const body = rules.slice(rules.indexOf('groups:')).replace(/\n(?=.)/g, '\n  ');
  return [
    '# Generated by `npm run render:deploy` from deploy/prometheus/mcp-pin.rules.yaml: do not edit.',
    'apiVersion: monitoring.coreos.com/v1',
    'kind: PrometheusRule',
    'metadata:',
    '  name: mcp-pin',
    'spec:',
    `  ${body}`,
  ].join('\n');
}

/** The dashboard as a ConfigMap that Grafana's dashboard sidecar picks up (label grafana_dashboard). */
export function renderDashboardConfigMap(): string {
  const json = readFileSync(new URL('../deploy/grafana/mcp-pin-dashboard.json', import.meta.url), 'utf8').replace(/\n(?=.)/g, '\n    ');
  return [
    '# Generated by `npm run render:deploy` from deploy/grafana/mcp-pin-dashboard.json: do not edit.',
    'apiVersion: v1',
    'kind: ConfigMap',
    'metadata:',
    '  name: mcp-pin-dashboard',
    '  labels: { grafana_dashboard: "1" }',
    'data:',
    '  mcp-pin.json: |',
    `    ${json}`,
  ].join('\n');
}

/** The Envoy Gateway recipe, one file to kubectl apply (docs/gateways.md). */
export function renderEnvoyGatewayRecipe(): string {
  const header = [
    '# Generated by `npm run render:deploy` (scripts/gateway-recipes.ts): do not edit.',
    `# mcp-pin for Envoy Gateway ${ENVOY_GATEWAY.version} (its Envoy ${ENVOY_GATEWAY.envoy}, Gateway API ${ENVOY_GATEWAY.gatewayApi}); docs/gateways.md says`,
    '# what it needs (Envoy Gateway settings, your Gateway) and what was run.',
  ].join('\n');
  return `${header}\n${manifestsText(envoyGatewayRecipe())}`;
}

const manifestsText = (docs: object[]): string => docs.map((doc) => `---\n${stringify(doc, { aliasDuplicateObjects: false, lineWidth: 0 })}`).join('');

/** The Istio recipe (docs/gateways.md): the resources, and the ingress gateway Deployment's patch. */
export function renderIstioRecipe(): { resources: string; patch: string } {
  const header = (what: string): string =>
    [
      '# Generated by `npm run render:deploy` (scripts/gateway-recipes.ts): do not edit.',
      `# mcp-pin for Istio ${ISTIO.version}'s ingress gateway: ${what}; docs/gateways.md says what it needs and what was run.`,
    ].join('\n');
  return {
    resources: `${header('the resources (kubectl apply -f)')}\n${manifestsText(istioRecipe())}`,
    patch: `${header(`the patch of its Deployment (kubectl -n ${ISTIO.gatewayNamespace} patch deployment ${ISTIO.gatewayDeployment} --type strategic --patch-file)`)}\n${stringify(istioGatewayPatch(), { lineWidth: 0 })}`,
  };
}

export function renderAll(): Record<string, string> {
  const compose = renderCompose();
  return {
    'compose/envoy.yaml': compose['envoy.yaml'],
    'compose/eds/eds.json': compose['eds.json'],
    'compose/values.json': compose['values.json'],
    'k8s/envoy/envoy.yaml': renderK8sEnvoyConfig(),
    'k8s/values.json': `${JSON.stringify(k8sValues(), null, 2)}\n`,
    'overlays/mtls/envoy/envoy.yaml': [
      '# Generated by `npm run render:deploy` from envoy/envoy.template.yaml and deploy/overlays/mtls/values.json: do not edit.',
      renderEnvoyConfig(paramsFromValues(k8sMtlsValues() as Parameters<typeof paramsFromValues>[0])),
    ].join('\n'),
    'overlays/mtls/values.json': `${JSON.stringify(k8sMtlsValues(), null, 2)}\n`,
    'k8s-monitoring/prometheusrule.yaml': renderPrometheusRule(),
    'k8s-monitoring/grafana-dashboard.yaml': renderDashboardConfigMap(),
    'gateway/envoy-gateway.yaml': renderEnvoyGatewayRecipe(),
    'gateway/istio.yaml': renderIstioRecipe().resources,
    'gateway/istio-gateway-patch.yaml': renderIstioRecipe().patch,
  };
}

const dir = new URL('../deploy/', import.meta.url);
if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '\0')) {
  let stale = false;
  for (const [name, text] of Object.entries(renderAll())) {
    const path = new URL(name, dir);
    if (process.argv.includes('--check')) {
      if (readFileSync(path, 'utf8') !== text) {
        process.stderr.write(`${path.pathname} is stale: run npm run render:deploy\n`);
        stale = true;
      }
    } else {
      writeFileSync(path, text);
      process.stderr.write(`render:deploy: wrote ${path.pathname}\n`);
    }
  }
  if (process.argv.includes('--check') && !stale) process.stderr.write('render:deploy: every rendered file is up to date\n');
  process.exit(stale ? 1 : 0);
}
