/**
 * The routes of envoy/envoy.template.yaml that decide which requests reach
 * mcp-pin at all: the MCP-Protocol-Version pattern of the session-less route
 * (RE2 in Envoy, whole value; checked here with the same pattern anchored in
 * JavaScript, which reads this subset of regex syntax the same way).
 */
import { expect } from 'chai';
import { parse } from 'yaml';
import { renderEnvoyConfig, replayMatcher } from '../../envoy/render.js';
import { ENVOY_DEFAULTS } from '../../envoy/params.js';
import { STATE_METHODS } from '../../src/session-state.js';

interface ValueMatcher {
  string_match?: { exact?: string; prefix?: string };
  or_match?: { value_matchers: ValueMatcher[] };
  null_match?: object;
}

interface Route {
  match: {
    headers?: { name: string; present_match?: boolean; string_match?: { safe_regex: { regex: string } } }[];
    dynamic_metadata?: { filter: string; path: { key: string }[]; value: ValueMatcher }[];
  };
  route?: { retry_policy?: { retry_on: string }; internal_redirect_policy?: unknown };
  typed_per_filter_config?: Record<string, { disabled?: boolean; overrides?: { processing_mode?: Record<string, string> } }>;
}

const config = parse(renderEnvoyConfig({ ...ENVOY_DEFAULTS, extProc: [{ host: '127.0.0.1', port: 50051 }], service: { edsPath: '/tmp/eds.json' } })) as {
  static_resources: {
    listeners: { name: string; filter_chains: { filters: { typed_config: { route_config: { virtual_hosts: { routes: Route[] }[] } } }[] }[] }[];
  };
};
const routes = config.static_resources.listeners.find((l) => l.name === 'mcp')!.filter_chains[0]!.filters[0]!.typed_config.route_config.virtual_hosts[0]!
  .routes;
// Session-less routes skip mcp-pin, the body buffer and Envoy's MCP body parser: nothing waits for the body.
const skipsMcpPin = (r: Route): boolean =>
  ['envoy.filters.http.ext_proc', 'envoy.filters.http.buffer', 'envoy.filters.http.mcp'].every((f) => r.typed_per_filter_config?.[f]?.disabled === true);

describe('Envoy routes: what reaches mcp-pin', () => {
  const versionRoute = routes[0]!;
  const regex = new RegExp(`^(?:${versionRoute.match.headers![0]!.string_match!.safe_regex.regex})$`);

  it('sends MCP-Protocol-Version 2026-07-28 and every later date past mcp-pin, and no earlier revision', () => {
    expect(versionRoute.match.headers![0]!.name).to.equal('mcp-protocol-version');
    expect(skipsMcpPin(versionRoute)).to.equal(true);
    for (const v of [
      '2026-07-28',
      '2026-07-29',
      '2026-07-31',
      '2026-08-01',
      '2026-09-30',
      '2026-10-01',
      '2026-12-31',
      '2027-01-01',
      '2029-05-05',
      '2030-01-01',
      '2099-12-31',
      '2100-01-01',
      '2999-01-01',
    ]) {
      expect(regex.test(v), v).to.equal(true);
    }
    for (const v of [
      '2024-11-05',
      '2025-03-26',
      '2025-06-18',
      '2025-11-25',
      '2026-01-01',
      '2026-07-15',
      '2026-07-27',
      '2026-06-30',
      '2026-07-28x',
      ' 2026-07-28',
      '2026-7-28',
      'DRAFT-2026-v1',
      '',
    ]) {
      expect(regex.test(v), v).to.equal(false);
    }
  });

  it('sends requests without a session id but with a protocol version past mcp-pin; everything else goes through it', () => {
    const second = routes[1]!;
    expect(skipsMcpPin(second)).to.equal(true);
    expect(second.match.headers).to.deep.equal([
      { name: 'mcp-session-id', present_match: false },
      { name: 'mcp-protocol-version', present_match: true },
    ]);
    expect(routes.slice(2).some(skipsMcpPin)).to.equal(false);
  });
});

/** Whether Envoy's value matcher accepts this method name (the subset the template uses). */
function accepts(m: ValueMatcher, method: string): boolean {
  if (m.or_match) return m.or_match.value_matchers.some((x) => accepts(x, method));
  if (m.string_match?.exact !== undefined) return m.string_match.exact === method;
  if (m.string_match?.prefix !== undefined) return method.startsWith(m.string_match.prefix);
  return false;
}

const pinnedRoutes = routes.filter((r) => r.match.headers?.some((h) => h.name === ENVOY_DEFAULTS.pinHeader));
const generalPinned = pinnedRoutes.find((r) => !r.match.dynamic_metadata && !r.match.headers!.some((h) => h.name === ':method'))!;

interface HttpFilter {
  name: string;
  typed_config: {
    xds_matcher?: {
      matcher_list: {
        matchers: {
          predicate: {
            and_matcher: {
              predicate: { single_predicate: { input: { typed_config: Record<string, unknown> }; custom_match?: { typed_config: { value: ValueMatcher } } } }[];
            };
          };
          on_match: { action: { typed_config: { typed_config: { typed_config: { processing_mode: Record<string, string>; failure_mode_allow: boolean } } } } };
        }[];
      };
    };
  };
}
const httpFilters = (
  config.static_resources.listeners.find((l) => l.name === 'mcp')!.filter_chains[0]!.filters[0]!.typed_config as unknown as { http_filters: HttpFilter[] }
).http_filters;

describe('Envoy routes: requests that set session state (issue 29)', () => {
  const i = httpFilters.findIndex((f) => f.name === 'mcp_pin.session_state');
  const [match] = httpFilters[i]!.typed_config.xds_matcher!.matcher_list.matchers;
  const [method, pinned] = match!.predicate.and_matcher.predicate.map((p) => p.single_predicate);

  it("reads exactly the state-setting methods of pinned sessions (Envoy's MCP filter names them before it), and fails open", () => {
    expect(i, 'after the MCP filter').to.be.greaterThan(httpFilters.findIndex((f) => f.name === 'envoy.filters.http.mcp'));
    expect(method!.input.typed_config).to.include({ filter: 'envoy.filters.http.mcp' });
    for (const m of STATE_METHODS) expect(accepts(method!.custom_match!.typed_config.value, m), m).to.equal(true);
    for (const m of ['tools/call', 'resources/read', 'ping', 'initialize', 'logging/message', 'notifications/initialized'])
      expect(accepts(method!.custom_match!.typed_config.value, m), m).to.equal(false);
    expect(pinned!.input.typed_config).to.include({ header_name: ENVOY_DEFAULTS.pinHeader });
    const extProc = match!.on_match.action.typed_config.typed_config.typed_config;
    expect(extProc.processing_mode).to.include({ request_body_mode: 'BUFFERED', response_body_mode: 'BUFFERED' });
    expect(extProc.failure_mode_allow).to.equal(true);
  });
});

describe('Envoy routes: replay after a connection reset', () => {
  const replayRoute = pinnedRoutes.find((r) => r.match.dynamic_metadata)!;
  const matcher = replayRoute.match.dynamic_metadata![0]!;

  it("retries resets only on the pinned route whose method (from Envoy's MCP filter) is safe to run twice", () => {
    expect(matcher.filter).to.equal('envoy.filters.http.mcp');
    expect(matcher.path).to.deep.equal([{ key: 'method' }]);
    for (const r of routes) {
      const resets = r.route?.retry_policy?.retry_on.split(',').includes('reset') ?? false;
      expect(resets, JSON.stringify(r.match)).to.equal(r === replayRoute);
    }
    // It comes before the general pinned route, which would otherwise take every pinned request.
    expect(pinnedRoutes.indexOf(replayRoute)).to.be.lessThan(pinnedRoutes.indexOf(generalPinned));
  });

  it('treats reads, notifications and client responses as safe by default; tool calls and unknown methods never', () => {
    for (const m of [
      'ping',
      'tools/list',
      'prompts/list',
      'prompts/get',
      'resources/list',
      'resources/templates/list',
      'resources/read',
      'completion/complete',
      'notifications/cancelled',
      'notifications/initialized',
      '__jsonrpc_response',
    ]) {
      expect(accepts(matcher.value, m), m).to.equal(true);
    }
    for (const m of ['tools/call', 'initialize', 'sampling/createMessage', 'resources/subscribe', 'logging/setLevel', 'tasks/get', 'notifications', 'x']) {
      expect(accepts(matcher.value, m), m).to.equal(false);
    }
  });

  it("renders the operator's list: one method, several, or none", () => {
    expect(replayMatcher([])).to.equal('{ null_match: {} }');
    expect(replayMatcher(['tools/call'])).to.equal('{ string_match: { exact: "tools/call" } }');
    const two = parse(replayMatcher(['tools/call', 'x/*'])) as ValueMatcher;
    expect(accepts(two, 'tools/call') && accepts(two, 'x/y') && !accepts(two, 'tools/list')).to.equal(true);
  });
});

describe("Envoy's MCP filter metadata, by Envoy version (issue 30 item 1)", () => {
  const render = (envoyVersion: string): string =>
    renderEnvoyConfig({
      ...ENVOY_DEFAULTS,
      envoyVersion,
      replaySafeTools: ['echo'],
      extProc: [{ host: '127.0.0.1', port: 50051 }],
      service: { edsPath: '/tmp/eds.json' },
    });
  /** Every place the config reads the method (route matchers, the composite's inputs, the access log), by namespace. */
  const readers = (yaml: string): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const m of yaml.matchAll(/filter: ([\w.]+)\n\s+path: \[ \{ key: (?:method|params) \}|%DYNAMIC_METADATA\(([\w.]+):method\)%/g)) {
      const ns = (m[1] ?? m[2])!;
      out[ns] = (out[ns] ?? 0) + 1;
    }
    return out;
  };

  it('reads the method where each Envoy writes it: mcp_proxy before 1.38, envoy.filters.http.mcp from 1.38 (seen on 1.36-1.40)', () => {
    const modern = readers(render('1.40'));
    expect(Object.keys(modern)).to.deep.equal(['envoy.filters.http.mcp']);
    // Route matchers (replay, the safe tool's two), the state and task inputs, the access log.
    expect(modern['envoy.filters.http.mcp']).to.be.at.least(6);
    for (const v of ['1.38', '1.39.3']) expect(readers(render(v)), v).to.deep.equal(modern);
    expect(readers(render('1.37.0'))).to.deep.equal({ mcp_proxy: modern['envoy.filters.http.mcp'] });
    // The filter itself keeps its name: only where it writes changed.
    expect(render('1.37')).to.contain('- name: envoy.filters.http.mcp\n');
  });
});
