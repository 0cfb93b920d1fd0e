/** Pod addresses as Envoy reports them and pins store them. */
import { isIP } from 'node:net';

/** "ip:port" with a literal IPv4/IPv6 address (what Envoy reports and override_host matches); null otherwise. */
export function parsePodAddress(addr: string | undefined): string | null {
  if (!addr) return null;
  const i = addr.lastIndexOf(':');
  if (i <= 0) return null;
  const host = addr.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port < 1 || port > 65535) return null;
  const v = isIP(host);
  if (v === 0) return null;
  return v === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
