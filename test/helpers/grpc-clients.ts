/** Raw gRPC clients for mcp-pin's own services (health, ext_proc), from the project's protos. */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { LOADER_OPTIONS } from '../../src/protos.js';

type Ctor = grpc.ServiceClientConstructor;

/** Headers as a ProcessingRequest carries them on the wire (raw_value bytes). */
export function wireHeaders(h: Record<string, string>): { key: string; raw_value: Buffer }[] {
  return Object.entries(h).map(([key, v]) => ({ key, raw_value: Buffer.from(v) }));
}

/** A request_headers message as a raw ext_proc client writes it. */
export function wireRequestHeaders(h: Record<string, string>, endOfStream = true): { request_headers: object } {
  return { request_headers: { headers: { headers: wireHeaders(h) }, end_of_stream: endOfStream } };
}

/** A response_headers message as a raw ext_proc client writes it. */
export function wireResponseHeaders(h: Record<string, string>): { response_headers: object } {
  return { response_headers: { headers: { headers: wireHeaders(h) } } };
}

/** A TCP port on loopback, or a gRPC target as given (e.g. unix:/path). */
const targetOf = (at: number | string): string => (typeof at === 'number' ? `127.0.0.1:${at}` : at);

function load(file: string): grpc.GrpcObject {
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, LOADER_OPTIONS));
}

export function healthClient(
  port: number | string,
  credentials = grpc.credentials.createInsecure(),
): { check(service?: string): Promise<string>; close(): void } {
  const pkg = load('grpc/health/v1/health.proto') as unknown as { grpc: { health: { v1: { Health: Ctor } } } };
  const c = new pkg.grpc.health.v1.Health(targetOf(port), credentials) as unknown as grpc.Client & {
    Check: (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: { status: string }) => void) => void;
  };
  return {
    check: (service = '') =>
      new Promise((resolve, reject) => c.Check({ service }, { deadline: Date.now() + 2000 }, (err, res) => (err ? reject(err) : resolve(res.status)))),
    close: () => c.close(),
  };
}

export function extProcClient(
  port: number | string,
  credentials = grpc.credentials.createInsecure(),
): grpc.Client & { Process: () => grpc.ClientDuplexStream<unknown, Record<string, unknown>> } {
  const pkg = load('envoy/service/ext_proc/v3/external_processor.proto') as unknown as {
    envoy: { service: { ext_proc: { v3: { ExternalProcessor: Ctor } } } };
  };
  return new pkg.envoy.service.ext_proc.v3.ExternalProcessor(targetOf(port), credentials) as never;
}

/** A grpc.health.v1 Watch stream: next() resolves with each status as it arrives. */
export function healthWatch(port: number, service: string): { next(): Promise<string>; close(): void } {
  const pkg = load('grpc/health/v1/health.proto') as unknown as { grpc: { health: { v1: { Health: Ctor } } } };
  const c = new pkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Watch: (req: unknown) => grpc.ClientReadableStream<{ status: string }>;
  };
  const call = c.Watch({ service });
  call.on('error', () => {});
  const seen: string[] = [];
  let waiter: ((s: string) => void) | undefined;
  call.on('data', (m: { status: string }) => {
    if (waiter) {
      const w = waiter;
      waiter = undefined;
      w(m.status);
    } else seen.push(m.status);
  });
  return {
    next: () => (seen.length > 0 ? Promise.resolve(seen.shift()!) : new Promise((resolve) => (waiter = resolve))),
    close: () => {
      call.cancel();
      c.close();
    },
  };
}

/** One grpc.health.v1 Check: its status, or "refused: <gRPC code>" when the call fails (e.g. a TLS handshake mcp-pin refuses). */
export async function healthStatus(port: number | string, credentials: grpc.ChannelCredentials): Promise<string> {
  const h = healthClient(port, credentials);
  try {
    return await h.check();
  } catch (err) {
    return `refused: ${(err as grpc.ServiceError).code}`;
  } finally {
    h.close();
  }
}
