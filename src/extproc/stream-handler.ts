/**
 * The one shape every ext_proc stream's handler has, whatever the stream is
 * for (a client request, a retry attempt, a search attempt, a request that
 * sets session state, a task request): the service (server.ts) feeds it the
 * stream's messages in order and closes the stream once it is complete.
 * Each handler keeps its own state as a discriminated union of its phases.
 */
import type { ProcessingRequest, ProcessingResponse } from './protocol.js';

export interface StreamHandler {
  /** Answers one message; throws ProtocolError for one that does not fit the stream. */
  handle(msg: ProcessingRequest): Promise<ProcessingResponse[]> | ProcessingResponse[];
  /** True once Envoy will send nothing more on this stream: the service then ends it itself. */
  readonly complete: boolean;
}

/** What a stream is for, as its x-mcp-pin-role gRPC metadata says (envoy/envoy.template.yaml); none: a client request. */
export type StreamRole = 'request' | 'attempt' | 'search' | 'state' | 'task';

export function streamRole(metadataValue: unknown): StreamRole {
  return metadataValue === 'attempt' || metadataValue === 'search' || metadataValue === 'state' || metadataValue === 'task' ? metadataValue : 'request';
}
