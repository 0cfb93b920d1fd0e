/**
 * The routes of envoy/envoy.template.yaml that decide which requests reach
 * mcp-pin at all: the MCP-Protocol-Version pattern of the session-less route
 * (RE2 in Envoy, whole value; checked here with the same pattern anchored in
 * JavaScript, which reads this subset of regex syntax the same way).
 */
import { expect } from 'chai';
import { parse } from 'yaml';
import { ENVOY_DEFAULTS, renderEnvoyConfig } from '../../envoy/render.js';

interface Route {
  match: { headers?: { name: string; present_match?: boolean; string_match?: { safe_regex: { regex: string } } }[] };
  typed_per_filter_config?: Record<string, { disabled?: boolean }>;
}

const config = parse(renderEnvoyConfig({ ...ENVOY_DEFAULTS, extProc: [{ host: '127.0.0.1', port: 50051 }], service: { edsPath: '/tmp/eds.json' } })) as {
  static_resources: { listeners: { name: string; filter_chains: { filters: { typed_config: { route_config: { virtual_hosts: { routes: Route[] }[] } } }[] }[] }[] };
};
const routes = config.static_resources.listeners.find((l) => l.name === 'mcp')!.filter_chains[0]!.filters[0]!.typed_config.route_config.virtual_hosts[0]!.routes;
const skipsMcpPin = (r: Route): boolean => r.typed_per_filter_config?.['envoy.filters.http.ext_proc']?.disabled === true;

describe('Envoy routes: what reaches mcp-pin', () => {
  const versionRoute = routes[0]!;
  const regex = new RegExp(`^(?:${versionRoute.match.headers![0]!.string_match!.safe_regex.regex})$`);

  it('sends MCP-Protocol-Version 2026-07-28 and every later date past mcp-pin, and no earlier revision', () => {
    expect(versionRoute.match.headers![0]!.name).to.equal('mcp-protocol-version');
    expect(skipsMcpPin(versionRoute)).to.equal(true);
    for (const v of ['2026-07-28', '2026-07-29', '2026-07-31', '2026-08-01', '2026-09-30', '2026-10-01', '2026-12-31', '2027-01-01', '2029-05-05', '2030-01-01', '2099-12-31', '2100-01-01', '2999-01-01']) {
      expect(regex.test(v), v).to.equal(true);
    }
    for (const v of ['2024-11-05', '2025-03-26', '2025-06-18', '2025-11-25', '2026-01-01', '2026-07-15', '2026-07-27', '2026-06-30', '2026-07-28x', ' 2026-07-28', '2026-7-28', 'DRAFT-2026-v1', '']) {
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
