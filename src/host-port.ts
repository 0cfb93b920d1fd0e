/**
 * host:port, the one place it is split and joined. An IPv6 host is written
 * in brackets ("[::1]:80") and read without them; the port is split at the
 * last colon, so a bare IPv6 host needs its brackets to carry a port.
 */

export interface HostPort {
  host: string;
  port: number;
}

/**
 * "host:port" or "[v6]:port" as host and port; undefined when there is no
 * colon, no host, or the port is not digits. The port's range is the
 * caller's rule (0 may mean "any free port" to a listener, never to a pod).
 */
export function splitHostPort(s: string): HostPort | undefined {
  const i = s.lastIndexOf(':');
  if (i <= 0) return undefined;
  const host = s.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const digits = s.slice(i + 1);
  if (!host || !/^\d{1,5}$/.test(digits)) return undefined;
  return { host, port: Number(digits) };
}

/** host and port as one string, an IPv6 host in brackets. */
export function joinHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
