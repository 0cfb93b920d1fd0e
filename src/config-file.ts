/**
 * `mcp-pin --config values.json`: the one file that configures both sides.
 * It is the file `render:envoy --values` renders Envoy from; mcp-pin reads
 * the same template values for every setting the two must agree on, and its
 * own settings from the file's `mcpPin` object (which the renderer skips).
 *
 * Why one file read by both, rather than a second file written by the
 * renderer: a written copy drifts the moment someone edits one side; here a
 * setting both use has one source, and whatever still disagrees (a flag, an
 * environment variable, a TLS setting only mcp-pin can hold) is refused at
 * start, each problem on one line.
 */
import { readFileSync } from 'node:fs';
import { internalSocketPath, isSocketPath, type EnvoyParams } from '../envoy/params.js';
import { joinHostPort, type HostPort } from './host-port.js';
import { PinError } from './errors.js';
import { MESSAGE_TIMEOUT_MARGIN_MS } from './timeouts.js';
import { isLoopbackHost, parseListenAddress } from './listen-address.js';
import { TemplateValuesError, paramsFromValues } from '../envoy/values.js';

/** The key of mcp-pin's own settings in a values file. */
export const OWN_SETTINGS_KEY = 'mcpPin';

export interface ValuesFile {
  path: string;
  /** The template values as Envoy is rendered from them (defaults filled in). */
  envoy: EnvoyParams;
  /** mcp-pin's own settings from the `mcpPin` object, by option key, as strings. */
  own: Record<string, string>;
}

const WILDCARD = new Set(['0.0.0.0', '::', '[::]']);

/** Reads and checks a values file (`ownKeys`: mcp-pin's setting names); throws with every problem at once. */
export function readValuesFile(path: string, ownKeys: ReadonlySet<string>): ValuesFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new ValuesFileError([`--config ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`]);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new ValuesFileError([`--config ${path}: expected a JSON object of template values`]);
  const { [OWN_SETTINGS_KEY]: ownRaw, ...templateValues } = parsed as Record<string, unknown>;
  const problems: string[] = [];
  const own: Record<string, string> = {};
  if (ownRaw !== undefined) {
    if (typeof ownRaw !== 'object' || ownRaw === null || Array.isArray(ownRaw))
      problems.push(`--config ${path}: "${OWN_SETTINGS_KEY}" must be an object of mcp-pin settings`);
    else
      for (const [k, v] of Object.entries(ownRaw)) {
        if (!ownKeys.has(k))
          problems.push(
            `--config ${path}: unknown mcp-pin setting ${OWN_SETTINGS_KEY}.${k} (mcp-pin --help lists them; the key is the flag in camelCase, e.g. storeUrl)`,
          );
        else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') own[k] = String(v);
        else if (Array.isArray(v)) own[k] = v.map(String).join(',');
        else problems.push(`--config ${path}: ${OWN_SETTINGS_KEY}.${k} must be a string, number or list`);
      }
  }
  let envoy: EnvoyParams | undefined;
  try {
    envoy = paramsFromValues(templateValues as Parameters<typeof paramsFromValues>[0]);
  } catch (err) {
    if (!(err instanceof TemplateValuesError)) throw err;
    problems.push(...err.problems.map((p) => `--config ${path}: ${p}`));
  }
  if (problems.length > 0 || !envoy) throw new ValuesFileError(problems);
  return { path, envoy, own };
}

export class ValuesFileError extends PinError {
  constructor(readonly problems: string[]) {
    super('MCP_PIN_BAD_CONFIG_FILE', problems.join('\n'));
  }
}

/**
 * mcp-pin settings that follow from the template values, by option key:
 * the defaults a values file gives (flags, environment and `mcpPin` may
 * only repeat them, see disagreements()).
 */
export function derivedSettings(envoy: EnvoyParams): Record<string, string> {
  const recoveryHost = WILDCARD.has(envoy.internalAddress) ? '127.0.0.1' : envoy.internalAddress;
  const socket = internalSocketPath(envoy);
  const out: Record<string, string> = {
    pinHeader: envoy.pinHeader,
    upstreamHeader: envoy.upstreamHeader,
    lostSessionStatuses: envoy.lostSessionStatuses.join(','),
    recoveryUrl: socket ? `unix:${socket}` : `http://${joinHostPort(recoveryHost, envoy.internalPort)}`,
  };
  const endpoints = Array.isArray(envoy.extProc) ? envoy.extProc : [];
  const sockets = endpoints.filter(isSocketPath);
  const tcp = endpoints.filter((e): e is HostPort => !isSocketPath(e));
  // One socket: that is where to listen. Several (one per replica): each replica's --listen names its own.
  const [onlySocket] = sockets;
  if (onlySocket && sockets.length === 1 && tcp.length === 0) out.listen = `unix:${onlySocket.path}`;
  else if (sockets.length === 0 && tcp[0]) out.listen = `${tcp.every((e) => isLoopbackHost(e.host)) ? '127.0.0.1' : '0.0.0.0'}:${tcp[0].port}`;
  return out;
}

/** What mcp-pin needs to know of its settings to compare them with Envoy's. */
export interface SharedSettings {
  listen: string;
  pinHeader: string;
  upstreamHeader: string;
  lostSessionStatuses: number[];
  recoveryUrl: string;
  recoveryTimeoutMs: number;
  drainDelayMs: number;
  tlsCertFile: string;
  tlsClientCaFile: string;
}

/** Every way the final settings disagree with the Envoy the file renders, one line each. */
export function disagreements(cfg: SharedSettings, envoy: EnvoyParams, path: string): string[] {
  const out: string[] = [];
  const differ = (flag: string, ours: string, value: string, theirs: string): void => {
    if (ours !== theirs)
      out.push(`--${flag}=${ours} disagrees with ${value} ${theirs} in ${path} (Envoy is rendered from it): change one, or leave --${flag} unset`);
  };
  differ('pin-header', cfg.pinHeader, 'pinHeader', envoy.pinHeader);
  differ('upstream-header', cfg.upstreamHeader, 'upstreamHeader', envoy.upstreamHeader);
  const sorted = (l: readonly number[]): string => [...l].sort((a, b) => a - b).join(',');
  differ('lost-session-statuses', sorted(cfg.lostSessionStatuses), 'lostSessionStatuses', sorted(envoy.lostSessionStatuses));
  const socket = internalSocketPath(envoy);
  if (socket) differ('recovery-url', cfg.recoveryUrl, 'internalAddress', `unix:${socket}`);
  else {
    const recoveryPort = (() => {
      try {
        const u = new URL(cfg.recoveryUrl);
        return Number(u.port || (u.protocol === 'https:' ? 443 : 80));
      } catch {
        return NaN;
      }
    })();
    differ('recovery-url port', String(recoveryPort), 'internalPort', String(envoy.internalPort));
  }
  const listen = parseListenAddress(cfg.listen);
  if (listen && Array.isArray(envoy.extProc)) {
    const reached = envoy.extProc.some((e) =>
      isSocketPath(e) ? listen.kind === 'unix' && listen.path === e.path : listen.kind === 'tcp' && listen.port === e.port,
    );
    const targets = new Set(envoy.extProc.map((e) => (isSocketPath(e) ? `unix:${e.path}` : `port ${e.port}`)));
    if (!reached) out.push(`--listen=${cfg.listen}: Envoy opens ext_proc streams on ${[...targets].join(' or ')} (extProc in ${path}): listen there`);
  }
  if (Boolean(envoy.extProcTls) !== Boolean(cfg.tlsCertFile)) {
    out.push(
      envoy.extProcTls
        ? `extProcTls in ${path}: Envoy talks TLS to mcp-pin; give mcp-pin --tls-cert-file, --tls-key-file ` +
            `and --tls-client-ca-file (in "${OWN_SETTINGS_KEY}" or as flags)`
        : `--tls-cert-file is set but extProcTls in ${path} is none: Envoy would talk plain h2c to a TLS port`,
    );
  } else if (envoy.extProcTls && !cfg.tlsClientCaFile)
    out.push(`extProcTls in ${path}: Envoy presents a client certificate; give mcp-pin --tls-client-ca-file so it checks it`);
  if (cfg.recoveryTimeoutMs + MESSAGE_TIMEOUT_MARGIN_MS > envoy.maxMessageTimeoutMs)
    out.push(
      `--recovery-timeout-ms=${cfg.recoveryTimeoutMs}: Envoy waits at most maxMessageTimeoutMs ` +
        `${envoy.maxMessageTimeoutMs} for one answer (${path}); mcp-pin needs the timeout plus ` +
        `${MESSAGE_TIMEOUT_MARGIN_MS}`,
    );
  if (cfg.drainDelayMs <= 2 * envoy.healthCheckIntervalMs)
    out.push(
      `--drain-delay-ms=${cfg.drainDelayMs}: Envoy needs two failed health checks (healthCheckIntervalMs ` +
        `${envoy.healthCheckIntervalMs} in ${path}) to stop sending streams; make it longer ` +
        `than ${2 * envoy.healthCheckIntervalMs}`,
    );
  return out;
}
