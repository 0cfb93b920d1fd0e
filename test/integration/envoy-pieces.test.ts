/**
 * Issue 30 item 2: mcp-pin's pieces (render:envoy --pieces) merged into an
 * Envoy config of a team's own, as docs/own-envoy.md says: their HTTPS
 * listener (downstream TLS), their filters ahead of mcp-pin's (CORS, JWT),
 * their routes (a direct answer, an API backend), their tracing
 * (OpenTelemetry). Real Envoy, the `mcp-pin` command, SDK pods and the SDK
 * client over TLS: a session is pinned and recovered through it; the team's
 * routes never reach mcp-pin; a request without a token never reaches it;
 * trace context goes through to the pods, pinned and recovered.
 */
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import { createSign, generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, type Server, createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { parse, stringify } from 'yaml';
import { makeCerts } from '../helpers/certs.js';
import { startEnvoyOnFreePorts } from '../helpers/envoy.js';
import { connectClient, type TestClient } from '../helpers/mcp-client.js';
import { freePort } from '../helpers/net.js';
import { startPods, type Pod } from '../helpers/pod.js';
import { ManagedProcess } from '../helpers/process.js';
import { registerForReport } from '../helpers/root-hooks.js';

const root = new URL('../../', import.meta.url).pathname;
const MCP_PIN = `${root}bin/mcp-pin.js`;
const render = (...args: string[]): string =>
  execFileSync(process.execPath, ['--import', 'tsx', `${root}scripts/render-envoy.ts`, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

// biome-ignore lint/suspicious/noExplicitAny: parsed Envoy YAML, walked by the paths the docs name
type Yaml = Record<string, any>;

/** The team's config before mcp-pin: HTTPS, CORS and JWT ahead of everything, two routes of theirs, OpenTelemetry tracing. */
function teamConfig(dir: string, ports: { listen: number; admin: number; api: number; collector: number }, jwks: string): Yaml {
  return {
    admin: { address: { socket_address: { address: '127.0.0.1', port_value: ports.admin } } },
    static_resources: {
      listeners: [
        {
          name: 'team_https',
          address: { socket_address: { address: '127.0.0.1', port_value: ports.listen } },
          filter_chains: [
            {
              transport_socket: {
                name: 'envoy.transport_sockets.tls',
                typed_config: {
                  '@type': 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext',
                  common_tls_context: {
                    tls_certificates: [{ certificate_chain: { filename: join(dir, 'server.pem') }, private_key: { filename: join(dir, 'server.key') } }],
                  },
                },
              },
              filters: [
                {
                  name: 'envoy.filters.network.http_connection_manager',
                  typed_config: {
                    '@type': 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
                    stat_prefix: 'team_https',
                    tracing: {
                      random_sampling: { value: 100 },
                      provider: {
                        name: 'envoy.tracers.opentelemetry',
                        typed_config: {
                          '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig',
                          grpc_service: { envoy_grpc: { cluster_name: 'team_collector' }, timeout: '0.25s' },
                          service_name: 'team-edge',
                        },
                      },
                    },
                    http_filters: [
                      { name: 'envoy.filters.http.cors', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors' } },
                      {
                        name: 'envoy.filters.http.jwt_authn',
                        typed_config: {
                          '@type': 'type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication',
                          providers: { team: { issuer: 'https://auth.team.example', audiences: ['mcp'], local_jwks: { inline_string: jwks }, forward: true } },
                          rules: [{ match: { prefix: '/healthz' } }, { match: { prefix: '/' }, requires: { provider_name: 'team' } }],
                        },
                      },
                      { name: 'envoy.filters.http.router', typed_config: { '@type': 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router' } },
                    ],
                    route_config: {
                      name: 'team',
                      virtual_hosts: [
                        {
                          name: 'team',
                          domains: ['*'],
                          typed_per_filter_config: {
                            'envoy.filters.http.cors': {
                              '@type': 'type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy',
                              allow_origin_string_match: [{ exact: 'https://app.team.example' }],
                              allow_methods: 'GET, POST, DELETE',
                              allow_headers: 'authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id',
                              expose_headers: 'mcp-session-id',
                            },
                          },
                          routes: [
                            { match: { prefix: '/healthz' }, direct_response: { status: 200, body: { inline_string: 'team edge ok' } } },
                            { match: { prefix: '/api' }, route: { cluster: 'team_api' } },
                          ],
                        },
                      ],
                    },
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: 'team_api',
          type: 'STATIC',
          connect_timeout: '1s',
          load_assignment: {
            cluster_name: 'team_api',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: ports.api } } } }] }],
          },
        },
        {
          // Nothing listens there: spans are made and sent, and lost; the test reads trace context at the pods.
          name: 'team_collector',
          type: 'STATIC',
          connect_timeout: '0.25s',
          typed_extension_protocol_options: {
            'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
              '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
              explicit_http_config: { http2_protocol_options: {} },
            },
          },
          load_assignment: {
            cluster_name: 'team_collector',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: ports.collector } } } }] }],
          },
        },
      ],
    },
  };
}

/** The merge, step by step as docs/own-envoy.md ("Pieces for an Envoy of your own") says it. */
function mergePieces(team: Yaml, piecesDir: string): Yaml {
  const piece = <T = Yaml>(name: string): T => parse(readFileSync(join(piecesDir, name), 'utf8'));
  const listener = team.static_resources.listeners[0];
  const hcm = listener.filter_chains[0].filters[0].typed_config;
  // 1. HTTP filters: after the team's own, before their router.
  const router = hcm.http_filters.findIndex((f: Yaml) => f.name === 'envoy.filters.http.router');
  hcm.http_filters.splice(router, 0, ...piece<Yaml[]>('http-filters.yaml'));
  // 2. The virtual host: its keys, and mcp-pin's routes after the team's.
  const { routes, ...vhostKeys } = piece('virtual-host.yaml');
  const vhost = hcm.route_config.virtual_hosts[0];
  Object.assign(vhost, vhostKeys);
  vhost.routes.push(...routes);
  // 3. The listener's and its connection manager's settings.
  const { http_connection_manager: hcmSettings, ...listenerKeys } = piece('listener-settings.yaml');
  Object.assign(listener, listenerKeys);
  Object.assign(hcm, hcmSettings);
  // 4. Clusters, the internal listener.
  team.static_resources.clusters.push(...piece<Yaml[]>('clusters.yaml'));
  team.static_resources.listeners.push(...piece<Yaml[]>('listeners.yaml'));
  // 5. The bootstrap: the runtime layer; the node, as the team's config names none.
  const bootstrap = piece('bootstrap.yaml');
  team.layered_runtime = { layers: [...(team.layered_runtime?.layers ?? []), ...bootstrap.layered_runtime.layers] };
  team.node ??= bootstrap.node;
  return team;
}

const b64url = (data: Buffer | string): string => Buffer.from(data).toString('base64url');

describe('mcp-pin merged into an Envoy config of your own (issue 30 item 2)', function () {
  this.timeout(120_000);
  let dir: string;
  let pods: Pod[] = [];
  const procs: ManagedProcess[] = [];
  let client: TestClient | undefined;
  let api: Server;
  const apiSaw: IncomingHttpHeaders[] = [];
  let base = '';
  let admin = 0;
  let token = '';
  let tls: Agent;
  const tlsFetch = ((input: string | URL, init?: RequestInit) =>
    undiciFetch(input as string, { ...(init as object), dispatcher: tls })) as unknown as typeof fetch;
  const unregister = registerForReport(() => [...procs, ...pods.map((p) => p.proc)]);

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'mcp-pin-pieces-'));
    makeCerts(dir);
    tls = new Agent({ connect: { ca: readFileSync(join(dir, 'ca.pem')) } });
    // The team's identity provider: an RS256 key; Envoy holds its public half.
    const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwks = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid: 'team-1', alg: 'RS256', use: 'sig' }] });
    const signed = `${b64url(JSON.stringify({ alg: 'RS256', kid: 'team-1', typ: 'JWT' }))}.${b64url(
      JSON.stringify({ iss: 'https://auth.team.example', aud: 'mcp', sub: 'tester', exp: Math.floor(Date.now() / 1000) + 3600 }),
    )}`;
    token = `${signed}.${b64url(createSign('RSA-SHA256').update(signed).sign(privateKey))}`;
    // The team's own API behind their own route.
    api = createServer((req, res) => {
      apiSaw.push(req.headers);
      res.end('team api');
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    const apiPort = (api.address() as { port: number }).port;

    pods = await startPods(2);
    // mcp-pin's values: the same file renders the pieces and starts mcp-pin.
    const values = join(dir, 'values.json');
    writeFileSync(
      values,
      JSON.stringify({
        extProc: `unix:${dir}/mcp-pin.sock`,
        internalAddress: `unix:${dir}/envoy-internal.sock`,
        service: `eds:${dir}/eds.json`,
        mcpPin: { storeUrl: 'memory:', metricsListen: '127.0.0.1:0', logLevel: 'info' },
      }),
    );
    render('--values', values, '--pieces', join(dir, 'pieces'), '--route-prefix', '/mcp');
    render('--eds', pods.map((p) => `${p.host}:${p.port}`).join(','), '--out', join(dir, 'eds.json'));
    const pin = new ManagedProcess('mcp-pin', process.execPath, [MCP_PIN, '--config', values]).start();
    procs.push(pin);
    await pin.waitForJson((o) => o.ready === true);

    const ports = await startEnvoyOnFreePorts({
      ports: async () => ({ listen: await freePort(), admin: await freePort(), api: apiPort, collector: await freePort() }),
      configFor: (p) => {
        writeFileSync(join(dir, 'envoy.yaml'), stringify(mergePieces(teamConfig(dir, p, jwks), join(dir, 'pieces'))));
        return join(dir, 'envoy.yaml');
      },
      // mcp-pin healthy in it.
      up: async (p) => {
        const text = await fetch(`http://127.0.0.1:${p.admin}/clusters`).then(
          (r) => r.text(),
          () => '',
        );
        return text.includes('mcp_pin::') && text.includes('health_flags::healthy');
      },
      what: 'mcp-pin healthy in the merged Envoy',
      procs,
    });
    base = `https://localhost:${ports.listen}`;
    admin = ports.admin;
  });
  afterEach(async () => {
    await client?.close();
    client = undefined;
  });
  after(async () => {
    await Promise.all(procs.splice(0).map((p) => p.stop()));
    await Promise.all(pods.splice(0).map((p) => p.stop()));
    api?.close();
    await tls?.close();
    rmSync(dir, { recursive: true, force: true });
    unregister();
  });

  // The tests that count streams run first, before any client whose SDK opens a stream on its own (the GET stream).
  /** ext_proc streams Envoy opened to mcp-pin from the team's listener so far. */
  const streamsToMcpPin = async (): Promise<number> => {
    const stats = await fetch(`http://127.0.0.1:${admin}/stats?filter=ext_proc.*streams_started`).then((r) => r.text());
    return [...stats.matchAll(/^http\.team_https\.ext_proc\.streams_started: (\d+)$/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
  };

  it("leaves the team's own routes to them: no ext_proc stream, no mcp-pin header", async () => {
    const streams = await streamsToMcpPin();
    const health = await tlsFetch(`${base}/healthz`);
    expect([health.status, await health.text()]).to.deep.equal([200, 'team edge ok']);
    const res = await tlsFetch(`${base}/api/things`, { headers: { authorization: `Bearer ${token}`, 'x-mcp-pin-dst': '127.0.0.2:1' } });
    expect([res.status, await res.text()]).to.deep.equal([200, 'team api']);
    expect(
      Object.keys(apiSaw.at(-1) ?? {}).filter((h) => h.startsWith('x-mcp-pin')),
      'the strip runs on every route',
    ).to.deep.equal([]);
    expect(await streamsToMcpPin(), 'mcp-pin was not asked').to.equal(streams);
  });

  it('answers a request without a token 401 before mcp-pin or a pod sees it', async () => {
    const streams = await streamsToMcpPin();
    const before = (await Promise.all(pods.map((p) => p.record()))).flatMap((r) => r.requests).length;
    const res = await tlsFetch(`${base}/mcp`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      }),
    });
    expect(res.status).to.equal(401);
    // On mcp-pin's route Envoy's own answer is a JSON-RPC error, as MCP clients expect.
    expect(((await res.json()) as { error: { message: string } }).error.message).to.contain('401');
    expect(await streamsToMcpPin()).to.equal(streams);
    expect((await Promise.all(pods.map((p) => p.record()))).flatMap((r) => r.requests).length).to.equal(before);
  });

  it("answers a CORS preflight in the team's CORS filter (no mcp-pin, no pod) and exposes mcp-session-id to browsers", async () => {
    const streams = await streamsToMcpPin();
    const preflight = await tlsFetch(`${base}/mcp`, {
      method: 'OPTIONS',
      headers: { origin: 'https://app.team.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'mcp-session-id' },
    });
    expect(preflight.status).to.equal(200);
    expect(preflight.headers.get('access-control-allow-origin')).to.equal('https://app.team.example');
    expect(await streamsToMcpPin()).to.equal(streams);
    expect((await Promise.all(pods.map((p) => p.record()))).flatMap((r) => r.requests).filter((q) => q.httpMethod === 'OPTIONS')).to.deep.equal([]);
    client = await connectClient(`${base}/mcp`, { fetch: tlsFetch, headers: { authorization: `Bearer ${token}`, origin: 'https://app.team.example' } });
    const res = await tlsFetch(`${base}/mcp`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        origin: 'https://app.team.example',
        'mcp-session-id': client.sessionId(),
        'mcp-protocol-version': '2025-06-18',
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'ping' }),
    });
    expect(res.status).to.equal(200);
    expect(res.headers.get('access-control-expose-headers')).to.equal('mcp-session-id');
    expect(res.headers.get('mcp-session-id')).to.equal(client.sessionId());
    await res.text();
  });
  it('pins a session over HTTPS behind the JWT filter and recovers it after its pod restarts, trace context included', async () => {
    const traceId = randomBytes(16).toString('hex');
    client = await connectClient(`${base}/mcp`, {
      fetch: tlsFetch,
      headers: { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    });
    const home = (await client.whoami()).pod;
    for (let i = 0; i < 3; i++) expect((await client.echo(`n${i}`)).pod).to.equal(home);
    const homePod = pods.find((p) => p.name === home)!;
    // A pod's record starts again with its process: keep the home pod's before it restarts.
    const homeBefore = await homePod.record();
    await homePod.restartInPlace();
    const before = await Promise.all(pods.map((p) => p.record()));
    expect((await client.echo('after restart')).text).to.equal('after restart');
    const after = await Promise.all(pods.map((p) => p.record()));
    expect(after.flatMap((r) => r.initialize).length - before.flatMap((r) => r.initialize).length, 'one re-initialize').to.equal(1);
    // The token and the trace went through to the pods on every request of the session: the calls, the
    // recovered one, and the re-initialize of the recovery (it carries the retried request's end-to-end headers).
    // (Another test's client initialized a session too: this one's requests are those of its trace.)
    const mine = [...homeBefore.requests, ...after.flatMap((r) => r.requests)].filter((q) => q.traceparent?.includes(traceId));
    expect(mine.filter((q) => q.rpcMethod === 'tools/call').length).to.be.at.least(5);
    expect(mine.filter((q) => q.rpcMethod === 'initialize').length, 'the first and the recovery').to.equal(2);
    for (const q of mine) {
      expect(q.authorization).to.equal(`Bearer ${token}`);
      expect(q.traceparent, 'the trace of the client, continued by Envoy').to.match(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    }
  });
});
