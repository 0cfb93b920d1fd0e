/**
 * Where mcp-pin's gRPC port listens, and who can reach it there. The port is
 * a control plane: whoever opens a stream on it can play Envoy and rewrite
 * any session whose id it knows. So it listens on a Unix socket (only
 * processes that can open the file, e.g. Envoy beside it), on loopback, or
 * on a network address only behind mutual TLS, unless the operator states
 * that the network is closed.
 */
import { isIP } from 'node:net';
import { joinHostPort } from './host-port.js';

export type ListenAddress = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

export const UNIX_PREFIX = 'unix:';

/** "unix:/abs/path" or "host:port" ("[v6]:port"); undefined when neither. */
export function parseListenAddress(s: string): ListenAddress | undefined {
  if (s.startsWith(UNIX_PREFIX)) {
    const path = s.slice(UNIX_PREFIX.length);
    // An absolute path, short enough for sun_path (108 bytes with its NUL on Linux).
    return path.startsWith('/') && Buffer.byteLength(path) <= 107 && !/[\0\s]/.test(path) ? { kind: 'unix', path } : undefined;
  }
  const [, host, port] = /^(\[[0-9a-fA-F:.]+\]|[^:\s[\]]+):(\d{1,5})$/.exec(s) ?? [];
  if (host === undefined || port === undefined || Number(port) > 65535) return undefined;
  return { kind: 'tcp', host: host.replace(/^\[|\]$/g, ''), port: Number(port) };
}

/** Only this machine can connect: 127.0.0.0/8, ::1, localhost. */
export function isLoopbackHost(host: string): boolean {
  if (host === 'localhost' || host === '::1') return true;
  return isIP(host) === 4 && host.startsWith('127.');
}

export function formatListenAddress(a: ListenAddress): string {
  if (a.kind === 'unix') return `${UNIX_PREFIX}${a.path}`;
  return joinHostPort(a.host, a.port);
}
