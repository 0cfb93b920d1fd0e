/**
 * The replies mcp-pin sends Envoy (src/extproc/responses.ts), by shape: which
 * headers each strips or sets, whether it clears the route cache, which
 * phases it asks for. A wrong shape routes by a client's header, keeps a
 * stale route, or opens a response stream for nothing (issue 28 item 5).
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { CLIENT_SESSION_HEADER, REDIRECTED_SESSION_HEADER } from '../../src/mcp-headers.js';
import { HeaderReplies, MAX_PINNED_REPLIES, continueRequestHeaders, extendMessageTimeout, immediate, jsonRpcError } from '../../src/extproc/responses.js';
import type { ProcessingResponse } from '../../src/extproc/protocol.js';

const PIN = 'x-test-pin';

/** A reply's request-header mutation as plain data. */
function shape(r: ProcessingResponse): unknown {
  const c = r.request_headers?.response;
  return {
    set: (c?.header_mutation?.set_headers ?? []).map((h) => [h.header.key, h.header.raw_value.toString('latin1'), h.append_action]),
    remove: c?.header_mutation?.remove_headers ?? [],
    clearRouteCache: c?.clear_route_cache === true,
    mode: r.mode_override ?? null,
    hasMutation: c?.header_mutation !== undefined,
  };
}

describe('replies to request headers', () => {
  // Built in each test, not when the file loads: a mutation run switches mutants between tests.
  let replies: HeaderReplies;
  beforeEach(() => {
    replies = new HeaderReplies(PIN);
  });
  const strip = [PIN, CLIENT_SESSION_HEADER, REDIRECTED_SESSION_HEADER];

  it('a request without a session: strips every routing header a client may send, re-routes, skips the response', () => {
    expect(shape(replies.passthrough)).to.deep.equal({
      set: [],
      remove: strip,
      clearRouteCache: true,
      mode: { response_header_mode: 'SKIP' },
      hasMutation: true,
    });
  });

  it('a possible initialize: the same, and asks for its body and its response headers', () => {
    expect(shape(replies.maybeInitialize)).to.deep.equal({
      set: [],
      remove: strip,
      clearRouteCache: true,
      mode: { request_body_mode: 'BUFFERED', response_header_mode: 'SEND' },
      hasMutation: true,
    });
  });

  it('a session the store does not know: the same, with its response headers (a 2xx adopts it)', () => {
    expect(shape(replies.unknownSession)).to.deep.equal({
      set: [],
      remove: strip,
      clearRouteCache: true,
      mode: { response_header_mode: 'SEND' },
      hasMutation: true,
    });
  });

  it('a pinned request: sets the pin header to the pod, strips the client-session header, re-routes; the response only when asked', () => {
    expect(shape(replies.pinnedTo('10.0.0.1:80', false))).to.deep.equal({
      set: [[PIN, '10.0.0.1:80', 'OVERWRITE_IF_EXISTS_OR_ADD']],
      remove: [CLIENT_SESSION_HEADER],
      clearRouteCache: true,
      mode: { response_header_mode: 'SKIP' },
      hasMutation: true,
    });
    expect((shape(replies.pinnedTo('10.0.0.1:80', true)) as { mode: unknown }).mode).to.deep.equal({ response_header_mode: 'SEND' });
  });

  it('builds each pinned reply once per pod and phase, and starts over past its bound', () => {
    const r = new HeaderReplies(PIN);
    const a = r.pinnedTo('10.0.0.1:80', false);
    expect(r.pinnedTo('10.0.0.1:80', false)).to.equal(a);
    expect(r.pinnedTo('10.0.0.1:80', true)).to.not.equal(a);
    for (let i = 0; i < MAX_PINNED_REPLIES - 2; i++) r.pinnedTo(`10.1.${i >> 8}.${i & 255}:80`, false);
    // Full now (the bound): the next new pod clears the map, so the first one is built again.
    expect(r.pinnedTo('10.0.0.1:80', false), 'still there at the bound').to.equal(a);
    r.pinnedTo('10.9.9.9:80', false);
    const again = r.pinnedTo('10.0.0.1:80', false);
    expect(again, 'built again after the clear').to.not.equal(a);
    expect(shape(again)).to.deep.equal(shape(a));
  });

  it('one set of replies per pin header, shared', () => {
    // A header name of this test's own: the shared set outlives a test (a mutation run reuses the process).
    const own = `x-a-${randomUUID()}`;
    expect(HeaderReplies.for(own)).to.equal(HeaderReplies.for(own));
    expect(HeaderReplies.for('x-a')).to.not.equal(HeaderReplies.for('x-b'));
    expect((shape(HeaderReplies.for('x-b').pinnedTo('p:1', false)) as { set: unknown[] }).set[0]).to.deep.equal(['x-b', 'p:1', 'OVERWRITE_IF_EXISTS_OR_ADD']);
  });

  it('says nothing it was not asked to: no mutation, no route-cache clearing, no mode', () => {
    expect(continueRequestHeaders()).to.deep.equal({ request_headers: { response: {} } });
    expect(continueRequestHeaders({ remove: [], set: [] })).to.deep.equal({ request_headers: { response: {} } });
    expect(shape(continueRequestHeaders({ overwrite: [['mcp-session-id', 'c']] }))).to.deep.equal({
      set: [['mcp-session-id', 'c', 'OVERWRITE_IF_EXISTS']],
      remove: [],
      clearRouteCache: false,
      mode: null,
      hasMutation: true,
    });
    expect(shape(continueRequestHeaders({ remove: ['x'] }, { clearRouteCache: true }))).to.deep.equal({
      set: [],
      remove: ['x'],
      clearRouteCache: true,
      mode: null,
      hasMutation: true,
    });
  });
});

describe('immediate answers', () => {
  it('a JSON-RPC error: the status, a JSON content type, the error body with id null, and its details', () => {
    const r = jsonRpcError(503, -32603, 'try again', 'mcp_pin_x', [['retry-after', '1']]);
    const imm = r.immediate_response!;
    expect(imm.status.code).to.equal(503);
    expect(imm.details).to.equal('mcp_pin_x');
    expect(JSON.parse(imm.body!.toString())).to.deep.equal({ jsonrpc: '2.0', error: { code: -32603, message: 'try again' }, id: null });
    expect(imm.headers!.set_headers!.map((h) => [h.header.key, h.header.raw_value.toString()])).to.deep.equal([
      ['content-type', 'application/json'],
      ['retry-after', '1'],
    ]);
    expect(immediate(200, [], Buffer.alloc(0), 'd').immediate_response!.headers, 'no headers, no mutation').to.equal(undefined);
  });

  it('a message timeout extension in seconds and nanoseconds', () => {
    expect(extendMessageTimeout(11_250)).to.deep.equal({ override_message_timeout: { seconds: '11', nanos: 250_000_000 } });
    expect(extendMessageTimeout(999)).to.deep.equal({ override_message_timeout: { seconds: '0', nanos: 999_000_000 } });
  });
});
