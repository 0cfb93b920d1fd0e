import { expect } from 'chai';
import type { ServiceDefinition } from '@grpc/grpc-js';
import { headerPairs } from '../../src/extproc/headers.js';
import type { ProcessingRequest, ProcessingResponse } from '../../src/extproc/protocol.js';
import { HeaderReplies, continueRequestHeaders, continueResponseHeaders } from '../../src/extproc/responses.js';
import { upstreamReport } from '../../src/extproc/upstream.js';
import { CLIENT_SESSION_HEADER } from '../../src/mcp-headers.js';
import { decodeRequest, extProcServiceDefinition, precoded, protoLoaderServiceDefinition } from '../../src/protos.js';

const plain = protoLoaderServiceDefinition().Process!;
const tuned = (extProcServiceDefinition() as ServiceDefinition).Process!;
/** What proto-loader would put on the wire for a request, and make of a reply. */
const requestBytes = (r: ProcessingRequest): Buffer => plain.requestSerialize(r) as Buffer;
const replyAsProtoLoaderReadsIt = (b: Buffer): unknown => plain.responseDeserialize(b);

describe('the tuned ext_proc codec (src/protos.ts)', () => {
  const request: ProcessingRequest = {
    request_headers: {
      headers: {
        headers: [
          { key: ':method', raw_value: Buffer.from('POST') },
          { key: 'Mcp-Session-Id', raw_value: Buffer.from('abc') },
          { key: 'x-plain', value: 'only value' },
        ],
      },
      end_of_stream: false,
    },
    attributes: {
      'envoy.filters.http.ext_proc': {
        fields: {
          'upstream.address': { stringValue: '10.0.0.7:8080' },
          'response.flags': { numberValue: 32 },
          'response.code_details': { stringValue: 'upstream_reset_before_response_started{connection_failure}' },
        },
      },
    },
  };

  it("decodes requests into what the exchange reads, as proto-loader's full object would give", () => {
    const bytes = requestBytes(request);
    const fast = decodeRequest(bytes);
    const full = plain.requestDeserialize(bytes) as ProcessingRequest;
    expect(fast.request).to.equal('request_headers');
    expect(headerPairs(fast.request_headers)).to.deep.equal(headerPairs(full.request_headers));
    expect(headerPairs(fast.request_headers)).to.deep.include(['x-plain', 'only value']);
    expect(upstreamReport(fast)).to.deep.equal(upstreamReport(full));
    expect(upstreamReport(fast)).to.deep.equal({
      address: '10.0.0.7:8080',
      flags: 32,
      codeDetails: 'upstream_reset_before_response_started{connection_failure}',
    });
    // Absent parts read as defaults, never as data.
    expect(fast.request_body ?? undefined).to.equal(undefined);
    expect(upstreamReport(decodeRequest(requestBytes({ request_headers: {} })))).to.deep.equal({});
    expect(tuned.requestDeserialize).to.equal(decodeRequest);
  });

  it("sends a precoded reply's bytes, which read back as the reply itself", () => {
    const r = precoded(
      continueRequestHeaders(
        { set: [['x-mcp-pin-pod', '10.0.0.7:8080']], remove: [CLIENT_SESSION_HEADER] },
        { clearRouteCache: true, mode: { response_header_mode: 'SKIP' } },
      ),
    );
    const sent = tuned.responseSerialize(r) as Buffer;
    expect(sent.equals(plain.responseSerialize(r) as Buffer)).to.equal(true);
    expect(replyAsProtoLoaderReadsIt(sent)).to.deep.equal({ ...r, response: 'request_headers' });
    expect(Object.isFrozen(r)).to.equal(true);
    // A reply built per request is encoded as it is.
    const fresh: ProcessingResponse = continueResponseHeaders({ overwrite: [['mcp-session-id', 'client-id']] });
    expect((tuned.responseSerialize(fresh) as Buffer).equals(plain.responseSerialize(fresh) as Buffer)).to.equal(true);
  });

  it('caches one pinned reply per pod, equal to the one built in full', () => {
    const replies = HeaderReplies.for('x-mcp-pin-pod');
    const a = replies.pinnedTo('10.0.0.7:8080', false);
    expect(replies.pinnedTo('10.0.0.7:8080', false)).to.equal(a);
    expect(a).to.deep.equal(
      continueRequestHeaders(
        { set: [['x-mcp-pin-pod', '10.0.0.7:8080']], remove: [CLIENT_SESSION_HEADER] },
        { clearRouteCache: true, mode: { response_header_mode: 'SKIP' } },
      ),
    );
    expect(replies.pinnedTo('10.0.0.7:8080', true)).to.deep.equal(
      continueRequestHeaders(
        { set: [['x-mcp-pin-pod', '10.0.0.7:8080']], remove: [CLIENT_SESSION_HEADER] },
        { clearRouteCache: true, mode: { response_header_mode: 'SEND' } },
      ),
    );
    expect(replies.pinnedTo('10.0.0.8:8080', false)).to.not.deep.equal(a);
    expect(
      (tuned.responseSerialize(replies.pinnedTo('10.0.0.8:8080', false)) as Buffer).equals(
        plain.responseSerialize(
          continueRequestHeaders(
            { set: [['x-mcp-pin-pod', '10.0.0.8:8080']], remove: [CLIENT_SESSION_HEADER] },
            { clearRouteCache: true, mode: { response_header_mode: 'SKIP' } },
          ),
        ) as Buffer,
      ),
    ).to.equal(true);
  });
});
