/** Test certificates made with openssl (mutual TLS between Envoy and mcp-pin). */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';

/**
 * In dir: ca.pem/ca.key, server.pem/key (for IP 127.0.0.1 and localhost),
 * envoy.pem/key (a client certificate from ca), stranger.pem/key (from other-ca).
 */
export function makeCerts(dir: string): void {
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  writeFileSync(`${dir}/san.ext`, 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
  for (const ca of ['ca', 'other-ca'])
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${ca}.key`, '-out', `${ca}.pem`, '-days', '1', '-subj', `/CN=${ca}`);
  const sign = (name: string, ca: string, ext: string[] = []): void => {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`);
    ssl('x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.pem`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', ...ext);
  };
  sign('server', 'ca', ['-extfile', 'san.ext']);
  sign('envoy', 'ca');
  sign('stranger', 'other-ca');
}
