/** Raw gRPC clients for mcp-pin's own services (health, ext_proc), from the project's protos. */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

const PROTO_DIR = fileURLToPath(new URL('../../protos', import.meta.url));

/**
 * How the tests load the project's protos with @grpc/proto-loader: field
 * names as in the .proto (keepCase), bytes as Buffer, enums by name, oneofs
 * named, no defaults filled in: the shapes of src/extproc/protocol.ts.
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

type Ctor = grpc.ServiceClientConstructor;

function load(file: string): grpc.GrpcObject {
  return grpc.loadPackageDefinition(protoLoader.loadSync(file, LOADER_OPTIONS));
}

export function healthClient(port: number): { check(service?: string): Promise<string>; close(): void } {
  const pkg = load('grpc/health/v1/health.proto') as unknown as { grpc: { health: { v1: { Health: Ctor } } } };
  const c = new pkg.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & {
    Check: (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: { status: string }) => void) => void;
  };
  return {
    check: (service = '') =>
      new Promise((resolve, reject) =>
        c.Check({ service }, { deadline: Date.now() + 2000 }, (err, res) => (err ? reject(err) : resolve(res.status))),
      ),
    close: () => c.close(),
  };
}

export function extProcClient(port: number): grpc.Client & { Process: () => grpc.ClientDuplexStream<unknown, Record<string, unknown>> } {
  const pkg = load('envoy/service/ext_proc/v3/external_processor.proto') as unknown as {
    envoy: { service: { ext_proc: { v3: { ExternalProcessor: Ctor } } } };
  };
  return new pkg.envoy.service.ext_proc.v3.ExternalProcessor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as never;
}
