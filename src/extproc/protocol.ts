/**
 * The ext_proc wire types, in the shapes @grpc/proto-loader decodes to and
 * encodes from with the options of src/protos.ts: field names as in the
 * .proto, bytes as Buffer, enums by name, the phase oneof named in
 * `request`, absent fields absent.
 */

export interface WireHeader {
  key: string;
  value?: string;
  raw_value?: Buffer;
}

export interface WireHttpHeaders {
  headers?: { headers?: WireHeader[] };
  end_of_stream?: boolean;
}

export interface WireHttpBody {
  body?: Buffer;
  end_of_stream?: boolean;
}

/** google.protobuf.Value with oneofs: true. */
export interface WireValue {
  kind?: string;
  stringValue?: string;
  numberValue?: number;
  boolValue?: boolean;
}

export type RequestPhase = 'request_headers' | 'response_headers' | 'request_body' | 'response_body' | 'request_trailers' | 'response_trailers';

export interface ProcessingRequest {
  request?: RequestPhase;
  request_headers?: WireHttpHeaders;
  response_headers?: WireHttpHeaders;
  request_body?: WireHttpBody;
  response_body?: WireHttpBody;
  request_trailers?: unknown;
  response_trailers?: unknown;
  attributes?: Record<string, { fields?: Record<string, WireValue> }>;
  observability_mode?: boolean;
}

export type HeaderSendMode = 'DEFAULT' | 'SEND' | 'SKIP';
export type BodySendMode = 'NONE' | 'STREAMED' | 'BUFFERED' | 'BUFFERED_PARTIAL' | 'FULL_DUPLEX_STREAMED';

export interface ProcessingMode {
  request_header_mode?: HeaderSendMode;
  response_header_mode?: HeaderSendMode;
  request_body_mode?: BodySendMode;
  response_body_mode?: BodySendMode;
  request_trailer_mode?: HeaderSendMode;
  response_trailer_mode?: HeaderSendMode;
}

export type AppendAction = 'APPEND_IF_EXISTS_OR_ADD' | 'ADD_IF_ABSENT' | 'OVERWRITE_IF_EXISTS_OR_ADD' | 'OVERWRITE_IF_EXISTS';

export interface HeaderMutation {
  set_headers?: { header: { key: string; raw_value: Buffer }; append_action: AppendAction }[];
  remove_headers?: string[];
}

export interface CommonResponse {
  status?: 'CONTINUE' | 'CONTINUE_AND_REPLACE';
  header_mutation?: HeaderMutation;
  clear_route_cache?: boolean;
  body_mutation?: { body: Buffer };
}

export interface ImmediateResponse {
  status: { code: number };
  headers?: HeaderMutation;
  body?: Buffer;
  details?: string;
}

export interface ProcessingResponse {
  request_headers?: { response?: CommonResponse };
  response_headers?: { response?: CommonResponse };
  request_body?: { response?: CommonResponse };
  response_body?: { response?: CommonResponse };
  request_trailers?: Record<string, never>;
  response_trailers?: Record<string, never>;
  immediate_response?: ImmediateResponse;
  mode_override?: ProcessingMode;
  override_message_timeout?: { seconds: string; nanos: number };
}

export const EXT_PROC_ATTRIBUTES_KEY = 'envoy.filters.http.ext_proc';
