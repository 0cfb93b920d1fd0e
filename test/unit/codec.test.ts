/**
 * mcp-pin's own protobuf codec (src/extproc/codec.ts, src/health.ts) against
 * protobufjs loaded from the project's protos by @grpc/proto-loader: for
 * random messages both must read the same bytes the same way, and what
 * mcp-pin writes must read back, through protobufjs, as what protobufjs
 * itself would have written.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import * as protoLoader from '@grpc/proto-loader';
import { decodeProcessingRequest, encodeProcessingResponse } from '../../src/extproc/codec.js';
import type { ProcessingMode, ProcessingResponse } from '../../src/extproc/protocol.js';
import { continueRequestBody, continueRequestHeaders, continueRequestTrailers, continueResponseBody, continueResponseHeaders, continueResponseTrailers, extendMessageTimeout, immediate } from '../../src/extproc/responses.js';
import { Reader, Writer } from '../../src/grpc/wire.js';
import { LOADER_OPTIONS } from '../helpers/grpc-clients.js';

const process = protoLoader.loadSync('envoy/service/ext_proc/v3/external_processor.proto', LOADER_OPTIONS)['envoy.service.ext_proc.v3.ExternalProcessor'] as unknown as {
  Process: {
    requestSerialize(o: unknown): Buffer;
    requestDeserialize(b: Buffer): Record<string, unknown>;
    responseSerialize(o: unknown): Buffer;
    responseDeserialize(b: Buffer): Record<string, unknown>;
  };
};
const { Process } = process;

/** Plain data: Buffers as byte arrays, so deep equality compares contents. */
const plain = (o: unknown): unknown => JSON.parse(JSON.stringify(o));

/**
 * What a proto3 reader sees: a scalar at its default value is the same as an
 * absent one (protobufjs writes '' or 0 if the field is set; mcp-pin leaves
 * it out). Messages stay, even empty: their presence matters in a oneof.
 */
const ZERO_ENUMS = new Set(['DEFAULT', 'NONE', 'CONTINUE', 'APPEND_IF_EXISTS_OR_ADD']);
function semantic(o: unknown): unknown {
  if (Array.isArray(o)) return o.map(semantic);
  if (o === null || typeof o !== 'object') return o;
  const rec = o as Record<string, unknown>;
  if (rec.type === 'Buffer' && Array.isArray(rec.data)) return rec;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rec)) {
    const isEmptyBytes = typeof v === 'object' && v !== null && (v as { type?: string }).type === 'Buffer' && (v as { data: unknown[] }).data.length === 0;
    if (v === '' || v === 0 || v === false || v === '0' || isEmptyBytes || (typeof v === 'string' && ZERO_ENUMS.has(v))) continue;
    if (Array.isArray(v) && v.length === 0) continue;
    out[k] = semantic(v);
  }
  return out;
}

const text = fc.string({ maxLength: 40 });
const bytes = fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b));
const header = fc.record(
  { key: fc.oneof(fc.constantFrom(':method', ':status', 'mcp-session-id'), text), value: text, raw_value: bytes },
  { requiredKeys: [] },
);
const httpHeaders = fc.record({ headers: fc.record({ headers: fc.array(header, { maxLength: 8 }) }, { requiredKeys: [] }), end_of_stream: fc.boolean() }, { requiredKeys: [] });
const httpBody = fc.record({ body: bytes, end_of_stream: fc.boolean() }, { requiredKeys: [] });
const value = fc.oneof(
  text.map((s) => ({ stringValue: s })),
  fc.double({ noNaN: true }).map((n) => ({ numberValue: n })),
  fc.boolean().map((b) => ({ boolValue: b })),
);
const attributes = fc.dictionary(fc.constantFrom('envoy.filters.http.ext_proc', 'other'), fc.record({ fields: fc.dictionary(fc.oneof(fc.constantFrom('upstream.address', 'response.flags'), text), value, { maxKeys: 5 }) }), { maxKeys: 2 });
const request = fc.tuple(
  fc.oneof(
    httpHeaders.map((h) => ({ request_headers: h })),
    httpHeaders.map((h) => ({ response_headers: h })),
    httpBody.map((b) => ({ request_body: b })),
    httpBody.map((b) => ({ response_body: b })),
    fc.constant({ request_trailers: {} }),
    fc.constant({ response_trailers: {} }),
    fc.constant({}),
  ),
  fc.option(attributes, { nil: undefined }),
  fc.boolean(),
).map(([phase, attrs, obs]) => ({ ...phase, ...(attrs ? { attributes: attrs } : {}), ...(obs ? { observability_mode: true } : {}) }));

const headerPair = fc.tuple(fc.stringMatching(/^[a-z0-9-]{1,20}$/), fc.string({ maxLength: 80 }));
const mutation = fc.record(
  { set: fc.array(headerPair, { maxLength: 3 }), overwrite: fc.array(headerPair, { maxLength: 3 }), remove: fc.array(fc.stringMatching(/^[a-z-]{1,20}$/), { maxLength: 3 }) },
  { requiredKeys: [] },
);
const mode: fc.Arbitrary<ProcessingMode> = fc.record(
  {
    request_header_mode: fc.constantFrom('DEFAULT', 'SEND', 'SKIP'),
    response_header_mode: fc.constantFrom('DEFAULT', 'SEND', 'SKIP'),
    request_body_mode: fc.constantFrom('NONE', 'STREAMED', 'BUFFERED', 'BUFFERED_PARTIAL', 'FULL_DUPLEX_STREAMED'),
    response_body_mode: fc.constantFrom('NONE', 'BUFFERED'),
    request_trailer_mode: fc.constantFrom('SEND', 'SKIP'),
    response_trailer_mode: fc.constantFrom('SEND', 'SKIP'),
  },
  { requiredKeys: [] },
);
const response: fc.Arbitrary<ProcessingResponse> = fc.oneof(
  fc.tuple(fc.option(mutation, { nil: undefined }), fc.boolean(), fc.option(mode, { nil: undefined })).map(([m, clear, md]) =>
    continueRequestHeaders(m, { clearRouteCache: clear, ...(md ? { mode: md } : {}) }),
  ),
  fc.option(mutation, { nil: undefined }).map((m) => continueResponseHeaders(m)),
  fc.constantFrom(continueRequestBody(), continueResponseBody(), continueRequestTrailers(), continueResponseTrailers()),
  fc.integer({ min: 1, max: 3_600_000 }).map((ms) => extendMessageTimeout(ms)),
  fc.tuple(fc.integer({ min: 200, max: 599 }), fc.array(headerPair, { maxLength: 4 }), fc.uint8Array({ maxLength: 5000 }), fc.string({ maxLength: 40 })).map(([s, h, b, d]) =>
    immediate(s, h, Buffer.from(b), d),
  ),
);

describe('protobuf codec, checked against protobufjs from protos/', () => {
  it('decodes any ProcessingRequest as protobufjs does', () => {
    fc.assert(
      fc.property(request, (msg) => {
        const wire = Process.requestSerialize(msg);
        expect(plain(decodeProcessingRequest(wire))).to.deep.equal(plain(Process.requestDeserialize(wire)));
      }),
      { numRuns: 2000 },
    );
  });

  it('encodes every response mcp-pin builds so that protobufjs reads what it would have written', () => {
    fc.assert(
      fc.property(response, (r) => {
        const ours = Process.responseDeserialize(encodeProcessingResponse(r));
        const theirs = Process.responseDeserialize(Process.responseSerialize(r));
        expect(semantic(plain(ours))).to.deep.equal(semantic(plain(theirs)));
      }),
      { numRuns: 2000 },
    );
  });

  it('reads the fields it knows after fields it does not (skipped by wire type)', () => {
    const w = new Writer().uint(15, 7).string(16, 'x').bytes(17, Buffer.alloc(100, 1));
    const body = new Writer().bytes(1, Buffer.from('hi')).bool(2, true);
    const wire = Buffer.concat([w.finish(), new Writer().message(4, body).finish()]);
    expect(decodeProcessingRequest(wire)).to.deep.equal({ request: 'request_body', request_body: { body: Buffer.from('hi'), end_of_stream: true } });
  });

  it('rejects truncated and malformed input with an error, never a wrong message', () => {
    const good = Process.requestSerialize({ request_headers: { headers: { headers: [{ key: ':method', raw_value: Buffer.from('POST') }] }, end_of_stream: true } });
    for (let cut = 1; cut < good.length; cut++) {
      let decoded: unknown;
      try {
        decoded = decodeProcessingRequest(good.subarray(0, cut));
      } catch {
        continue;
      }
      // A cut at a field boundary is a valid shorter message; it must still match protobufjs.
      expect(plain(decoded)).to.deep.equal(plain(Process.requestDeserialize(good.subarray(0, cut))));
    }
    expect(() => decodeProcessingRequest(Buffer.from([0x0f]))).to.throw(); // wire type 7
    expect(() => decodeProcessingRequest(Buffer.from([0x12, 0x05, 0x01]))).to.throw(); // length past the end
    expect(() => new Reader(Buffer.alloc(11, 0xff)).varint()).to.throw();
    expect(() => decodeProcessingRequest(Buffer.from([0x08, 0x01]))).to.not.throw(); // unknown field 1, skipped
  });
});
