/**
 * The small readers every ext_proc stream relies on: Envoy's header lists and
 * attributes, what Envoy reports about the upstream, the initialize sniffing,
 * the stream's role, and the unknown-session memory. Each case states what a
 * wrong reading would cost (issue 28 item 5: these modules' mutants survived
 * the tests that reach them only through whole exchanges).
 */
import { expect } from 'chai';
import { negotiatedVersion, requestedVersion } from '../../src/recovery/lost-session.js';
import { attributeNumber, attributeString, headerPairs } from '../../src/extproc/headers.js';
import { isInitializeRequest, isJsonContentType } from '../../src/extproc/mcp-body.js';
import type { ProcessingRequest, WireValue } from '../../src/extproc/protocol.js';
import { RecentlyUnknown, unknownKey } from '../../src/extproc/recently-unknown.js';
import { STREAM_ROLES, streamRole } from '../../src/extproc/stream-handler.js';
import { isConnectFailure, upstreamReport } from '../../src/extproc/upstream.js';
import { MAX_INIT_PATH_LENGTH } from '../../src/sessions/store.js';

const attrs = (fields: Record<string, WireValue>): ProcessingRequest =>
  ({ request: 'response_headers', attributes: { 'envoy.filters.http.ext_proc': { fields } } }) as unknown as ProcessingRequest;

describe("Envoy's header lists and attributes", () => {
  it('reads raw_value as latin1 bytes, falls back to value, lower-cases names, and skips entries without a name', () => {
    const pairs = headerPairs({
      headers: {
        headers: [
          { key: 'Mcp-Session-Id', raw_value: Buffer.from('s-1') },
          { key: 'x-latin', raw_value: Buffer.from([0xe9]) },
          { key: 'x-old', raw_value: Buffer.alloc(0), value: 'from value' },
          { key: 'x-none' },
          { raw_value: Buffer.from('no name') } as never,
          null as never,
        ],
      },
    });
    expect(pairs).to.deep.equal([
      ['mcp-session-id', 's-1'],
      ['x-latin', 'é'],
      ['x-old', 'from value'],
      ['x-none', ''],
    ]);
    expect(headerPairs(undefined)).to.deep.equal([]);
  });

  it('reads a string or number attribute by its kind, and by which member is set where no kind is given', () => {
    expect(attributeString({ kind: 'stringValue', stringValue: '10.0.0.1:80', numberValue: 0 })).to.equal('10.0.0.1:80');
    expect(attributeString({ kind: 'numberValue', numberValue: 7, stringValue: '' })).to.equal('7');
    // A decoded message carries every member; the kind decides.
    expect(attributeString({ kind: 'boolValue', stringValue: 'not me' } as WireValue)).to.equal(undefined);
    expect(attributeString({ stringValue: 'plain' })).to.equal('plain');
    expect(attributeString({ numberValue: 3 })).to.equal('3');
    expect(attributeString({})).to.equal(undefined);
    expect(attributeString(undefined)).to.equal(undefined);
    expect(attributeString(null)).to.equal(undefined);

    expect(attributeNumber({ kind: 'numberValue', numberValue: 32, stringValue: '' })).to.equal(32);
    expect(attributeNumber({ kind: 'stringValue', stringValue: '32' })).to.equal(32);
    expect(attributeNumber({ kind: 'stringValue', stringValue: '' }), 'an empty string is no number').to.equal(undefined);
    expect(attributeNumber({ kind: 'stringValue', stringValue: 'x' })).to.equal(undefined);
    expect(attributeNumber({ numberValue: 5 })).to.equal(5);
    expect(attributeNumber({ stringValue: '6' })).to.equal(6);
    expect(attributeNumber({})).to.equal(undefined);
    expect(attributeNumber(null)).to.equal(undefined);
  });
});

describe('what Envoy reports about the upstream', () => {
  it('keeps only what Envoy set: the address, the flags, the details', () => {
    expect(upstreamReport({ request: 'response_headers' } as ProcessingRequest)).to.deep.equal({});
    expect(upstreamReport(attrs({}))).to.deep.equal({});
    expect(
      upstreamReport(
        attrs({
          'upstream.address': { kind: 'stringValue', stringValue: '10.0.0.2:8080' },
          'response.flags': { kind: 'numberValue', numberValue: 0x20 },
          'response.code_details': { kind: 'stringValue', stringValue: 'upstream_reset_before_response_started{connection_failure}' },
        }),
      ),
    ).to.deep.equal({ address: '10.0.0.2:8080', flags: 0x20, codeDetails: 'upstream_reset_before_response_started{connection_failure}' });
    // Empty strings are not an address or details.
    expect(
      upstreamReport(
        attrs({ 'upstream.address': { kind: 'stringValue', stringValue: '' }, 'response.code_details': { kind: 'stringValue', stringValue: '' } }),
      ),
    ).to.deep.equal({});
  });

  it('calls a 503 a connect failure by the UF flag or the details, nothing else', () => {
    expect(isConnectFailure(503, { flags: 0x20 })).to.equal(true);
    expect(isConnectFailure(503, { flags: 0x20 | 0x1 })).to.equal(true);
    expect(isConnectFailure(503, { codeDetails: 'upstream_reset_before_response_started{connection_failure}' })).to.equal(true);
    // Another flag (UC: the pod closed the connection after taking the request) is no connect failure.
    expect(isConnectFailure(503, { flags: 0x40 })).to.equal(false);
    expect(isConnectFailure(503, { flags: 0, codeDetails: 'upstream_reset_before_response_started{connection_termination}' })).to.equal(false);
    expect(isConnectFailure(503, {})).to.equal(false);
    // Only Envoy's 503: a pod's own 500 or 502 naming a connection failure is the pod's answer.
    expect(isConnectFailure(502, { flags: 0x20, codeDetails: 'connection_failure' })).to.equal(false);
    expect(isConnectFailure(200, { flags: 0x20 })).to.equal(false);
  });
});

describe('spotting an initialize request', () => {
  it('finds initialize in a request or a batch, and nothing else', () => {
    const body = (x: unknown): Buffer => Buffer.from(JSON.stringify(x));
    expect(isInitializeRequest(body({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }))).to.equal(true);
    expect(
      isInitializeRequest(
        body([
          { jsonrpc: '2.0', method: 'ping' },
          { jsonrpc: '2.0', id: 1, method: 'initialize' },
        ]),
      ),
    ).to.equal(true);
    expect(isInitializeRequest(body([{ method: 'ping' }, null, 'initialize']))).to.equal(false);
    // Names initialize elsewhere: a tool's argument, a notification, a string.
    expect(isInitializeRequest(body({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'initialize' } }))).to.equal(false);
    expect(isInitializeRequest(body({ jsonrpc: '2.0', method: 'notifications/initialized' }))).to.equal(false);
    expect(isInitializeRequest(body('initialize'))).to.equal(false);
    expect(isInitializeRequest(body(null))).to.equal(false);
    expect(isInitializeRequest(Buffer.from('{"method":"initialize"'))).to.equal(false);
    expect(isInitializeRequest(Buffer.alloc(0))).to.equal(false);
  });

  it('reads JSON content types, parameters and case aside', () => {
    expect(isJsonContentType('application/json')).to.equal(true);
    expect(isJsonContentType('Application/JSON; charset=utf-8')).to.equal(true);
    expect(isJsonContentType(' application/json ;q=1')).to.equal(true);
    expect(isJsonContentType('application/vnd.api+json')).to.equal(true);
    expect(isJsonContentType('text/event-stream')).to.equal(false);
    expect(isJsonContentType('application/json-seq')).to.equal(false);
    expect(isJsonContentType('+json/x')).to.equal(false);
    expect(isJsonContentType('')).to.equal(false);
    expect(isJsonContentType(undefined)).to.equal(false);
  });
});

describe("a stream's role", () => {
  it('is what the metadata names, a client request where it names none or something else', () => {
    for (const role of STREAM_ROLES) expect(streamRole(role)).to.equal(role);
    expect(streamRole(undefined)).to.equal('request');
    expect(streamRole('')).to.equal('request');
    expect(streamRole('attempts')).to.equal('request');
    expect(streamRole(['attempt'])).to.equal('request');
  });
});

describe('the unknown-session memory', () => {
  it('remembers an id for its time, per path, the query left out', () => {
    let now = 0;
    const mem = new RecentlyUnknown(1000, 10, () => now);
    const key = unknownKey('s1', '/mcp?x=1');
    expect(key).to.equal('s1 /mcp');
    mem.remember(key!);
    expect(mem.has('s1 /mcp')).to.equal(true);
    expect(mem.has(unknownKey('s1', '/other')!)).to.equal(false);
    expect(mem.size).to.equal(1);
    now = 999;
    expect(mem.has('s1 /mcp')).to.equal(true);
    now = 1000;
    expect(mem.has('s1 /mcp')).to.equal(false);
    // A path too long to keep is not remembered at all.
    expect(unknownKey('s1', `/${'a'.repeat(MAX_INIT_PATH_LENGTH)}`)).to.equal(null);
    expect(unknownKey('s1', `/${'a'.repeat(MAX_INIT_PATH_LENGTH - 1)}`)).to.equal(`s1 /${'a'.repeat(MAX_INIT_PATH_LENGTH - 1)}`);
  });
});

describe('protocol versions read from an initialize and its answer (lost-session.ts)', () => {
  it('reads the version a stored initialize asked for; nothing from a body that is no JSON, names none, or names no date', () => {
    expect(requestedVersion(Buffer.from('{"method":"initialize","params":{"protocolVersion":"2025-06-18"}}'))).to.equal('2025-06-18');
    for (const body of ['{"method":"initialize"', 'null', '{"params":{"protocolVersion":"latest"}}', '{"params":{"protocolVersion":20250618}}']) {
      expect(requestedVersion(Buffer.from(body)), body).to.equal(undefined);
    }
    expect(requestedVersion(null)).to.equal(undefined);
  });

  it('reads the version an answer settled on, as JSON or from an SSE data line', () => {
    expect(negotiatedVersion(Buffer.from('{"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-03-26"}}'))).to.equal('2025-03-26');
    const sse = 'event: message\nid: 1\ndata: {"jsonrpc":"2.0","id":0,"result":{"protocolVersion":"2025-11-25"}}\n\n';
    expect(negotiatedVersion(Buffer.from(sse))).to.equal('2025-11-25');
    expect(negotiatedVersion(Buffer.from('data: null\n\nnull'))).to.equal(undefined);
    expect(negotiatedVersion(Buffer.from('{"result":{"protocolVersion":"soon"}}'))).to.equal(undefined);
  });
});
