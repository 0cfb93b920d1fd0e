/**
 * The compose stack cannot run here (no Docker engine), so its structure is
 * checked: every file it mounts exists and is the current render of the one
 * Envoy template, every build target exists in the Dockerfile, every fixed
 * address agrees with the rendered Envoy config.
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { COMPOSE, renderCompose } from '../../scripts/render-compose.js';

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
    expect(Object.keys(compose.services).sort()).to.deep.equal(['envoy', 'mcp-pin-1', 'mcp-pin-2', 'pod1', 'pod2', 'redis']);
    const targets = [...dockerfile.matchAll(/^FROM \S+ AS (\S+)$/gm)].map((m) => m[1]);
    for (const [name, s] of Object.entries(compose.services)) {
      if (s.build) expect(targets, name).to.include(s.build.target);
      else expect(s.image, name).to.be.a('string');
    }
    expect(compose.services.envoy!.image).to.match(/^envoyproxy\/envoy:v1\.40\./);
  });

  it('mounts only files that exist', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const v of s.volumes ?? []) {
        const src = v.split(':')[0]!;
        expect(existsSync(new URL(src, root)), `${name}: ${src}`).to.equal(true);
      }
    }
  });

  it('gives pods and replicas the addresses the Envoy config names', () => {
    const ip = (n: string) => compose.services[n]!.networks!.mcp!.ipv4_address;
    expect([ip('pod1'), ip('pod2')]).to.deep.equal(COMPOSE.pods.map((p) => p.host));
    expect([ip('mcp-pin-1'), ip('mcp-pin-2')]).to.deep.equal(COMPOSE.mcpPin.map((p) => p.host));
    const envoyYaml = read('deploy/compose/envoy.yaml');
    for (const p of COMPOSE.mcpPin) expect(envoyYaml).to.contain(`address: "${p.host}", port_value: ${p.port}`);
    expect(compose.services['mcp-pin-1']!.environment!.MCP_PIN_STORE_URL).to.equal('redis://redis:6379');
    expect(compose.services['mcp-pin-1']!.environment!.MCP_PIN_RECOVERY_URL).to.equal('http://envoy:10001');
    expect(compose.services.envoy!.ports).to.deep.equal(['10000:10000']);
  });

  it('runs the image as a non-root user with a health check', () => {
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    expect(runtime).to.match(/^USER node$/m);
    expect(runtime).to.match(/^HEALTHCHECK /m);
    expect(runtime).to.contain('/healthz');
  });
});
