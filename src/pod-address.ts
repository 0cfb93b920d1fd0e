/** Pod addresses as Envoy reports them and pins store them. */
import { isIP } from 'node:net';
import { joinHostPort, splitHostPort } from './host-port.js';

/** "ip:port" with a literal IPv4/IPv6 address (what Envoy reports and override_host matches); null otherwise. */
export function parsePodAddress(addr: string | undefined): string | null {
  const hp = addr ? splitHostPort(addr) : undefined;
  if (!hp || hp.port < 1 || hp.port > 65535 || isIP(hp.host) === 0) return null;
  return joinHostPort(hp.host, hp.port);
}
