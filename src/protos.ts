/**
 * The project's own protos (protos/), loaded by @grpc/proto-loader. One set
 * of loader options serves the server and the tests, and the shapes it
 * yields are the ones src/extproc/protocol.ts declares: field names as in the
 * .proto, bytes as Buffer, enums and oneof members by name, int64 as string,
 * no defaults filled in (an absent field stays absent).
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { fileURLToPath } from 'node:url';

/** protos/ beside src/: in a checkout, and in dist/ (the build copies it there). */
export const PROTO_DIR = fileURLToPath(new URL('../protos', import.meta.url));

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  bytes: Buffer,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export const EXT_PROC_PROTO = 'envoy/service/ext_proc/v3/external_processor.proto';
export const EXT_PROC_SERVICE = 'envoy.service.ext_proc.v3.ExternalProcessor';

/** envoy.service.ext_proc.v3.ExternalProcessor as grpc-js serves it. */
export function extProcServiceDefinition(): ServiceDefinition {
  return protoLoader.loadSync(EXT_PROC_PROTO, LOADER_OPTIONS)[EXT_PROC_SERVICE] as unknown as ServiceDefinition;
}
