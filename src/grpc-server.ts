/**
 * mcp-pin's gRPC server: @grpc/grpc-js with the few options chosen for a
 * local Envoy as the only peer. ext_proc and grpc.health.v1 share its port.
 */
import * as grpc from '@grpc/grpc-js';
import { chmodSync, lstatSync, readFileSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { PinError } from './errors.js';
import { formatListenAddress, type ListenAddress } from './listen-address.js';

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

/**
 * Owner and group may connect (Envoy runs as mcp-pin's user, or in its
 * group); nobody else, whatever the directory allows.
 */
export const SOCKET_MODE = 0o660;

/**
 * Binds the address (TCP port 0: any free one) and resolves with the TCP
 * port bound (0 for a Unix socket). A Unix socket left by a process that
 * died is replaced; one that a live process still serves is not.
 */
export async function listen(server: grpc.Server, address: ListenAddress, credentials = grpc.ServerCredentials.createInsecure()): Promise<number> {
  if (address.kind === 'unix') await removeStaleSocket(address.path);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(formatListenAddress(address), credentials, (err, port) =>
      err ? reject(new PinError('MCP_PIN_LISTEN_FAILED', `cannot listen on ${formatListenAddress(address)}: ${err.message}`, { cause: err })) : resolve(port),
    ),
  );
  if (address.kind === 'unix') chmodSync(address.path, SOCKET_MODE);
  return address.kind === 'unix' ? 0 : bound;
}

async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return; // nothing there
  }
  if (!isSocket) throw new PinError('MCP_PIN_LISTEN_FAILED', `cannot listen on unix:${path}: a file that is not a socket is in the way`);
  const alive = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (alive) throw new PinError('MCP_PIN_LISTEN_FAILED', `cannot listen on unix:${path}: another process serves it`);
  unlinkSync(path);
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
