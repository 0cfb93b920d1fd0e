/**
 * The deploy files, checked by the tools operators run (installed into the
 * git-ignored .ops-venv by scripts/ensure-ops-tools.sh): the kustomize base
 * and its production overlay rendered offline (kubectl kustomize) and
 * validated against the Kubernetes 1.32 schemas (kubernetes-validate
 * --strict); checkov on them, the Dockerfile and the compose file, with
 * only the checks deploy/checkov.yaml skips, each with its reason; hadolint
 * on the Dockerfile; real Envoy 1.40 on every shipped Envoy config; and the
 * pod shapes docs/kubernetes.md promises (restricted Pod Security profile,
 * PodDisruptionBudgets, NetworkPolicies).
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { parseAllDocuments } from 'yaml';
import { renderK8sEnvoyConfig } from '../../scripts/render-deploy.js';
import { parseRedisUrl } from '../../src/sessions/redis-url.js';
import { makeCerts } from '../helpers/certs.js';
import { findEnvoy } from '../helpers/envoy.js';
import { healthStatus } from '../helpers/grpc-clients.js';
import { eventually, freePort } from '../helpers/net.js';
import { ManagedProcess } from '../helpers/process.js';

const eventuallyOk = (fn: () => Promise<boolean>, what: string): Promise<true> =>
  eventually(async () => (await fn()) || undefined, what, 10_000, 100) as Promise<true>;

const root = new URL('../../', import.meta.url).pathname;
const bin = execFileSync('bash', [`${root}scripts/ensure-ops-tools.sh`], { encoding: 'utf8' }).trim();
const tmp = mkdtempSync(`${tmpdir()}/mcp-pin-deploy-`);
const sh = (cmd: string, args: string[]): string =>
  execFileSync(cmd, args, { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });

interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
}
interface PodSpec {
  securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; runAsGroup?: number; fsGroup?: number; seccompProfile?: { type: string } };
  terminationGracePeriodSeconds?: number;
  volumes?: { name: string; configMap?: { name: string }; emptyDir?: Record<string, unknown>; secret?: { secretName: string } }[];
  containers: {
    name: string;
    image: string;
    env?: { name: string; value?: string }[];
    readinessProbe?: unknown;
    livenessProbe?: unknown;
    resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
    securityContext?: { runAsUser?: number; allowPrivilegeEscalation?: boolean; readOnlyRootFilesystem?: boolean; capabilities?: { drop?: string[] } };
    lifecycle?: { preStop?: unknown };
    ports?: { name: string; containerPort: number }[];
    volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
  }[];
}

function render(dir: string): { file: string; objects: K8sObject[] } {
  const text = sh('kubectl', ['kustomize', dir]);
  const file = `${tmp}/${dir.replace(/\W/g, '_')}.yaml`;
  writeFileSync(file, text);
  return { file, objects: parseAllDocuments(text).map((d) => d.toJS() as K8sObject) };
}

describe('deploy files, checked by the tools operators run', function () {
  this.timeout(120_000);
  const base = render('deploy/k8s');
  const prod = render('deploy/overlays/production');
  const mtls = render('deploy/overlays/mtls');
  const sentinel = render('deploy/overlays/redis-sentinel');
  const workloads = base.objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
  const podOf = (o: K8sObject): PodSpec => (o.spec as { template: { spec: PodSpec } }).template.spec;
  const named = (kind: string, name: string): K8sObject => base.objects.find((o) => o.kind === kind && o.metadata.name === name)!;
  /** mcp-pin is a container of Envoy's pod. */
  const container = (deployment: string, name: string): PodSpec['containers'][number] =>
    podOf(named('Deployment', deployment)).containers.find((c) => c.name === name)!;

  it('renders offline with kubectl kustomize; the namespace is set once, and the overlay moves everything', () => {
    for (const o of base.objects.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).to.equal('mcp');
    for (const o of prod.objects.filter((x) => x.kind !== 'Namespace')) expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).to.equal('mcp-prod');
    expect(prod.objects.find((o) => o.kind === 'Namespace')!.metadata.name).to.equal('mcp-prod');
    // No name inside a manifest or the Envoy config carries a namespace.
    expect(readFileSync(`${root}deploy/k8s/envoy/envoy.yaml`, 'utf8')).to.not.match(/svc\.cluster\.local/);
  });

  it('passes kubernetes-validate --strict (Kubernetes 1.32 schemas), base and overlays', () => {
    const all = [base, prod, mtls, sentinel];
    const out = sh(`${bin}/kubernetes-validate`, ['--strict', '-k', '1.32.0', ...all.map((r) => r.file)]);
    expect(out).to.not.match(/ERROR|WARN/);
    expect(out.match(/passed/g)?.length).to.equal(all.reduce((n, r) => n + r.objects.length, 0));
  });

  it('passes checkov on the manifests, the Dockerfile and the compose file, but for the skips listed with reasons', () => {
    // checkov exits 1 on any failed check.
    const out = sh(`${bin}/checkov`, [
      '--config-file',
      'deploy/checkov.yaml',
      '-f',
      base.file,
      '-f',
      prod.file,
      '-f',
      mtls.file,
      '-f',
      sentinel.file,
      '-f',
      'Dockerfile',
      '-f',
      'docker-compose.yml',
    ]);
    expect(out).to.not.contain('FAILED');
    expect(out).to.match(/kubernetes scan results:\s+Passed checks: \d+, Failed checks: 0/);
  });

  it('keeps every rendered deploy file current, and the monitoring kustomization carries the one rules file and dashboard', async () => {
    const { renderAll } = await import('../../scripts/render-deploy.js');
    for (const [name, text] of Object.entries(renderAll())) expect(readFileSync(`${root}deploy/${name}`, 'utf8'), name).to.equal(text);
    const mon = render('deploy/k8s-monitoring').objects;
    expect(mon.map((o) => `${o.kind}/${o.metadata.name}`).sort()).to.deep.equal([
      'ConfigMap/mcp-pin-dashboard',
      'PodMonitor/envoy',
      'PodMonitor/mcp-pin',
      'PrometheusRule/mcp-pin',
    ]);
    const rule = mon.find((o) => o.kind === 'PrometheusRule')!;
    const rulesFile = parseAllDocuments(readFileSync(`${root}deploy/prometheus/mcp-pin.rules.yaml`, 'utf8'))[0]!.toJS() as { groups: unknown };
    expect((rule.spec as { groups: unknown }).groups).to.deep.equal(rulesFile.groups);
    const dash = mon.find((o) => o.kind === 'ConfigMap')!;
    expect(JSON.parse(dash.data!['mcp-pin.json']!)).to.deep.equal(JSON.parse(readFileSync(`${root}deploy/grafana/mcp-pin-dashboard.json`, 'utf8')));
    // What the PodMonitors scrape exists on the pods.
    const ports = (name: string): string[] => container('envoy', name).ports!.map((p) => p.name);
    expect(ports('mcp-pin')).to.include('metrics');
    expect(ports('envoy')).to.include('stats');
    const selects = (name: string): string =>
      (mon.find((o) => o.kind === 'PodMonitor' && o.metadata.name === name)!.spec as { selector: { matchLabels: { app: string } } }).selector.matchLabels.app;
    expect([selects('mcp-pin'), selects('envoy')]).to.deep.equal(['envoy', 'envoy']);
  });

  it('passes hadolint on the Dockerfile', () => {
    expect(sh(`${bin}/hadolint`, ['Dockerfile'])).to.equal('');
  });

  it("generates Envoy's ConfigMap from the one template with a content hash in its name, so a new config rolls Envoy", () => {
    expect(readFileSync(`${root}deploy/k8s/envoy/envoy.yaml`, 'utf8')).to.equal(renderK8sEnvoyConfig());
    const cm = base.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('envoy-config-'))!;
    expect(cm.metadata.name).to.match(/^envoy-config-[a-z0-9]{10}$/);
    const volumes = (named('Deployment', 'envoy').spec as { template: { spec: { volumes: { configMap?: { name: string } }[] } } }).template.spec.volumes;
    expect(volumes.map((v) => v.configMap?.name)).to.include(cm.metadata.name);
  });

  it('configures mcp-pin from the values Envoy is rendered from (a hashed ConfigMap), the store URL from the Secret', async () => {
    const cm = base.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('mcp-pin-config-'))!;
    expect(cm.metadata.name).to.match(/^mcp-pin-config-[a-z0-9]{10}$/);
    const pod = podOf(named('Deployment', 'envoy'));
    expect(pod.volumes!.find((v) => v.name === 'mcp-pin-config')!.configMap!.name).to.equal(cm.metadata.name);
    const env = Object.fromEntries(container('envoy', 'mcp-pin').env!.map((e) => [e.name, e.value]));
    expect(env.MCP_PIN_CONFIG).to.equal('/etc/mcp-pin/values.json');
    // What mcp-pin will run with: loaded as it loads it, from the ConfigMap's own bytes.
    const file = `${tmp}/values.json`;
    writeFileSync(file, cm.data!['values.json']!);
    const { loadConfig } = await import('../../src/config.js');
    const cfg = loadConfig([], { MCP_PIN_CONFIG: file, MCP_PIN_STORE_URL: 'redis://:secret@redis:6379' });
    expect(cfg).to.include({
      listen: 'unix:/run/mcp-pin/mcp-pin.sock',
      recoveryUrl: 'unix:/run/mcp-pin/envoy-internal.sock',
      pinAllow: 'dns:mcp-server-pods:8080',
      pinHeader: 'x-mcp-pin-dst',
      networkIsClosed: false,
    });
  });

  it('ships Envoy configs that real Envoy 1.40 accepts (Kubernetes and compose)', () => {
    const k8s = `${tmp}/k8s-envoy.yaml`;
    writeFileSync(k8s, base.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('envoy-config-'))!.data!['envoy.yaml']!);
    // The compose config reads its EDS file at the path the container mounts: point it at the shipped one.
    const compose = `${tmp}/compose-envoy.yaml`;
    writeFileSync(compose, readFileSync(`${root}deploy/compose/envoy.yaml`, 'utf8').replaceAll('/etc/envoy/eds', `${root}deploy/compose/eds`));
    for (const f of [k8s, compose]) expect(sh(findEnvoy(), ['--mode', 'validate', '-c', f, '--disable-hot-restart']), f).to.contain('OK');
  });

  it('meets the restricted Pod Security profile in every pod: numeric non-root user, no escalation, no capabilities, RuntimeDefault seccomp, read-only root', () => {
    expect(base.objects.find((o) => o.kind === 'Namespace')!.metadata.labels!['pod-security.kubernetes.io/enforce']).to.equal('restricted');
    expect(workloads.map((w) => w.metadata.name).sort()).to.deep.equal(['envoy', 'mcp-server', 'redis']);
    for (const w of workloads) {
      const pod = podOf(w);
      expect(pod.securityContext?.runAsNonRoot, w.metadata.name).to.equal(true);
      expect(pod.securityContext?.seccompProfile?.type, w.metadata.name).to.equal('RuntimeDefault');
      for (const c of pod.containers) {
        expect(c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser, `${c.name} user`)
          .to.be.a('number')
          .greaterThan(0);
        expect(c.securityContext, c.name).to.deep.include({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
        expect(c.securityContext?.capabilities?.drop, c.name).to.deep.equal(['ALL']);
        expect(c.readinessProbe, `${c.name} readiness`).to.not.equal(undefined);
        expect(c.livenessProbe, `${c.name} liveness`).to.not.equal(undefined);
        expect(c.resources?.requests?.memory, `${c.name} memory request`).to.be.a('string');
      }
    }
    // mcp-pin's image user, which the kubelet must be able to check against runAsNonRoot.
    expect(readFileSync(`${root}Dockerfile`, 'utf8')).to.match(/^USER 10001:10001$/m);
    expect(container('envoy', 'mcp-pin').securityContext!.runAsUser).to.equal(10001);
  });

  it('rolls out without errors: PodDisruptionBudgets, drains and grace periods longer than them', () => {
    for (const name of ['envoy', 'mcp-server']) expect(named('PodDisruptionBudget', name), name).to.not.equal(undefined);
    // mcp-pin serves its Envoy until Envoy's drain is over (its preStop), then drains itself: --drain-delay-ms (2 s) + --drain-grace-ms (10 s).
    const pinWait = Number((container('envoy', 'mcp-pin').lifecycle!.preStop as { exec: { command: string[] } }).exec.command[1]);
    expect(pinWait).to.be.at.least(Number(/sleep (\d+)$/.exec(envoyPreStop())![1]));
    expect(podOf(named('Deployment', 'envoy')).terminationGracePeriodSeconds! * 1000).to.be.greaterThan(pinWait * 1000 + 12_000);
    const server = podOf(named('Deployment', 'mcp-server'));
    const wait = (server.containers[0]!.lifecycle?.preStop as { sleep?: { seconds: number } } | undefined)?.sleep?.seconds;
    expect(wait, 'mcp-server preStop').to.be.a('number');
    expect(server.terminationGracePeriodSeconds!).to.be.greaterThan(wait!);
    const envoy = podOf(named('Deployment', 'envoy'));
    const drain = envoyPreStop();
    expect(drain).to.contain('/drain_listeners?graceful');
    expect(envoy.terminationGracePeriodSeconds!).to.be.greaterThan(Number(/sleep (\d+)$/.exec(drain)![1]));
    expect((container('envoy', 'envoy').readinessProbe as { httpGet: { path: string; port: string } }).httpGet).to.deep.equal({
      path: '/ready',
      port: 'stats',
    });
    // The kubelet cannot probe a Unix socket: mcp-pin is ready while its store answers (/healthz on the metrics port).
    expect((container('envoy', 'mcp-pin').readinessProbe as { httpGet: { path: string; port: string } }).httpGet).to.deep.equal({
      path: '/healthz',
      port: 'metrics',
    });
  });

  const envoyPreStop = (): string => (container('envoy', 'envoy').lifecycle!.preStop as { exec: { command: string[] } }).exec.command[2]!;

  it("serves Envoy's readiness and stats on the stats listener only, and the preStop command really starts Envoy's drain (real Envoy 1.40)", async () => {
    const { startEnvoy } = await import('../helpers/envoy.js');
    const { freePort } = await import('../helpers/net.js');
    const adminPort = await freePort();
    const statsPort = await freePort();
    const envoy = await startEnvoy({
      extProc: [{ host: '127.0.0.1', port: 1 }],
      pods: [{ host: '127.0.0.2', port: 1 }],
      overrides: { adminPort, statsListen: { host: '127.0.0.1', port: statsPort } },
    });
    try {
      const stats = `http://127.0.0.1:${statsPort}`;
      expect((await fetch(`${stats}/ready`)).status).to.equal(200);
      expect(await (await fetch(`${stats}/stats/prometheus`)).text()).to.match(/^envoy_cluster_upstream_rq_retry\{envoy_cluster_name="mcp_pinned"\} /m);
      // Nothing else of the admin interface: no config dump, no quitquitquit.
      for (const path of ['/config_dump', '/quitquitquit', '/drain_listeners'])
        expect((await fetch(`${stats}${path}`, { method: path === '/config_dump' ? 'GET' : 'POST' })).status, path).to.equal(404);
      // The manifest's preStop, pointed at this Envoy's admin port and without its wait.
      const cmd = envoyPreStop()
        .replaceAll('/127.0.0.1/9901', `/127.0.0.1/${adminPort}`)
        .replace(/sleep \d+$/, 'true');
      execFileSync('/bin/bash', ['-c', cmd]);
      await eventuallyOk(async () => (await fetch(`${stats}/ready`)).status === 503, 'Envoy draining: not ready');
      expect(await (await fetch(`http://127.0.0.1:${adminPort}/server_info`)).text()).to.contain('"state": "DRAINING"');
    } finally {
      await envoy.stop();
    }
  });

  it("closes the control plane: mcp-pin and Envoy's internal listener are Unix sockets of one pod; who may reach Redis, the MCP pods and Envoy", () => {
    type Rule = {
      from?: { podSelector?: { matchLabels: Record<string, string> }; namespaceSelector?: { matchLabels: Record<string, string> } }[];
      ports: { port: number }[];
    };
    const ingress = (name: string): Rule[] => (named('NetworkPolicy', name).spec as { ingress: Rule[] }).ingress;
    const fromApp = (r: Rule): string | undefined => r.from?.[0]?.podSelector?.matchLabels.app;
    const pod = podOf(named('Deployment', 'envoy'));
    // The sockets: an emptyDir of Envoy's pod, mounted by its two containers, in the group both run in.
    expect(pod.volumes!.find((v) => v.name === 'sockets')!.emptyDir).to.not.equal(undefined);
    expect(
      pod.containers
        .filter((c) => c.volumeMounts?.some((m) => m.name === 'sockets' && m.mountPath === '/run/mcp-pin'))
        .map((c) => c.name)
        .sort(),
    ).to.deep.equal(['envoy', 'mcp-pin']);
    expect(pod.securityContext).to.include({ runAsGroup: 10001, fsGroup: 10001 });
    // No port of mcp-pin's gRPC, nor of an internal listener, in any container or Service.
    const containerPorts = workloads.flatMap((w) => podOf(w).containers.flatMap((c) => (c.ports ?? []).map((p) => p.containerPort)));
    expect(containerPorts).to.not.include.members([50051, 10001]);
    const servicePorts = base.objects.filter((o) => o.kind === 'Service').flatMap((o) => (o.spec as { ports: { port: number }[] }).ports.map((p) => p.port));
    expect(servicePorts).to.not.include.members([50051, 10001]);
    expect(ingress('redis').map((r) => [fromApp(r), r.ports[0]!.port])).to.deep.equal([['envoy', 6379]]);
    expect(ingress('mcp-server').map((r) => [fromApp(r), r.ports[0]!.port])).to.deep.equal([['envoy', 8080]]);
    expect(
      ingress('envoy').map((r) => [fromApp(r) ?? r.from?.[0]?.namespaceSelector?.matchLabels['mcp-pin.io/monitoring'] ?? 'anyone', r.ports.map((p) => p.port)]),
    ).to.deep.equal([
      ['anyone', [10000]],
      ['true', [9902, 9464]],
    ]);
    // Every workload is selected by a policy.
    const selected = base.objects
      .filter((o) => o.kind === 'NetworkPolicy')
      .map((o) => (o.spec as { podSelector: { matchLabels: { app: string } } }).podSelector.matchLabels.app);
    expect(selected.sort()).to.deep.equal(['envoy', 'mcp-server', 'redis']);
  });

  it('gives mcp-pin its Redis password from a Secret through the environment, never a flag, and Redis requires it', () => {
    const pin = container('envoy', 'mcp-pin');
    const url = pin.env!.find((e) => e.name === 'MCP_PIN_STORE_URL')!.value!;
    expect(url).to.equal('redis://:$(REDIS_PASSWORD)@redis:6379');
    expect(JSON.stringify(pin.env!.find((e) => e.name === 'REDIS_PASSWORD'))).to.contain('secretKeyRef');
    expect(JSON.stringify(podOf(named('StatefulSet', 'redis')).containers[0])).to.contain('--requirepass');
    expect(JSON.stringify(base.objects)).to.not.match(/"kind":"Secret"/);
  });

  it('creates the namespace before anything is created in it: the docs create the Secret after kubectl apply -k made it', () => {
    const doc = readFileSync(`${root}docs/kubernetes.md`, 'utf8');
    const commands = [...doc.matchAll(/`(kubectl [^`]+)`/g)].map((m) => m[1]!);
    const firstApply = commands.findIndex((c) => /^kubectl apply -k deploy\/(k8s|overlays)/.test(c));
    const firstInNamespace = commands.findIndex((c) => / -n \S+/.test(c));
    expect(firstApply, 'an apply -k of the base or an overlay').to.be.at.least(0);
    expect(firstInNamespace, `${commands[firstInNamespace]} comes after ${commands[firstApply]}`).to.be.greaterThan(firstApply);
    // The base and the overlay each carry their Namespace object.
    for (const r of [base, prod]) expect(r.objects.filter((o) => o.kind === 'Namespace')).to.have.length(1);
  });

  it("scales mcp-pin with Envoy's pods (HorizontalPodAutoscaler on CPU, every container with a CPU request); the overlay widens it", () => {
    const hpa = (objects: K8sObject[]) =>
      objects.find((o) => o.kind === 'HorizontalPodAutoscaler')!.spec as {
        scaleTargetRef: { kind: string; name: string };
        minReplicas: number;
        maxReplicas: number;
        metrics: { resource: { name: string } }[];
      };
    const h = hpa(base.objects);
    expect(h.scaleTargetRef).to.include({ kind: 'Deployment', name: 'envoy' });
    expect(podOf(named('Deployment', 'envoy')).containers.map((c) => c.name)).to.include('mcp-pin');
    // Utilization is measured against requests: a container without one would make the HPA fail.
    for (const c of podOf(named('Deployment', 'envoy')).containers) expect(c.resources?.requests?.cpu, c.name).to.be.a('string');
    expect(h.metrics.map((m) => m.resource.name)).to.deep.equal(['cpu']);
    expect([h.minReplicas, h.maxReplicas]).to.deep.equal([2, 10]);
    // At least as many as the PodDisruptionBudget needs to let one go.
    const p = hpa(prod.objects);
    expect([p.minReplicas, p.maxReplicas]).to.deep.equal([3, 20]);
  });

  it('exposes Envoy in the overlay through an Ingress that does not buffer SSE or cut long calls, to a Service port that exists', () => {
    const ing = prod.objects.find((o) => o.kind === 'Ingress')!;
    const annotations = ing.metadata.annotations ?? {};
    expect(annotations['nginx.ingress.kubernetes.io/proxy-buffering']).to.equal('off');
    expect(Number(annotations['nginx.ingress.kubernetes.io/proxy-read-timeout'])).to.be.at.least(600);
    const backend = (ing.spec as { rules: { http: { paths: { backend: { service: { name: string; port: { name: string } } } }[] } }[] }).rules[0]!.http
      .paths[0]!.backend.service;
    const svc = prod.objects.find((o) => o.kind === 'Service' && o.metadata.name === backend.name)!;
    expect((svc.spec as { ports: { name: string }[] }).ports.map((x) => x.name)).to.include(backend.port.name);
  });

  it("monitors the overlay in the overlay's namespace, labelled for the Prometheus Operator's selectors (base and overlay)", () => {
    const mon = render('deploy/overlays/production/monitoring').objects;
    expect(mon.map((o) => `${o.kind}/${o.metadata.name}`).sort()).to.deep.equal([
      'ConfigMap/mcp-pin-dashboard',
      'PodMonitor/envoy',
      'PodMonitor/mcp-pin',
      'PrometheusRule/mcp-pin',
    ]);
    for (const o of mon) {
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).to.equal('mcp-prod');
      expect(o.metadata.labels?.release, `${o.kind}/${o.metadata.name}`).to.equal('prometheus');
    }
    for (const o of render('deploy/k8s-monitoring').objects.filter((x) => x.kind !== 'ConfigMap'))
      expect(o.metadata.labels?.release, `${o.kind}/${o.metadata.name}`).to.equal('kube-prometheus-stack');
    // The dashboard keeps the label Grafana's sidecar looks for; the PodMonitors' selectors are untouched.
    expect(mon.find((o) => o.kind === 'ConfigMap')!.metadata.labels?.grafana_dashboard).to.equal('1');
    for (const pm of mon.filter((o) => o.kind === 'PodMonitor'))
      expect((pm.spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels).to.deep.equal({ app: 'envoy' });
  });

  it('has an mTLS overlay: mcp-pin starts from its values with TLS on its loopback gRPC port, the probes reach plain /healthz, Envoy accepts its config', async () => {
    // What the overlay changes: two Secrets mounted, the one values file (mcp-pin's TLS, Envoy's extProcTls), nothing else.
    const pod = podOf(mtls.objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'envoy')!);
    const secrets = (pod.volumes ?? []).flatMap((v) => (v.secret ? [v.secret.secretName] : []));
    expect(secrets.sort()).to.deep.equal(['mcp-pin-client-tls', 'mcp-pin-server-tls']);
    const pin = pod.containers.find((c) => c.name === 'mcp-pin')!;
    expect(pin.readinessProbe).to.deep.include({ httpGet: { path: '/healthz', port: 'metrics' } });
    expect((pin.ports ?? []).map((p) => p.containerPort)).to.deep.equal([9464]);
    const config = (name: string, file: string): string =>
      mtls.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith(`${name}-`))!.data![file]!;

    // The overlay's values as mcp-pin reads them, with the certificates where the Secrets would put them.
    const dir = mkdtempSync(`${tmpdir()}/mcp-pin-mtls-overlay-`);
    makeCerts(dir);
    for (const [sub, cert, key] of [
      ['server', 'server.pem', 'server.key'],
      ['client', 'envoy.pem', 'envoy.key'],
    ] as const) {
      mkdirSync(`${dir}/${sub}`);
      copyFileSync(`${dir}/${cert}`, `${dir}/${sub}/tls.crt`);
      copyFileSync(`${dir}/${key}`, `${dir}/${sub}/tls.key`);
      copyFileSync(`${dir}/ca.pem`, `${dir}/${sub}/ca.crt`);
    }
    const port = await freePort();
    const here = (text: string): string =>
      text.replaceAll('/etc/mcp-pin-tls', `${dir}/server`).replaceAll('/etc/envoy-tls', `${dir}/client`).replaceAll('127.0.0.1:50051', `127.0.0.1:${port}`);
    const values = JSON.parse(here(config('mcp-pin-config', 'values.json'))) as { mcpPin: Record<string, unknown> };
    // The pods' DNS name does not resolve here; everything else as shipped.
    values.mcpPin.pinAllow = '127.0.0.0/8';
    writeFileSync(`${dir}/values.json`, JSON.stringify(values));
    const mcpPin = new ManagedProcess('mcp-pin', process.execPath, [`${root}bin/mcp-pin.js`, '--config', `${dir}/values.json`], {
      MCP_PIN_STORE_URL: 'memory:',
      MCP_PIN_METRICS_LISTEN: '127.0.0.1:0',
    }).start();
    try {
      const ready = await mcpPin.waitForJson((o) => o.ready === true);
      expect(mcpPin.output).to.contain('"mutual":true');
      // The kubelet's readiness target: plain HTTP, TLS or not.
      expect((await fetch(`http://127.0.0.1:${String(ready.metricsPort)}/healthz`)).status).to.equal(200);
      const check = (creds: grpc.ChannelCredentials): Promise<string> => healthStatus(port, creds);
      const ca = readFileSync(`${dir}/ca.pem`);
      expect(await check(grpc.credentials.createInsecure())).to.match(/^refused/);
      expect(await check(grpc.credentials.createSsl(ca, readFileSync(`${dir}/client/tls.key`), readFileSync(`${dir}/client/tls.crt`)))).to.equal('SERVING');
    } finally {
      await mcpPin.stop();
    }
    // Envoy accepts the overlay's config with the certificates in place.
    writeFileSync(`${dir}/envoy.yaml`, here(config('envoy-config', 'envoy.yaml')));
    expect(sh(findEnvoy(), ['--mode', 'validate', '-c', `${dir}/envoy.yaml`, '--disable-hot-restart'])).to.contain('OK');
  });

  it('has a Redis Sentinel overlay: three members, mcp-pin asks every Sentinel for the master the script names, the policies let it', () => {
    const sts = sentinel.objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'redis')!;
    expect((sts.spec as { replicas: number }).replicas).to.equal(3);
    const pod = podOf(sts);
    expect(pod.containers.map((c) => c.name).sort()).to.deep.equal(['redis', 'sentinel']);
    const envOf = (c: PodSpec['containers'][number], name: string): string | undefined => c.env?.find((e) => e.name === name)?.value;
    const members = envOf(pod.containers[0]!, 'SENTINEL_HOSTS')!.split(' ');
    const master = envOf(pod.containers[0]!, 'MASTER_NAME')!;
    for (const c of pod.containers) expect([envOf(c, 'SENTINEL_HOSTS'), envOf(c, 'MASTER_NAME')], c.name).to.deep.equal([members.join(' '), master]);
    // The script the members run is the one the example test runs.
    const script = sentinel.objects.find((o) => o.kind === 'ConfigMap' && o.metadata.name.startsWith('redis-ha-'))!.data!['redis-ha.sh'];
    expect(script).to.equal(readFileSync(`${root}deploy/overlays/redis-sentinel/redis-ha.sh`, 'utf8'));
    // mcp-pin's store URL: every member's Sentinel, the monitored master's name, the password from the Secret.
    const pinEnv = podOf(sentinel.objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'envoy')!).containers.find((c) => c.name === 'mcp-pin')!
      .env!;
    const url = pinEnv.find((e) => e.name === 'MCP_PIN_STORE_URL')!.value!;
    expect(url).to.equal(`redis-sentinel://:$(REDIS_PASSWORD)@${members.map((m) => `${m}:26379`).join(',')}/${master}`);
    expect(parseRedisUrl(url)).to.deep.include({ kind: 'sentinel', name: master });
    expect(pinEnv.findIndex((e) => e.name === 'REDIS_PASSWORD')).to.be.lessThan(pinEnv.findIndex((e) => e.name === 'MCP_PIN_STORE_URL'));
    // Names resolve before readiness (a first start), and the Sentinels' port is served.
    const svc = sentinel.objects.find((o) => o.kind === 'Service' && o.metadata.name === 'redis')!.spec as {
      publishNotReadyAddresses: boolean;
      ports: { port: number }[];
    };
    expect(svc.publishNotReadyAddresses).to.equal(true);
    expect(svc.ports.map((p) => p.port)).to.deep.equal([6379, 26379]);
    const policy = sentinel.objects.find((o) => o.kind === 'NetworkPolicy' && o.metadata.name === 'redis')!.spec as {
      ingress: { from: { podSelector: { matchLabels: { app: string } } }[]; ports: { port: number }[] }[];
    };
    expect(policy.ingress.map((r) => [r.from[0]!.podSelector.matchLabels.app, r.ports.map((p) => p.port)])).to.deep.equal([
      ['envoy', [6379, 26379]],
      ['redis', [6379, 26379]],
    ]);
    expect(sentinel.objects.some((o) => o.kind === 'PodDisruptionBudget' && o.metadata.name === 'redis')).to.equal(true);
  });
});
