/**
 * The pieces of the rendered config to merge into an Envoy config of one's
 * own (render:envoy --pieces <dir>): cut from the very config the tests run,
 * so the pieces cannot drift from it. What changes for a shared listener:
 *
 * - mcp-pin's HTTP filters get names of their own (mcp_pin.*), so they never
 *   collide with a filter of the operator's (an rbac or ext_proc of theirs)
 *   nor share its per-route configs.
 * - Every one of them but the header strip is disabled by default and turned
 *   on by mcp-pin's routes only: the operator's other routes never pay for
 *   it (no ext_proc stream, no buffering, no method parsing). The strip
 *   stays on everywhere: no client may speak for Envoy or mcp-pin on any route.
 * - The routes get names (mcp_pin_*) and may sit under a path prefix; the
 *   local-reply mappers answer in JSON-RPC on those routes only, so the
 *   operator's own replies elsewhere are left as they are.
 */
import { parse, stringify } from 'yaml';
import { TemplateError } from '../src/errors.js';

/** What the operator's listener needs besides filters and routes: merge into the listener and its HttpConnectionManager. */
const HCM_SETTINGS = ['max_request_headers_kb', 'common_http_protocol_options', 'local_reply_config'] as const;
/** The header strip: stays enabled on every route of the listener. */
const ALWAYS_ON = 'envoy.filters.http.header_mutation';
const EXT_PROC = 'envoy.filters.http.ext_proc';
const ROUTE_FILTER_CONFIG = 'type.googleapis.com/envoy.config.route.v3.FilterConfig';
export const PIECE_FILTER_PREFIX = 'mcp_pin.';
export const PIECE_ROUTE_PREFIX = 'mcp_pin_';

type Yaml = Record<string, unknown>;

export interface PiecesOptions {
  /** Path prefix of mcp-pin's routes in the operator's virtual host ("/": every path not matched by a route of theirs ahead of them). */
  routePrefix: string;
}

/** File name -> YAML text, in the order the docs describe them. */
export type Pieces = Map<string, string>;

export const PIECE_FILES = {
  httpFilters: 'http-filters.yaml',
  virtualHost: 'virtual-host.yaml',
  listenerSettings: 'listener-settings.yaml',
  clusters: 'clusters.yaml',
  listeners: 'listeners.yaml',
  bootstrap: 'bootstrap.yaml',
} as const;

/** Cuts the pieces out of a rendered whole config. */
export function cutPieces(renderedYaml: string, options: PiecesOptions): Pieces {
  if (!options.routePrefix.startsWith('/')) throw new TemplateError(`--route-prefix ${options.routePrefix}: must start with /`);
  const whole = parse(renderedYaml) as Yaml;
  const resources = whole.static_resources as { listeners: Yaml[]; clusters: Yaml[] };
  const [publicListener, ...otherListeners] = resources.listeners;
  if (publicListener?.name !== 'mcp') throw new TemplateError('the rendered config has no public listener "mcp" first');
  const hcm = connectionManager(publicListener);
  const filters = hcm.http_filters as Yaml[];
  const ownFilters = filters.filter((f) => f.name !== 'envoy.filters.http.router');
  const renamed = new Map(
    ownFilters.map((f) => [f.name as string, `${PIECE_FILTER_PREFIX}${(f.name as string).replace(/^envoy\.filters\.http\.|^mcp_pin\./, '')}`]),
  );
  const offByDefault = ownFilters.map((f) => f.name as string).filter((n) => n !== ALWAYS_ON);

  const httpFilters = ownFilters.map((f) => ({ ...f, name: renamed.get(f.name as string), ...(f.name === ALWAYS_ON ? {} : { disabled: true }) }));
  const virtualHost = (hcm.route_config as { virtual_hosts: Yaml[] }).virtual_hosts[0] as Yaml;
  const routes = (virtualHost.routes as Yaml[]).map((route, i) => pieceRoute(route, i, { renamed, offByDefault, routePrefix: options.routePrefix }));

  const listenerSettings = {
    per_connection_buffer_limit_bytes: publicListener.per_connection_buffer_limit_bytes,
    http_connection_manager: Object.fromEntries(
      HCM_SETTINGS.map((key) => [key, key === 'local_reply_config' ? onMcpPinRoutesOnly(hcm.local_reply_config as Yaml) : hcm[key]]),
    ),
  };
  const runtimeLayers = (whole.layered_runtime as { layers: Yaml[] }).layers;

  const header = (what: string): string =>
    `# mcp-pin: ${what}\n# Cut from the rendered config by render:envoy --pieces; docs/own-envoy.md says where each piece goes.\n`;
  return new Map([
    [PIECE_FILES.httpFilters, header('HTTP filters, in order: after your own (auth, CORS), before your router') + plain(httpFilters)],
    [
      PIECE_FILES.virtualHost,
      header('merge into your virtual host: set these keys, and add the routes after your own') +
        plain({ include_request_attempt_count: virtualHost.include_request_attempt_count, routes }),
    ],
    [PIECE_FILES.listenerSettings, header("your public listener's settings (at least these) and its HttpConnectionManager's") + plain(listenerSettings)],
    [PIECE_FILES.clusters, header('clusters: add to static_resources.clusters (or your CDS)') + plain(resources.clusters)],
    [PIECE_FILES.listeners, header('listeners: add to static_resources.listeners (or your LDS)') + plain(otherListeners)],
    [
      PIECE_FILES.bootstrap,
      header('bootstrap: add the runtime layer to your layered_runtime.layers; the node only if your bootstrap names none (file-based EDS needs one)') +
        plain({ node: whole.node, layered_runtime: { layers: runtimeLayers } }),
    ],
  ]);
}

/** YAML without anchors: each piece reads on its own, and copies cleanly. */
const plain = (value: unknown): string => stringify(value, { aliasDuplicateObjects: false, lineWidth: 0 });

function connectionManager(listener: Yaml): Yaml {
  const chains = listener.filter_chains as { filters: { typed_config: Yaml }[] }[];
  const hcm = chains[0]?.filters[0]?.typed_config;
  if (!hcm) throw new TemplateError(`listener ${String(listener.name)} has no HTTP connection manager`);
  return hcm;
}

/** One of mcp-pin's routes for a shared virtual host: named, under the prefix, turning on the filters it uses. */
function pieceRoute(route: Yaml, index: number, ctx: { renamed: Map<string, string | undefined>; offByDefault: string[]; routePrefix: string }): Yaml {
  const perFilter = { ...((route.typed_per_filter_config as Record<string, Yaml> | undefined) ?? {}) };
  const out: Record<string, Yaml> = {};
  for (const [name, config] of Object.entries(perFilter)) {
    // Configs of upstream filters (the pinned cluster's Lua filter) stay as they are.
    if (!ctx.renamed.has(name)) out[name] = config;
  }
  // Session-less routes turn mcp-pin off: none of its filters there.
  const sessionless = perFilter[EXT_PROC]?.disabled === true;
  for (const name of sessionless ? [] : ctx.offByDefault) {
    const own = perFilter[name];
    // Off in the whole config: stays off (disabled by default). Otherwise on, with the config it had.
    if (own?.disabled === true) continue;
    out[ctx.renamed.get(name) as string] = own ?? { '@type': ROUTE_FILTER_CONFIG, config: {} };
  }
  const match = { ...(route.match as Yaml), prefix: ctx.routePrefix };
  return { name: `${PIECE_ROUTE_PREFIX}${index}`, ...route, match, typed_per_filter_config: out };
}

/** The local-reply mappers, each applied only on mcp-pin's routes (by route name). */
function onMcpPinRoutesOnly(localReply: Yaml): Yaml {
  const onOurRoutes = {
    extension_filter: {
      name: 'envoy.access_loggers.extension_filters.cel',
      typed_config: {
        '@type': 'type.googleapis.com/envoy.extensions.access_loggers.filters.cel.v3.ExpressionFilter',
        expression: `xds.route_name.startsWith('${PIECE_ROUTE_PREFIX}')`,
      },
    },
  };
  const mappers = (localReply.mappers as Yaml[]).map((m) => ({ ...m, filter: { and_filter: { filters: [onOurRoutes, m.filter] } } }));
  return { ...localReply, mappers };
}
