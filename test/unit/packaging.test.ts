/**
 * The compose stack's structure, on every test run: every file it mounts
 * exists and is the current render of the one Envoy template, every build
 * target exists in the Dockerfile, every fixed address agrees with the
 * rendered Envoy config. (The stack itself runs in `npm run test:compose`.)
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { parse } from 'yaml';
import { COMPOSE, renderCompose } from '../../scripts/render-deploy.js';
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
  it("keeps a CHANGELOG whose versions lead up to package.json's, and whose script names exist", () => {
    const changelog = read('CHANGELOG.md');
    const version = (JSON.parse(read('package.json')) as { version: string }).version;
    const headings = [...changelog.matchAll(/^## (.+)$/gm)].map((m) => m[1]!);
    expect(headings[0]).to.be.oneOf(['Unreleased', version]);
    const released = headings.filter((h) => h !== 'Unreleased');
    // Released sections name a version no newer than the package's, newest first.
    for (const h of released) expect(h, h).to.match(/^\d+\.\d+\.\d+/);
    if (released.length > 0) expect(released[0]!.split(' ')[0]).to.equal(version);
    for (const [, name] of changelog.matchAll(/`([a-z-]+-\d+)`/g)) expect(existsSync(new URL(`src/sessions/lua/${name}.lua`, root)), name).to.equal(true);
  });

  it('ships the license package.json names', () => {
    expect(JSON.parse(read('package.json')).license).to.equal('Apache-2.0');
    expect(read('LICENSE')).to.match(/^\s*Apache License\s+Version 2\.0, January 2004/);
  });

  const compose = parse(read('docker-compose.yml'), { merge: true }) as { services: Record<string, Service>; networks: unknown };
  const dockerfile = read('Dockerfile');

  it('mounts the current render of envoy/envoy.template.yaml', () => {
    const rendered = renderCompose();
    expect(read('deploy/compose/envoy.yaml')).to.equal(rendered['envoy.yaml']);
    expect(read('deploy/compose/eds/eds.json')).to.equal(rendered['eds.json']);
    expect(read('deploy/compose/values.json')).to.equal(rendered['values.json']);
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
        // A variable's default (${VAR:-./path}) is what a plain `docker compose up` mounts.
        const src = (/^\$\{\w+:-([^}]+)\}/.exec(v)?.[1] ?? v).split(':')[0]!;
        if (named.includes(src)) continue;
        expect(existsSync(new URL(src, root)), `${name}: ${src}`).to.equal(true);
      }
    }
  });

  it('gives pods the addresses the Envoy config names, pins only to the pods, and closes every control surface to them', async () => {
    type Svc = {
      networks?: string[] | Record<string, { ipv4_address?: string }>;
      volumes?: string[];
      environment?: Record<string, string>;
      user?: string;
      ports?: string[];
    };
    const svc = (n: string): Svc => compose.services[n] as Svc;
    const networksOf = (n: string): string[] => {
      const nets = svc(n).networks ?? [];
      return Array.isArray(nets) ? nets : Object.keys(nets);
    };
    const ip = (n: string) => (svc(n).networks as Record<string, { ipv4_address: string }>).mcp!.ipv4_address;
    expect([ip('pod1'), ip('pod2')]).to.deep.equal(COMPOSE.pods.map((p) => p.host));
    // The pods share a network with Envoy only; Redis and mcp-pin are on another, which no pod joins.
    for (const pod of ['pod1', 'pod2']) expect(networksOf(pod)).to.deep.equal(['mcp']);
    for (const n of ['mcp-pin-1', 'mcp-pin-2', 'redis']) expect(networksOf(n), n).to.deep.equal(['store']);
    expect(networksOf('envoy')).to.deep.equal(['mcp']);
    // mcp-pin's gRPC port and Envoy's internal listener: sockets on a volume only Envoy and mcp-pin mount.
    const mounting = Object.keys(compose.services).filter((n) => (svc(n).volumes ?? []).some((v) => v.startsWith('mcp-pin-sockets:')));
    expect(mounting.sort()).to.deep.equal(['envoy', 'mcp-pin-1', 'mcp-pin-2']);
    expect(svc('envoy').user).to.equal('101:10001');
    const envoyYaml = read('deploy/compose/envoy.yaml');
    for (const path of COMPOSE.mcpPinSockets) expect(envoyYaml).to.contain(`pipe: { path: "${path}" }`);
    expect(envoyYaml).to.contain(`pipe: { path: "${COMPOSE.internalSocket}", mode: 432 }`);
    // mcp-pin reads the file Envoy's config is rendered from (and checks they agree); each replica its own socket.
    const { loadConfig } = await import('../../src/config.js');
    for (const [i, name] of ['mcp-pin-1', 'mcp-pin-2'].entries()) {
      const env = svc(name).environment!;
      expect(env).to.deep.equal({ MCP_PIN_CONFIG: '/etc/mcp-pin/values.json', MCP_PIN_LISTEN: `unix:${COMPOSE.mcpPinSockets[i]}` });
      expect(svc(name).volumes).to.deep.equal(['./deploy/compose/values.json:/etc/mcp-pin/values.json:ro', 'mcp-pin-sockets:/run/mcp-pin']);
      const cfg = loadConfig([], { ...env, MCP_PIN_CONFIG: new URL('deploy/compose/values.json', root).pathname });
      expect(cfg).to.include({
        storeUrl: 'redis://redis:6379',
        recoveryUrl: `unix:${COMPOSE.internalSocket}`,
        listen: env.MCP_PIN_LISTEN,
        metricsListen: '0.0.0.0:9464',
        networkIsClosed: false,
      });
    }
    // Published to the host: Envoy's public listener and mcp-pin's metrics, on loopback only; nothing else.
    for (const n of Object.keys(compose.services)) for (const p of svc(n).ports ?? []) expect(p, n).to.match(/^127\.0\.0\.1:/);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: compose's own interpolation, as the file holds it
    expect(svc('envoy').ports).to.deep.equal(['127.0.0.1:${MCP_PIN_PORT:-10000}:10000']);
    const cfg = loadConfig([], { MCP_PIN_CONFIG: new URL('deploy/compose/values.json', root).pathname, MCP_PIN_LISTEN: `unix:${COMPOSE.mcpPinSockets[0]}` });
    const { PinAllowlist } = await import('../../src/pin-allowlist.js');
    const allow = new PinAllowlist(cfg.pinAllow);
    for (const p of COMPOSE.pods) expect(allow.allows(`${p.host}:${p.port}`), p.host).to.equal(true);
    for (const other of ['172.28.0.5:6379', '172.28.0.2:9901', '172.28.0.2:10000']) expect(allow.allows(other), other).to.equal(false);
    // The image makes the socket folder for its user and group only.
    expect(dockerfile).to.contain('mkdir -p /run/mcp-pin && chown 10001:10001 /run/mcp-pin && chmod 0770 /run/mcp-pin');
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

  it('runs the image as a numeric non-root user (the kubelet can verify runAsNonRoot) with a health check', async () => {
    const runtime = dockerfile.slice(dockerfile.indexOf('AS runtime'));
    expect(runtime).to.match(/^USER 10001:10001$/m);
    expect(runtime).to.match(/^HEALTHCHECK /m);
    expect(runtime).to.contain('/healthz');
    // On the metrics port mcp-pin was given, not a fixed one: run the check's own script against a server on another port.
    const script = JSON.parse(/^\s*CMD (\[.*\])$/m.exec(runtime.slice(runtime.indexOf('HEALTHCHECK')))![1]!)[2] as string;
    const srv = createServer((req, res) => res.writeHead(req.url === '/healthz' ? 200 : 404).end()).listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const port = (srv.address() as { port: number }).port;
    const check = (env: Record<string, string>): Promise<number | null> =>
      new Promise((resolve) => spawn(process.execPath, ['-e', script], { env: { ...process.env, ...env } }).on('exit', resolve));
    expect(await check({ MCP_PIN_METRICS_LISTEN: `0.0.0.0:${port}` }), 'healthy on the configured port').to.equal(0);
    expect(await check({ MCP_PIN_METRICS_LISTEN: '0.0.0.0:1' }), 'unhealthy where nothing answers').to.equal(1);
    srv.close();
  });
});
