/**
 * render:envoy --pieces (envoy/pieces.ts): what is cut from the whole config
 * and what changes for a shared listener. The merged config runs with real
 * Envoy in test/integration/envoy-pieces.test.ts.
 */
import { expect } from 'chai';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { cutPieces, PIECE_FILES } from '../../envoy/pieces.js';
import { ENVOY_DEFAULTS, type EnvoyParams } from '../../envoy/params.js';
import { renderEnvoyConfig } from '../../envoy/render.js';
import { runRenderCommand } from '../../envoy/render-command.js';
import { TemplateError } from '../../src/errors.js';

// biome-ignore lint/suspicious/noExplicitAny: parsed Envoy YAML, walked by the paths the docs name
type Yaml = Record<string, any>;
const params = (over: Partial<EnvoyParams> = {}): EnvoyParams => ({
  ...ENVOY_DEFAULTS,
  extProc: [{ host: '127.0.0.1', port: 50051 }],
  service: { edsPath: '/tmp/eds.json' },
  ...over,
});
const whole = (over: Partial<EnvoyParams> = {}): Yaml => parse(renderEnvoyConfig(params(over)));
const pieces = (prefix = '/', over: Partial<EnvoyParams> = {}): Yaml =>
  Object.fromEntries([...cutPieces(renderEnvoyConfig(params(over)), { routePrefix: prefix })].map(([name, text]) => [name, parse(text)]));
const hcmOf = (config: Yaml): Yaml => config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;

describe('render:envoy --pieces: mcp-pin for an Envoy config of your own', () => {
  const p = pieces('/mcp');
  const filters = p[PIECE_FILES.httpFilters] as Yaml[];
  const routes = p[PIECE_FILES.virtualHost].routes as Yaml[];
  const wholeFilters = (hcmOf(whole()).http_filters as Yaml[]).filter((f) => f.name !== 'envoy.filters.http.router');

  it("gives mcp-pin's HTTP filters, in the whole config's order, names of their own, and all but the header strip off by default", () => {
    expect(filters.map((f) => f.name)).to.deep.equal([
      'mcp_pin.header_mutation',
      'mcp_pin.rbac',
      'mcp_pin.buffer',
      'mcp_pin.ext_proc',
      'mcp_pin.mcp',
      'mcp_pin.session_state',
    ]);
    expect(filters.map((f) => f.typed_config)).to.deep.equal(wholeFilters.map((f) => f.typed_config));
    expect(
      filters.filter((f) => f.disabled !== true).map((f) => f.name),
      'on for every route of the listener',
    ).to.deep.equal(['mcp_pin.header_mutation']);
  });

  it('turns them on in its own routes only where the whole config has them on, under the prefix, each route named', () => {
    const wholeRoutes = hcmOf(whole()).route_config.virtual_hosts[0].routes as Yaml[];
    expect(routes).to.have.length(wholeRoutes.length);
    routes.forEach((r, i) => {
      expect(r.name).to.equal(`mcp_pin_${i}`);
      expect(r.match.prefix).to.equal('/mcp');
      expect({ ...r.match, prefix: '/' }).to.deep.equal(wholeRoutes[i]!.match);
      const on = Object.keys(r.typed_per_filter_config).filter((k) => k.startsWith('mcp_pin.'));
      const sessionless = wholeRoutes[i]!.typed_per_filter_config?.['envoy.filters.http.ext_proc']?.disabled === true;
      if (sessionless) expect(on, `route ${i}: session-less, no mcp-pin`).to.deep.equal([]);
      else expect(on.sort(), `route ${i}`).to.deep.equal(['mcp_pin.buffer', 'mcp_pin.ext_proc', 'mcp_pin.mcp', 'mcp_pin.rbac', 'mcp_pin.session_state']);
      // The pinned cluster's upstream filter configs stay as they were.
      for (const [k, v] of Object.entries(wholeRoutes[i]!.typed_per_filter_config ?? {}))
        if (!k.startsWith('envoy.filters.http.') || k.endsWith('.lua')) expect(r.typed_per_filter_config[k]).to.deep.equal(v);
    });
    expect(routes.filter((r) => Object.keys(r.typed_per_filter_config).length === 0)).to.have.length(2);
  });

  it("answers in JSON-RPC only on mcp-pin's routes, so the listener's other replies stay as they are", () => {
    const mappers = p[PIECE_FILES.listenerSettings].http_connection_manager.local_reply_config.mappers as Yaml[];
    const wholeMappers = hcmOf(whole()).local_reply_config.mappers as Yaml[];
    expect(mappers).to.have.length(wholeMappers.length);
    mappers.forEach((m, i) => {
      const [ours, theirs] = m.filter.and_filter.filters;
      expect(ours.extension_filter.typed_config.expression).to.equal("xds.route_name.startsWith('mcp_pin_')");
      expect(theirs).to.deep.equal(wholeMappers[i]!.filter);
    });
    expect(p[PIECE_FILES.listenerSettings].per_connection_buffer_limit_bytes).to.equal(ENVOY_DEFAULTS.bufferLimitBytes);
  });

  it('gives the clusters, the other listeners and the bootstrap as they are in the whole config', () => {
    const w = whole({ statsListen: { host: '0.0.0.0', port: 9902 } });
    const q = pieces('/', { statsListen: { host: '0.0.0.0', port: 9902 } });
    expect(q[PIECE_FILES.clusters]).to.deep.equal(w.static_resources.clusters);
    expect((q[PIECE_FILES.listeners] as Yaml[]).map((l) => l.name)).to.deep.equal(w.static_resources.listeners.slice(1).map((l: Yaml) => l.name));
    expect(q[PIECE_FILES.listeners]).to.deep.equal(w.static_resources.listeners.slice(1));
    expect(q[PIECE_FILES.bootstrap]).to.deep.equal({ node: w.node, layered_runtime: w.layered_runtime });
    expect(q[PIECE_FILES.virtualHost].include_request_attempt_count).to.equal(true);
    expect((q[PIECE_FILES.virtualHost].routes as Yaml[]).every((r) => r.match.prefix === '/')).to.equal(true);
  });

  it('refuses a prefix that is not a path', () => {
    expect(() => cutPieces(renderEnvoyConfig(params()), { routePrefix: 'mcp' })).to.throw(TemplateError, 'must start with /');
  });

  describe('the command', () => {
    const run = (argv: string[]): { code: number; out: string; err: string } => {
      let out = '';
      let err = '';
      const code = runRenderCommand(argv, { out: (t) => (out += t), err: (t) => (err += t), command: 'render' });
      return { code, out, err };
    };
    const base = ['--set', 'extProc=127.0.0.1:50051', '--set', 'service=eds:/tmp/eds.json'];

    it('writes every piece into the folder it makes, and says where', () => {
      const dir = mkdtempSync(join(tmpdir(), 'pieces-'));
      try {
        const r = run([...base, '--pieces', join(dir, 'new'), '--route-prefix', '/mcp']);
        expect(r.code, r.err).to.equal(0);
        expect(readdirSync(join(dir, 'new')).sort()).to.deep.equal(Object.values(PIECE_FILES).sort());
        expect(r.err).to.contain('docs/own-envoy.md');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('refuses --pieces with --out or --eds, --route-prefix without --pieces, and a bad prefix, in one line each', () => {
      expect(run([...base, '--pieces', '/tmp/x', '--out', '/tmp/y.yaml'])).to.include({ code: 2 });
      expect(run([...base, '--route-prefix', '/mcp']).err).to.contain('--route-prefix goes with --pieces');
      const bad = run([...base, '--pieces', '/tmp/never-made-pieces', '--route-prefix', 'mcp']);
      expect(bad.code).to.equal(2);
      expect(bad.err).to.contain('must start with /');
    });
  });
});
