/**
 * The benchmark's Envoy setups. All are the one rendered template; the rivals
 * only swap the HTTP filters and routes, so listeners and clusters are equal.
 */
import { parse, stringify } from 'yaml';

interface Listener {
  name: string;
  filter_chains: { filters: { typed_config: { http_filters: unknown[]; route_config: { virtual_hosts: { routes: unknown[] }[] } } }[] }[];
}
interface Config {
  static_resources: { listeners: Listener[]; clusters: { name: string }[] };
}

function withoutMcpPin(yaml: string, filters: unknown[]): string {
  const cfg = parse(yaml) as Config;
  cfg.static_resources.listeners = cfg.static_resources.listeners.filter((l) => l.name === 'mcp');
  // mcp_pinned's retry filter talks to mcp_pin: both go.
  cfg.static_resources.clusters = cfg.static_resources.clusters.filter((c) => c.name !== 'mcp_pin' && c.name !== 'mcp_pinned');
  const hcm = cfg.static_resources.listeners[0]!.filter_chains[0]!.filters[0]!.typed_config;
  const router = hcm.http_filters[hcm.http_filters.length - 1];
  hcm.http_filters = [...filters, router];
  const vh = hcm.route_config.virtual_hosts[0]!;
  vh.routes = [vh.routes[vh.routes.length - 1]];
  return stringify(cfg);
}

/** Row 1: Envoy alone, load-balancing to the pods, no session awareness. */
export const envoyAlone = (yaml: string): string => withoutMcpPin(yaml, []);

/** Row 2: Envoy's native stateful session, envelope on mcp-session-id (no external calls). */
export const envoyEnvelope = (yaml: string): string =>
  withoutMcpPin(yaml, [
    {
      name: 'envoy.filters.http.stateful_session',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSession',
        session_state: {
          name: 'envoy.http.stateful_session.envelope',
          typed_config: {
            '@type': 'type.googleapis.com/envoy.extensions.http.stateful_session.envelope.v3.EnvelopeSessionState',
            header: { name: 'mcp-session-id' },
          },
        },
      },
    },
  ]);

/** mcp-pin as shipped, minus Envoy's MCP filter (no replay after a reset): what the method parse costs. */
export const withoutMcpFilter = (yaml: string): string => {
  const cfg = parse(yaml) as Config;
  const hcm = cfg.static_resources.listeners.find((l) => l.name === 'mcp')!.filter_chains[0]!.filters[0]!.typed_config;
  hcm.http_filters = hcm.http_filters.filter((f) => (f as { name: string }).name !== 'envoy.filters.http.mcp');
  return stringify(cfg);
};
