/**
 * mcp-pin's gRPC server: @grpc/grpc-js with the few options chosen for a
 * local Envoy as the only peer. ext_proc and grpc.health.v1 share its port.
 */
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';

/** Above any request body Envoy buffers for mcp-pin (1 MiB by default) plus its headers. */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** Envoy keeps its connection to us open: ping it so a peer that vanished is noticed. */
const KEEPALIVE_TIME_MS = 30_000;
const KEEPALIVE_TIMEOUT_MS = 10_000;

export function createGrpcServer(opts: { maxMessageBytes?: number } = {}): grpc.Server {
  return new grpc.Server({
    'grpc.max_receive_message_length': opts.maxMessageBytes ?? MAX_MESSAGE_BYTES,
    'grpc.keepalive_time_ms': KEEPALIVE_TIME_MS,
    'grpc.keepalive_timeout_ms': KEEPALIVE_TIMEOUT_MS,
  });
}

/** PEM files for TLS on the gRPC port; with a client CA, a client certificate signed by it is required (mutual TLS). */
export interface TlsFiles {
  certFile: string;
  keyFile: string;
  clientCaFile?: string;
}

/** Plain h2c, or TLS (and mutual TLS with a client CA): whoever reaches the port can otherwise play Envoy. */
export function serverCredentials(tls: TlsFiles | undefined): grpc.ServerCredentials {
  if (!tls) return grpc.ServerCredentials.createInsecure();
  const ca = tls.clientCaFile ? readFileSync(tls.clientCaFile) : null;
  return grpc.ServerCredentials.createSsl(ca, [{ cert_chain: readFileSync(tls.certFile), private_key: readFileSync(tls.keyFile) }], ca !== null);
}

/** Binds host:port (port 0: any free one) and resolves with the port bound. */
export function listen(server: grpc.Server, host: string, port: number, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return new Promise((resolve, reject) => server.bindAsync(address, credentials, (err, bound) => (err ? reject(err) : resolve(bound))));
}

/**
 * GOAWAY on every connection and no new ones; calls in flight may finish.
 * Resolves when all have; after graceMs, calls beforeCut and cuts what is left.
 */
export function shutdown(server: grpc.Server, graceMs: number, beforeCut: () => void = () => {}): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      beforeCut();
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
