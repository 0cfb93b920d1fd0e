/**
 * The one shape every ext_proc stream's handler has, whatever the stream is
 * for (a client request, a retry attempt, a search attempt, a request that
 * sets session state, a task request): the service (server.ts) feeds it the
 * stream's messages in order and closes the stream once it is complete.
 * (AttemptExchange, StateRecorder and TaskAnswer keep their state as one
 * union of their phases; Exchange still keeps separate fields.)
 */
import type { ProcessingRequest, ProcessingResponse } from './protocol.js';

export interface StreamHandler {
  /** Answers one message; throws ProtocolError for one that does not fit the stream. */
  handle(msg: ProcessingRequest): Promise<ProcessingResponse[]> | ProcessingResponse[];
  /** True once Envoy will send nothing more on this stream: the service then ends it itself. */
  readonly complete: boolean;
}

/** gRPC metadata naming what a stream is for (envoy/envoy.template.yaml sets it on every filter but the client request's). */
export const ROLE_METADATA = 'x-mcp-pin-role';

/** What a stream is for, as its ROLE_METADATA says; none: a client request. */
export const STREAM_ROLES = ['request', 'attempt', 'search', 'state', 'task'] as const;
export type StreamRole = (typeof STREAM_ROLES)[number];

export function streamRole(metadataValue: unknown): StreamRole {
  return STREAM_ROLES.find((r) => r !== 'request' && r === metadataValue) ?? 'request';
}
