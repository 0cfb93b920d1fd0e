/**
 * The template values a user sets to render envoy/envoy.template.yaml for
 * their own Envoy: one table with each value's default and meaning (the
 * render command's --list and the README come from it), and one parser that
 * reports every bad or unknown value at once.
 */
import { PinError } from '../src/errors.js';
import { parseListenAddress, UNIX_PREFIX } from '../src/listen-address.js';
import { CIDR_PATTERN, ENVOY_DEFAULTS, ENVOY_MINORS, OLDER_ENVOYS, envoyMinor, isSocketPath, type EnvoyParams, type ExtProcEndpoint } from './params.js';
import { splitHostPort, type HostPort } from '../src/host-port.js';

type Raw = string | number | readonly (string | number)[];

interface ValueSpec {
  /** Shown by --list; undefined: required. */
  default?: string;
  meaning: string;
  parse(raw: Raw): unknown;
}

/** One value that cannot be read; its message names the value as given. */
export class ValueProblem extends PinError {
  constructor(message: string) {
    super('MCP_PIN_BAD_TEMPLATE_VALUE', message);
  }
}

const list = (raw: Raw): string[] => (Array.isArray(raw) ? raw.map(String) : String(raw).split(',')).map((s) => s.trim()).filter((s) => s.length > 0);

function hostPort(s: string): HostPort {
  const hp = splitHostPort(s);
  if (!hp || !(hp.port >= 1 && hp.port <= 65535)) throw new ValueProblem(`"${s}" is not host:port`);
  return hp;
}

/** host:port entries, comma-separated (or a list). */
export const hostPorts = (raw: Raw): HostPort[] => list(raw).map(hostPort);

/** unix:/absolute/path (a Unix socket: Envoy's pipe address), read as mcp-pin reads --listen; the path. */
function socketPath(s: string): string {
  const a = parseListenAddress(s);
  if (a?.kind !== 'unix') throw new ValueProblem(`"${s}": a Unix socket needs an absolute path of at most 107 bytes, e.g. unix:/run/mcp-pin/mcp-pin.sock`);
  return a.path;
}

/** mcp-pin replicas: unix:/path or host:port entries. */
const extProcEndpoints = (raw: Raw): ExtProcEndpoint[] => list(raw).map((s) => (s.startsWith(UNIX_PREFIX) ? { path: socketPath(s) } : hostPort(s)));

function integer(min: number, max: number) {
  return (raw: Raw): number => {
    const n = Number(raw);
    if (!Number.isInteger(n) || n < min || n > max) throw new ValueProblem(`"${String(raw)}" is not an integer in ${min}..${max}`);
    return n;
  };
}

const text = (raw: Raw): string => {
  const s = String(raw).trim();
  if (s.length === 0 || /[\s"{}]/.test(s)) throw new ValueProblem(`"${s}" must be non-empty, without spaces, quotes or braces`);
  return s;
};

const headerName = (raw: Raw): string => {
  const s = text(raw).toLowerCase();
  if (!/^[a-z0-9-]+$/.test(s)) throw new ValueProblem(`"${s}" is not an HTTP header name`);
  return s;
};

const d = (k: keyof typeof ENVOY_DEFAULTS): string => {
  const v = ENVOY_DEFAULTS[k];
  return Array.isArray(v) ? v.join(',') : String(v);
};

export const TEMPLATE_VALUES: Record<Exclude<keyof EnvoyParams, 'extProcDiscovery'> | 'extProcDiscovery', ValueSpec> = {
  extProc: {
    meaning:
      "mcp-pin replicas, comma-separated: unix:/path (a Unix socket beside Envoy: only processes that can open the file reach mcp-pin's control plane; the shipped deployments' way) or host:port (IPs, or one DNS name that resolves to every replica with extProcDiscovery=dns; then use extProcTls)",
    parse: extProcEndpoints,
  },
  extProcDiscovery: {
    default: 'static',
    meaning: 'static (extProc lists IPs) or dns (extProc is a name resolving to every replica, e.g. a headless Service)',
    parse: (r) => {
      const s = String(r);
      if (s !== 'static' && s !== 'dns') throw new ValueProblem(`"${s}" is not static or dns`);
      return s;
    },
  },
  service: {
    meaning:
      'the MCP pods: eds:<path of an EDS file> (write a new file, then rename it over this path), or dns:<name>:<port> resolving to every pod (headless Service)',
    parse: (r) => {
      const s = String(r);
      if (s.startsWith('eds:') && s.length > 4 && s.slice(4).startsWith('/')) return { edsPath: s.slice(4) };
      if (s.startsWith('dns:')) return { dns: hostPort(s.slice(4)) };
      if (s.startsWith('eds:') && s.length > 4)
        throw new ValueProblem(
          `"${s}": the EDS path must be absolute (Envoy reads it from its own working directory, not yours), e.g. eds:/etc/envoy/eds/eds.json`,
        );
      throw new ValueProblem(`"${s}" is not eds:/absolute/path or dns:name:port`);
    },
  },
  listenAddress: { default: d('listenAddress'), meaning: 'address of the public listener MCP clients connect to', parse: text },
  listenPort: { default: d('listenPort'), meaning: 'port of the public listener', parse: integer(1, 65535) },
  internalAddress: {
    default: d('internalAddress'),
    meaning:
      'address of the internal listener mcp-pin re-initializes sessions through (mcp-pin --recovery-url), never reachable from clients or pods; or unix:/path, a Unix socket beside mcp-pin (mode 0660; internalPort and internalClients then unused)',
    parse: (r) => {
      const s = text(r);
      if (s.startsWith(UNIX_PREFIX)) socketPath(s);
      return s;
    },
  },
  internalPort: { default: d('internalPort'), meaning: 'port of the internal listener (an address, not a Unix socket)', parse: integer(1, 65535) },
  internalClients: {
    default: d('internalClients'),
    meaning: "CIDRs allowed to use the internal listener (RBAC on the connection's own peer address): where the mcp-pin replicas connect from",
    parse: (r) =>
      list(r).map((c) => {
        if (!CIDR_PATTERN.test(c)) throw new ValueProblem(`"${c}" is not a CIDR`);
        return c;
      }),
  },
  adminAddress: { default: d('adminAddress'), meaning: "Envoy's admin interface address (keep it on loopback)", parse: text },
  adminPort: { default: d('adminPort'), meaning: "Envoy's admin port", parse: integer(1, 65535) },
  pinHeader: {
    default: d('pinHeader'),
    meaning: 'header mcp-pin names the pinned pod in (mcp-pin --pin-header); stripped from every client request',
    parse: headerName,
  },
  upstreamHeader: {
    default: d('upstreamHeader'),
    meaning: 'header the internal listener reports the reached pod in (mcp-pin --upstream-header)',
    parse: headerName,
  },
  lostSessionStatuses: {
    default: d('lostSessionStatuses'),
    meaning: 'pod answers that mean "session lost", retried on the pinned route (mcp-pin --lost-session-statuses: the same list)',
    parse: (r) => list(r).map(integer(400, 599)),
  },
  replayAfterReset: {
    default: d('replayAfterReset'),
    meaning:
      "JSON-RPC methods of pinned requests Envoy replays on another pod when the pod's connection resets before it answered (the pod died mid-request): only methods safe to run twice; name/* covers a prefix, responses covers a client's answers; empty: none. tools/call is not listed: the pod may have run it",
    parse: (r) =>
      (Array.isArray(r) || String(r).trim() !== '' ? list(r) : []).map((m) => {
        if (!/^[A-Za-z0-9_.-]+(\/[A-Za-z0-9_.-]+)*(\/\*)?$/.test(m)) throw new ValueProblem(`"${m}" is not a JSON-RPC method name (or name/*)`);
        return m;
      }),
  },
  envoyVersion: {
    default: d('envoyVersion'),
    meaning:
      "the Envoy the config is for (a patch version may follow): 1.37 to 1.40 (where they differ, the config follows: 1.37 reads the MCP filter's metadata as mcp_proxy); older ones are refused with what was measured on them (docs/own-envoy.md, Envoy versions)",
    parse: (r) => {
      const m = envoyMinor(text(r));
      if (!(m >= ENVOY_MINORS.oldest && m <= ENVOY_MINORS.newest))
        throw new ValueProblem(`"${text(r)}": Envoy 1.${ENVOY_MINORS.oldest} to 1.${ENVOY_MINORS.newest} are supported: ${OLDER_ENVOYS}`);
      return `1.${m}`;
    },
  },
  replaySafeTools: {
    default: d('replaySafeTools'),
    meaning:
      "names of tools safe to run twice (their calls are then replayed like replayAfterReset's methods: held whole, retried on another pod after a reset); only tools you know are safe: a pod's readOnlyHint/idempotentHint annotations are not trusted; empty: none",
    parse: (r) =>
      (Array.isArray(r) || String(r).trim() !== '' ? list(r) : []).map((t) => {
        // The tool name charset of MCP 2025-11-25 (1-128 of A-Z a-z 0-9 _ - .).
        if (!/^[A-Za-z0-9_.-]{1,128}$/.test(t)) throw new ValueProblem(`"${t}" is not an MCP tool name (1-128 of A-Z, a-z, 0-9, _, -, .)`);
        return t;
      }),
  },
  holdSafeResponses: {
    default: d('holdSafeResponses'),
    meaning:
      'hold the answer to a replayAfterReset request in Envoy until it is whole, so that a pod answering with SSE (the SDK default) that dies mid-answer is replayed too (true/false)',
    parse: (r) => {
      const v = String(r).trim();
      if (v === 'true' || v === 'false') return v === 'true';
      throw new ValueProblem(`"${v}" is not true or false`);
    },
  },
  holdSafeResponsesMaxBytes: {
    default: d('holdSafeResponsesMaxBytes'),
    meaning: 'largest answer held whole with holdSafeResponses (Envoy memory per held answer); a larger one fails with 500 response_payload_too_large',
    parse: integer(64 * 1024, 256 * 1024 * 1024),
  },
  statsListen: {
    default: 'none',
    meaning:
      "host:port of a listener serving only /stats/prometheus and /ready of Envoy's admin interface (for a scraper and the kubelet's probes); none: no such listener",
    parse: (r) => (String(r).trim() === 'none' ? undefined : hostPorts(r)[0]),
  },
  extProcTls: {
    default: 'none',
    meaning:
      "mutual TLS to mcp-pin: cert,key,ca (PEM paths as Envoy sees them: its client certificate and key, and the CA of mcp-pin's server certificate; mcp-pin then runs with --tls-cert-file, --tls-key-file and --tls-client-ca-file); none: plain h2c",
    parse: (r) => {
      if (String(r).trim() === 'none') return undefined;
      const [certFile, keyFile, caFile, ...rest] = list(r);
      if (!certFile || !keyFile || !caFile || rest.length > 0) throw new ValueProblem('expected cert,key,ca (three PEM file paths) or none');
      return { certFile, keyFile, caFile };
    },
  },
  sessionSearchRetries: {
    default: d('sessionSearchRetries'),
    meaning:
      'most retries of a search for a session mcp-pin has no pin for (Envoy finds the pod that holds it); mcp-pin ends a search once every pod was asked, so this only bounds it: pods past this many plus one are not searched',
    parse: integer(0, 255),
  },
  messageTimeoutMs: {
    default: d('messageTimeoutMs'),
    meaning: 'ext_proc message_timeout: how long Envoy waits for one mcp-pin answer',
    parse: integer(50, 60_000),
  },
  maxMessageTimeoutMs: {
    default: d('maxMessageTimeoutMs'),
    meaning: 'ext_proc max_message_timeout: the most mcp-pin may extend it to while it recovers a session',
    parse: integer(50, 600_000),
  },
  connectTimeoutMs: {
    default: d('connectTimeoutMs'),
    meaning: 'connect timeout to a pod (a refused or silent pod counts as lost after it)',
    parse: integer(10, 60_000),
  },
  recoveryRouteTimeoutMs: {
    default: d('recoveryRouteTimeoutMs'),
    meaning: 'route timeout of the internal listener (one re-initialize or relay)',
    parse: integer(100, 600_000),
  },
  bufferLimitBytes: {
    default: d('bufferLimitBytes'),
    meaning: 'largest request body Envoy buffers: initialize bodies to store, and bodies to replay on a retry',
    parse: integer(1024, 64 * 1024 * 1024),
  },
  healthCheckIntervalMs: {
    default: d('healthCheckIntervalMs'),
    meaning: "how often Envoy checks each mcp-pin replica's gRPC health",
    parse: integer(100, 60_000),
  },
  clientHeadersMaxCount: {
    default: d('clientHeadersMaxCount'),
    meaning:
      "most request headers a client may send on mcp-pin's routes (Envoy's own default); past it Envoy answers 431 with a JSON-RPC error, and Envoy's capacity is raised by what Envoy and mcp-pin add, so their additions never fail a request",
    parse: integer(30, 10_000),
  },
  clientHeadersMaxKb: {
    default: d('clientHeadersMaxKb'),
    meaning: "most KiB of request headers a client may send on mcp-pin's routes (Envoy's own default), as clientHeadersMaxCount",
    parse: integer(8, 8192),
  },
};

export class TemplateValuesError extends PinError {
  constructor(readonly problems: string[]) {
    super('MCP_PIN_BAD_TEMPLATE_VALUES', `bad template values:\n  - ${problems.join('\n  - ')}`);
  }
}

/** EnvoyParams from user values (a values file's object and/or name=value pairs); every problem reported at once. */
export function paramsFromValues(values: Record<string, Raw>): EnvoyParams {
  const problems: string[] = [];
  const out: Record<string, unknown> = { ...ENVOY_DEFAULTS };
  for (const [name, raw] of Object.entries(values)) {
    // mcp-pin's own settings (mcp-pin --config reads them from the same file).
    if (name === 'mcpPin') continue;
    const spec = (TEMPLATE_VALUES as Record<string, ValueSpec>)[name];
    if (!spec) {
      problems.push(`unknown template value "${name}" (npm run render:envoy -- --list shows them all)`);
      continue;
    }
    try {
      out[name] = spec.parse(raw);
    } catch (err) {
      if (!(err instanceof ValueProblem)) throw err;
      problems.push(`${name}: ${err.message}`);
    }
  }
  for (const [name, spec] of Object.entries(TEMPLATE_VALUES)) {
    if (spec.default === undefined && values[name] === undefined) problems.push(`${name} is required: ${spec.meaning}`);
  }
  const endpoints = Array.isArray(out.extProc) ? (out.extProc as ExtProcEndpoint[]) : [];
  if (endpoints.some(isSocketPath)) {
    if (out.extProcDiscovery === 'dns') problems.push('extProc: a Unix socket is not a DNS name (extProcDiscovery dns takes host:port)');
    if (out.extProcTls) problems.push('extProcTls: TLS is for host:port replicas; a Unix socket is guarded by its file mode (set extProcTls none)');
  }
  if (problems.length > 0) throw new TemplateValuesError(problems);
  return out as unknown as EnvoyParams;
}
