/**
 * The compose stack's structure, on every test run: every file it mounts
 * exists and is the current render of the one Envoy template, every build
 * target exists in the Dockerfile, every fixed address agrees with the
 * rendered Envoy config. (The stack itself runs in `npm run test:compose`.)
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { COMPOSE, renderCompose, renderK8sEnvoyConfig } from '../../scripts/render-deploy.js';
import { PRODUCTION_NODE_ARGS } from '../helpers/mcp-pin.js';

const root = new URL('../../', import.meta.url);
const read = (p: string): string => readFileSync(new URL(p, root), 'utf8');

interface Service {
  image?: string;
  build?: { context: string; target: string };
  volumes?: string[];
  ports?: string[];
  environment?: Record<string, string>;
  networks?: { mcp?: { ipv4_address: string } };
  depends_on?: unknown;
}

describe('packaging: docker-compose.yml and Dockerfile', () => {
  const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>; networks: unknown };
  const dockerfile = read('Dockerfile');

  it('mounts the current render of envoy/envoy.template.yaml', () => {
    const rendered = renderCompose();
    expect(read('deploy/compose/envoy.yaml')).to.equal(rendered['envoy.yaml']);
    expect(read('deploy/compose/eds.json')).to.equal(rendered['eds.json']);
  });

  it('has the promised services, each buildable or pulled', () => {
    expect(Object.keys(compose.services).sort()).to.deep.equal(['envoy', 'mcp-pin-1', 'mcp-pin-2', 'pod1', 'pod2', 'redis', 'tests']);
    const targets = [...dockerfile.matchAll(/^FROM \S+ AS (\S+)$/gm)].map((m) => m[1]);
    for (const [name, s] of Object.entries(compose.services)) {
      if (s.build) expect(targets, name).to.include(s.build.target);
      else expect(s.image, name).to.be.a('string');
    }
    // Official images by default, replaceable (the compose test uses images built without a registry).
    expect(compose.services.envoy!.image).to.match(/^\$\{ENVOY_IMAGE:-envoyproxy\/envoy:v1\.40\.\d+\}$/);
    expect(compose.services.redis!.image).to.match(/^\$\{REDIS_IMAGE:-redis:7/);
  });

  it('has a tests service whose script exists and whose image carries it', () => {
    const t = compose.services.tests as Service & { command: string[]; profiles: string[] };
    expect(t.profiles).to.deep.equal(['test']);
    const script = t.command[t.command.length - 1]!;
    expect(existsSync(new URL(script, root)), script).to.equal(true);
    expect(t.environment!.MCP_URL).to.equal('http://envoy:10000/mcp');
    const demoStage = dockerfile.slice(dockerfile.indexOf('AS demo-pod'), dockerfile.indexOf('AS prod-deps'));
    expect(demoStage).to.contain('COPY scripts scripts');
    expect(demoStage).to.contain('COPY test/helpers test/helpers');
  });

  it('runs mcp-pin with the node flags the benchmark measures it with', () => {
    const entry = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(JSON.parse(entry ?? 'null')).to.deep.equal(['node', ...PRODUCTION_NODE_ARGS, 'dist/src/main.js']);
    // The installed `mcp-pin` binary (package.json bin) too.
    expect(read('src/main.ts').split('\n')[0]).to.equal(`#!/usr/bin/env -S node ${PRODUCTION_NODE_ARGS.join(' ')}`);
  });

  it('mounts only files that exist, or named volumes it declares', () => {
    const named = Object.keys((compose as unknown as { volumes?: Record<string, unknown> }).volumes ?? {});
    for (const [name, s] of Object.entries(compose.services)) {
      for (const v of s.volumes ?? []) {
        const src = v.split(':')[0]!;
        if (named.includes(src)) continue;
        expect(existsSync(new URL(src, root)), `${name}: ${src}`).to.equal(true);
      }
    }
  });

  it('gives pods and replicas the addresses the Envoy config names, and pins only to the pods', async () => {
    const ip = (n: string) => compose.services[n]!.networks!.mcp!.ipv4_address;
    expect([ip('pod1'), ip('pod2')]).to.deep.equal(COMPOSE.pods.map((p) => p.host));
    expect([ip('mcp-pin-1'), ip('mcp-pin-2')]).to.deep.equal(COMPOSE.mcpPin.map((p) => p.host));
    const envoyYaml = read('deploy/compose/envoy.yaml');
    for (const p of COMPOSE.mcpPin) expect(envoyYaml).to.contain(`address: "${p.host}", port_value: ${p.port}`);
    expect(compose.services['mcp-pin-1']!.environment!.MCP_PIN_STORE_URL).to.equal('redis://redis:6379');
    expect(compose.services['mcp-pin-1']!.environment!.MCP_PIN_RECOVERY_URL).to.equal('http://envoy:10001');
    expect(compose.services.envoy!.ports).to.deep.equal(['127.0.0.1:${MCP_PIN_PORT:-10000}:10000']);
    const { PinAllowlist } = await import('../../src/pin-allowlist.js');
    const allow = new PinAllowlist(compose.services['mcp-pin-2']!.environment!.MCP_PIN_PIN_ALLOW!);
    for (const p of COMPOSE.pods) expect(allow.allows(`${p.host}:${p.port}`), p.host).to.equal(true);
    for (const other of ['172.28.0.5:6379', '172.28.0.2:9901', '172.28.0.21:50051']) expect(allow.allows(other), other).to.equal(false);
  });

  it('builds and runs on Node 24 LTS, and ships the protos the gRPC server loads at run time', () => {
    expect(dockerfile).to.match(/^ARG NODE_IMAGE=node:24-bookworm-slim$/m);
    expect([...dockerfile.matchAll(/^FROM \$\{NODE_IMAGE\} AS/gm)]).to.have.length(3);
    // Builds without a registry once the base images are local: no syntax line, no digest of its own.
    expect(dockerfile).to.not.match(/^# *syntax=/m);
    expect(dockerfile).to.not.contain('@sha256:');
    const build = dockerfile.slice(0, dockerfile.indexOf('AS demo-pod'));
    expect(build).to.match(/^COPY protos protos$/m);
    expect(JSON.parse(read('package.json')).scripts.build).to.contain('cp -r protos dist/protos');
  });

  it('runs the image as a numeric non-root user (the kubelet can verify runAsNonRoot) with a health check', () => {
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    expect(runtime).to.match(/^USER 1000:1000$/m);
    expect(runtime).to.match(/^HEALTHCHECK /m);
    expect(runtime).to.contain('/healthz');
  });
});

describe('packaging: Kubernetes example (syntax only; not run here)', () => {
  const docs = parseAllDocuments(read('deploy/k8s/mcp-pin.yaml')).map((d) => {
    expect(d.errors, 'YAML errors').to.deep.equal([]);
    return d.toJS() as { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec?: Record<string, unknown> };
  });
  const byKind = (kind: string, name: string) => docs.find((d) => d.kind === kind && d.metadata.name === name);

  it('is a list of well-formed objects in the mcp namespace', () => {
    expect(docs.length).to.be.greaterThan(8);
    for (const d of docs) {
      expect(d.apiVersion, d.metadata?.name).to.be.a('string');
      expect(d.metadata.name).to.match(/^[a-z0-9-]+$/);
      if (d.kind !== 'Namespace') expect(d.metadata.namespace, d.metadata.name).to.equal('mcp');
    }
  });

  it('uses headless Services for pods and replicas, with the names the Envoy config resolves', () => {
    expect(byKind('Service', 'mcp-server-pods')!.spec!.clusterIP).to.equal('None');
    expect(byKind('Service', 'mcp-pin-replicas')!.spec!.clusterIP).to.equal('None');
    const cm = parse(read('deploy/k8s/envoy-config.yaml')) as { data: { 'envoy.yaml': string } };
    expect(cm.data['envoy.yaml']).to.contain('mcp-server-pods.mcp.svc.cluster.local');
    expect(cm.data['envoy.yaml']).to.contain('mcp-pin-replicas.mcp.svc.cluster.local');
    expect(read('deploy/k8s/envoy-config.yaml')).to.equal(renderK8sEnvoyConfig());
  });

  it('probes mcp-pin readiness with gRPC health and gives the drain time to finish', () => {
    const d = byKind('Deployment', 'mcp-pin') as unknown as { spec: { template: { spec: { terminationGracePeriodSeconds: number; containers: { readinessProbe: { grpc: { port: number } }; env: { name: string; value: string }[] }[] } } } };
    const pod = d.spec.template.spec;
    expect(pod.containers[0]!.readinessProbe.grpc.port).to.equal(50051);
    expect(pod.terminationGracePeriodSeconds * 1000).to.be.greaterThan(2000 + 10_000);
    expect(pod.containers[0]!.env.find((e) => e.name === 'MCP_PIN_RECOVERY_URL')!.value).to.contain('envoy-internal');
    expect(pod.containers[0]!.env.find((e) => e.name === 'MCP_PIN_PIN_ALLOW')!.value).to.equal('dns:mcp-server-pods.mcp.svc.cluster.local:8080');
  });

  it('embeds an Envoy config that real Envoy 1.40 accepts', async () => {
    const { execFileSync } = await import('node:child_process');
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const { findEnvoy } = await import('../helpers/envoy.js');
    const cm = parse(read('deploy/k8s/envoy-config.yaml')) as { data: { 'envoy.yaml': string } };
    const file = `${mkdtempSync(`${tmpdir()}/k8s-envoy-`)}/envoy.yaml`;
    writeFileSync(file, cm.data['envoy.yaml']);
    const out = execFileSync(findEnvoy(), ['--mode', 'validate', '-c', file, '--disable-hot-restart'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).to.contain('OK');
  });
});
