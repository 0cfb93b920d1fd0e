/**
 * The project's own protos (protos/), loaded by @grpc/proto-loader. One set
 * of loader options serves the server and the tests, and the shapes it
 * yields are the ones src/extproc/protocol.ts declares: field names as in the
 * .proto, bytes as Buffer, enums and oneof members by name, int64 as string,
 * no defaults filled in (an absent field stays absent).
 *
 * mcp-pin's own service tunes two steps of proto-loader's per-message work
 * (measured with npm run bench:compare, docs/performance.md): a request is
 * decoded by protobufjs (which proto-loader runs on) without the toObject
 * copy of the whole message, and a reply built once carries its encoding.
 */
import type { ServiceDefinition } from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { ProcessingRequest, ProcessingResponse } from './extproc/protocol.js';

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

/** envoy.service.ext_proc.v3.ExternalProcessor exactly as proto-loader defines it (the benchmark's floor serves this one). */
export function protoLoaderServiceDefinition(): ServiceDefinition {
  return protoLoader.loadSync(EXT_PROC_PROTO, LOADER_OPTIONS)[EXT_PROC_SERVICE] as unknown as ServiceDefinition;
}

/** The same protos in protobufjs, resolved the way proto-loader resolves them (includeDirs, field names kept). */
function loadRoot(): protobuf.Root {
  const root = new protobuf.Root();
  root.resolvePath = (_origin, target) => (isAbsolute(target) ? target : join(PROTO_DIR, target));
  root.loadSync(EXT_PROC_PROTO, { keepCase: true }).resolveAll();
  return root;
}

let types: { request: protobuf.Type; response: protobuf.Type } | undefined;
function messageTypes(): { request: protobuf.Type; response: protobuf.Type } {
  if (!types) {
    const root = loadRoot();
    types = {
      request: root.lookupType('envoy.service.ext_proc.v3.ProcessingRequest'),
      response: root.lookupType('envoy.service.ext_proc.v3.ProcessingResponse'),
    };
  }
  return types;
}

/**
 * A ProcessingRequest as a protobufjs message: the fields the exchange reads
 * are read from it directly, nothing else is copied. It differs from
 * proto-loader's object in one way the readers allow for: an absent field
 * reads as its default (null for a message, false, 0, '', an empty Buffer or
 * list), and a oneof (`request`, Value's `kind`) names the member that is set.
 */
export function decodeRequest(bytes: Buffer): ProcessingRequest {
  return messageTypes().request.decode(bytes) as unknown as ProcessingRequest;
}

/** A ProcessingResponse object (protocol.ts shape) to bytes, as proto-loader would. */
export function encodeResponse(r: ProcessingResponse): Buffer {
  const t = messageTypes().response;
  return Buffer.from(t.encode(t.fromObject(r as Record<string, unknown>)).finish());
}

const ENCODED = Symbol('mcp-pin.encoded');

/**
 * A reply sent many times (a constant, or one pod's pinned reply), encoded
 * once: frozen, and its bytes go out as they are. Tests still read it as the
 * object it is.
 */
export function precoded<T extends ProcessingResponse>(r: T): Readonly<T> {
  Object.defineProperty(r, ENCODED, { value: encodeResponse(r), enumerable: false });
  return Object.freeze(r);
}

function serializeResponse(r: ProcessingResponse): Buffer {
  return (r as { [ENCODED]?: Buffer })[ENCODED] ?? encodeResponse(r);
}

/** envoy.service.ext_proc.v3.ExternalProcessor as mcp-pin serves it: proto-loader's definition with the decoding and encoding above. */
export function extProcServiceDefinition(): ServiceDefinition {
  const def = protoLoaderServiceDefinition();
  // Loaded now, at start, not by the first request.
  messageTypes();
  const process = def.Process;
  if (!process) throw new Error('protos: ExternalProcessor has no Process method');
  return { ...def, Process: { ...process, requestDeserialize: decodeRequest, responseSerialize: serializeResponse } } as ServiceDefinition;
}
