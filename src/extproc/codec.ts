/**
 * ProcessingRequest in, ProcessingResponse out, straight between wire bytes
 * and the shapes in protocol.ts. Field numbers are those of
 * protos/envoy/service/ext_proc/v3/external_processor.proto and the files it
 * imports; test/unit/codec.test.ts checks both directions against protobufjs
 * loaded from those protos. Only the fields mcp-pin reads are decoded; the
 * rest are skipped, as protobuf allows.
 */
import { Reader, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, Writer, WireError, tagOf } from '../grpc/wire.js';
import type {
  AppendAction,
  BodySendMode,
  CommonResponse,
  HeaderMutation,
  HeaderSendMode,
  ProcessingMode,
  ProcessingRequest,
  ProcessingResponse,
  RequestPhase,
  WireHeader,
  WireHttpBody,
  WireHttpHeaders,
  WireValue,
} from './protocol.js';

export { WireError };

// ---- decoding -------------------------------------------------------------

const PHASES: Record<number, RequestPhase> = {
  2: 'request_headers',
  3: 'response_headers',
  4: 'request_body',
  5: 'response_body',
  6: 'request_trailers',
  7: 'response_trailers',
};

/** Tags of the fields read below, by wire type. */
const LEN = (field: number): number => tagOf(field, WIRE_LEN);
const VARINT = (field: number): number => tagOf(field, WIRE_VARINT);

export function decodeProcessingRequest(buf: Buffer): ProcessingRequest {
  const r = new Reader(buf);
  const end = buf.length;
  const out: ProcessingRequest = {};
  while (r.pos < end) {
    const t = r.tag();
    const field = t >>> 3;
    const phase = PHASES[field];
    if (phase) {
      if ((t & 7) !== WIRE_LEN) throw new WireError(`${phase}: wire type ${t & 7}`);
      const e = r.len(end);
      // A oneof: the last member on the wire wins.
      if (out.request) delete out[out.request];
      out.request = phase;
      if (field <= 3) out[phase as 'request_headers'] = decodeHttpHeaders(r, e);
      else if (field <= 5) out[phase as 'request_body'] = decodeHttpBody(r, e);
      else {
        out[phase as 'request_trailers'] = {};
        r.pos = e;
      }
    } else if (t === LEN(9)) {
      const e = r.len(end);
      let key = '';
      let fields: Record<string, WireValue> = {};
      // map<string, google.protobuf.Struct> entry: key = 1, value = 2.
      while (r.pos < e) {
        const et = r.tag();
        if (et === LEN(1)) key = r.string(e);
        else if (et === LEN(2)) fields = decodeStruct(r, r.len(e));
        else r.skip(et & 7, e);
      }
      (out.attributes ??= {})[key] = Object.keys(fields).length > 0 ? { fields } : {};
    } else if (t === VARINT(10)) {
      out.observability_mode = r.bool();
    } else {
      r.skip(t & 7, end);
    }
  }
  return out;
}

function decodeHttpHeaders(r: Reader, end: number): WireHttpHeaders {
  const out: WireHttpHeaders = {};
  while (r.pos < end) {
    const t = r.tag();
    if (t === LEN(1)) {
      const list = decodeHeaderMap(r, r.len(end));
      out.headers = list.length > 0 ? { headers: list } : {};
    } else if (t === VARINT(3)) {
      out.end_of_stream = r.bool();
    } else r.skip(t & 7, end);
  }
  return out;
}

function decodeHeaderMap(r: Reader, end: number): WireHeader[] {
  const list: WireHeader[] = [];
  while (r.pos < end) {
    const t = r.tag();
    if (t === LEN(1)) list.push(decodeHeaderValue(r, r.len(end)));
    else r.skip(t & 7, end);
  }
  return list;
}

function decodeHeaderValue(r: Reader, end: number): WireHeader {
  // Fields absent on the wire stay absent (as protobufjs with defaults: false).
  const h = {} as WireHeader;
  while (r.pos < end) {
    const t = r.tag();
    if (t === LEN(1)) h.key = r.string(end);
    else if (t === LEN(2)) h.value = r.string(end);
    else if (t === LEN(3)) h.raw_value = r.bytes(end);
    else r.skip(t & 7, end);
  }
  return h;
}

function decodeHttpBody(r: Reader, end: number): WireHttpBody {
  const out: WireHttpBody = {};
  while (r.pos < end) {
    const t = r.tag();
    if (t === LEN(1)) out.body = r.bytes(end);
    else if (t === VARINT(2)) out.end_of_stream = r.bool();
    else r.skip(t & 7, end);
  }
  return out;
}

/** google.protobuf.Struct: map<string, Value> fields = 1. */
function decodeStruct(r: Reader, end: number): Record<string, WireValue> {
  const fields: Record<string, WireValue> = {};
  while (r.pos < end) {
    const t = r.tag();
    if (t !== LEN(1)) {
      r.skip(t & 7, end);
      continue;
    }
    const e = r.len(end);
    let key = '';
    let value: WireValue = {};
    while (r.pos < e) {
      const et = r.tag();
      if (et === LEN(1)) key = r.string(e);
      else if (et === LEN(2)) value = decodeValue(r, r.len(e));
      else r.skip(et & 7, e);
    }
    fields[key] = value;
  }
  return fields;
}

const VALUE_KINDS = ['', 'nullValue', 'numberValue', 'stringValue', 'boolValue', 'structValue', 'listValue'];

/** google.protobuf.Value, scalar kinds only (mcp-pin's attributes are strings and numbers). */
function decodeValue(r: Reader, end: number): WireValue {
  const v: WireValue = {};
  while (r.pos < end) {
    const t = r.tag();
    const field = t >>> 3;
    if (field >= 1 && field <= 6) {
      // A oneof: the last member wins.
      delete v.numberValue;
      delete v.stringValue;
      delete v.boolValue;
      v.kind = VALUE_KINDS[field]!;
    }
    if (t === tagOf(2, WIRE_FIXED64)) v.numberValue = r.double(end);
    else if (t === LEN(3)) v.stringValue = r.string(end);
    else if (t === VARINT(4)) v.boolValue = r.bool();
    else r.skip(t & 7, end);
  }
  return v;
}

// ---- encoding -------------------------------------------------------------

const HEADER_SEND_MODE: Record<HeaderSendMode, number> = { DEFAULT: 0, SEND: 1, SKIP: 2 };
const BODY_SEND_MODE: Record<BodySendMode, number> = { NONE: 0, STREAMED: 1, BUFFERED: 2, BUFFERED_PARTIAL: 3, FULL_DUPLEX_STREAMED: 4 };
const APPEND_ACTION: Record<AppendAction, number> = {
  APPEND_IF_EXISTS_OR_ADD: 0,
  ADD_IF_ABSENT: 1,
  OVERWRITE_IF_EXISTS_OR_ADD: 2,
  OVERWRITE_IF_EXISTS: 3,
};

export function encodeProcessingResponse(p: ProcessingResponse): Buffer {
  const w = new Writer();
  if (p.request_headers) w.message(1, wrapCommon(p.request_headers.response));
  if (p.response_headers) w.message(2, wrapCommon(p.response_headers.response));
  if (p.request_body) w.message(3, wrapCommon(p.request_body.response));
  if (p.response_body) w.message(4, wrapCommon(p.response_body.response));
  if (p.request_trailers) w.message(5, new Writer());
  if (p.response_trailers) w.message(6, new Writer());
  if (p.immediate_response) {
    const ir = p.immediate_response;
    const m = new Writer().message(1, new Writer().uint(1, ir.status.code));
    if (ir.headers) m.message(2, headerMutation(ir.headers));
    if (ir.body && ir.body.length > 0) m.bytes(3, ir.body);
    if (ir.details) m.string(5, ir.details);
    w.message(7, m);
  }
  if (p.mode_override) w.message(9, processingMode(p.mode_override));
  if (p.override_message_timeout) {
    const d = p.override_message_timeout;
    const m = new Writer();
    const seconds = Number(d.seconds);
    if (seconds > 0) m.uint(1, seconds);
    if (d.nanos > 0) m.uint(2, d.nanos);
    w.message(10, m);
  }
  return w.finish();
}

/** HeadersResponse / BodyResponse: CommonResponse response = 1. */
function wrapCommon(c: CommonResponse | undefined): Writer {
  const w = new Writer();
  if (c) w.message(1, commonResponse(c));
  return w;
}

function commonResponse(c: CommonResponse): Writer {
  const w = new Writer();
  if (c.status === 'CONTINUE_AND_REPLACE') w.uint(1, 1);
  if (c.header_mutation) w.message(2, headerMutation(c.header_mutation));
  if (c.clear_route_cache) w.bool(5, true);
  return w;
}

function headerMutation(m: HeaderMutation): Writer {
  const w = new Writer();
  for (const o of m.set_headers ?? []) {
    const header = new Writer().string(1, o.header.key);
    if (o.header.raw_value.length > 0) header.bytes(3, o.header.raw_value);
    const opt = new Writer().message(1, header);
    const action = APPEND_ACTION[o.append_action];
    if (action !== 0) opt.uint(3, action);
    w.message(1, opt);
  }
  for (const name of m.remove_headers ?? []) w.string(2, name);
  return w;
}

function processingMode(m: ProcessingMode): Writer {
  const w = new Writer();
  const h = (field: number, v: HeaderSendMode | undefined): void => {
    if (v && HEADER_SEND_MODE[v]) w.uint(field, HEADER_SEND_MODE[v]);
  };
  const b = (field: number, v: BodySendMode | undefined): void => {
    if (v && BODY_SEND_MODE[v]) w.uint(field, BODY_SEND_MODE[v]);
  };
  h(1, m.request_header_mode);
  h(2, m.response_header_mode);
  b(3, m.request_body_mode);
  b(4, m.response_body_mode);
  h(5, m.request_trailer_mode);
  h(6, m.response_trailer_mode);
  return w;
}
