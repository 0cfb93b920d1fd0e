/**
 * Generated hostile input for fuzz tests: ext_proc message sequences as a
 * caller of mcp-pin's gRPC port could send them (any phase, any order, odd
 * headers, bodies and attributes), and HTTP requests as a client of Envoy's
 * public listener could send them. fast-check arbitraries, seeded by the test.
 */
import fc from 'fast-check';

export type Msg = Record<string, unknown>;

const headerKey = fc.oneof(
  fc.constantFrom(':method', ':path', ':status', 'mcp-session-id', 'content-type', 'x-mcp-pin-dst', 'accept'),
  fc.string({ maxLength: 20 }),
);
const headerValue = fc.oneof(
  fc.constantFrom('POST', 'GET', 'DELETE', '200', '404', '503', 'application/json', 'S1', '127.0.0.1:6379', ''),
  fc.string({ maxLength: 300 }),
  fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b).toString('latin1')),
);
const headers = fc
  .array(
    fc.record({
      key: headerKey,
      raw: fc.option(
        headerValue.map((v) => Buffer.from(v, 'latin1')),
        { nil: undefined },
      ),
      value: fc.option(fc.string({ maxLength: 20 }), { nil: undefined }),
    }),
    { maxLength: 8 },
  )
  .map((hs) => ({
    headers: {
      headers: hs.map((h) => ({ key: h.key, ...(h.raw !== undefined ? { raw_value: h.raw } : {}), ...(h.value !== undefined ? { value: h.value } : {}) })),
    },
    end_of_stream: hs.length % 2 === 0,
  }));
const body = fc
  .oneof(
    fc.constant(Buffer.from('{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}')),
    fc.string({ maxLength: 200 }).map((s) => Buffer.from(s)),
    fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
  )
  .map((b) => ({ body: b, end_of_stream: true }));
const attributes = fc.option(
  fc.record({
    'envoy.filters.http.ext_proc': fc.record({
      fields: fc.dictionary(
        fc.constantFrom('upstream.address', 'response.flags', 'response.code_details', 'x'),
        fc.oneof(
          fc.string({ maxLength: 30 }).map((s) => ({ stringValue: s })),
          fc.double().map((n) => ({ numberValue: n })),
        ),
      ),
    }),
  }),
  { nil: undefined },
);
/** Headers as Envoy sends them (a method and a path first), then random ones. */
const requestHeaders = fc.tuple(fc.constantFrom('POST', 'GET', 'DELETE'), headers).map(([method, h]) => ({
  ...h,
  headers: { headers: [{ key: ':method', raw_value: Buffer.from(method) }, { key: ':path', raw_value: Buffer.from('/mcp') }, ...h.headers.headers] },
}));
export const message: fc.Arbitrary<Msg> = fc.oneof(
  fc.record({ request_headers: headers, attributes }),
  fc.record({ request_headers: requestHeaders, attributes }),
  fc.record({ response_headers: headers, attributes }),
  fc.record({ request_body: body }),
  fc.record({ response_body: body }),
  fc.record({ request_trailers: fc.constant({}) }),
  fc.record({ response_trailers: fc.constant({}) }),
  fc.constant({}),
  fc.constant({ observability_mode: true }),
);

/** First message: request headers whose first :method is a plain method (raw value, which Envoy always sends). */
export function opensWithMethod(messages: Msg[]): boolean {
  const h = (messages[0]?.request_headers as { headers?: { headers?: { key: string; raw_value?: Buffer }[] } } | undefined)?.headers?.headers;
  const method = h?.find((x) => x.key === ':method');
  return method?.raw_value !== undefined && ['POST', 'GET', 'DELETE'].includes(method.raw_value.toString('latin1'));
}

/** One HTTP request to the public listener. */
export interface HostileRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
  /** Send it with one of the fuzzer's own session ids (this index into them), chosen when sent. */
  ownSession?: number;
}

const MCP_METHODS = [
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'resources/read',
  'notifications/initialized',
  'logging/setLevel',
  'resources/subscribe',
  'nope/nope',
];
const jsonRpc = fc.oneof(
  fc
    .record({
      jsonrpc: fc.constant('2.0'),
      id: fc.oneof(fc.integer(), fc.string({ maxLength: 8 }), fc.constant(null)),
      method: fc.constantFrom(...MCP_METHODS),
      params: fc.option(fc.jsonValue({ maxDepth: 2 }), { nil: undefined }),
    })
    .map((o) => JSON.stringify(o)),
  fc
    .array(fc.record({ jsonrpc: fc.constant('2.0'), id: fc.integer(), method: fc.constantFrom(...MCP_METHODS) }), { maxLength: 4 })
    .map((a) => JSON.stringify(a)),
  fc.constant(
    '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"fuzz","version":"1"}}}',
  ),
  fc.string({ maxLength: 300 }),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.integer({ min: 1, max: 300_000 }).map((n) => `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"${'x'.repeat(n)}"}}`),
);
/** Header values a hostile client tries: protocol words, forged internal values, and bytes HTTP allows. */
const headerText = fc.oneof(
  fc.constantFrom(
    '',
    '2025-11-25',
    '2025-06-18',
    '2026-07-28',
    '2026-01-26',
    '1999-01-01',
    'application/json',
    'text/event-stream',
    'application/json, text/event-stream',
    '127.0.0.1:6379',
    '127.0.0.1:9901',
    'attempt',
    'search',
  ),
  fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_.:,;=/ '.split('')), maxLength: 80 }),
  fc.integer({ min: 1, max: 2000 }).map((n) => 'y'.repeat(n)),
);

/**
 * A request to the public listener. Where it uses one of the fuzzer's own
 * sessions (ids it may end or confuse) it says which in `ownSession`; ids of
 * other clients a fuzzer cannot know.
 */
export function hostileRequest(): fc.Arbitrary<HostileRequest> {
  const sessionId = fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 2 },
    { arbitrary: fc.constant('own'), weight: 5 },
    { arbitrary: fc.uuid(), weight: 1 },
    { arbitrary: headerText, weight: 1 },
    { arbitrary: fc.constantFrom('a,b', ' ', 'x'.repeat(400)), weight: 1 },
  );
  return fc
    .record({
      method: fc.constantFrom('POST', 'POST', 'POST', 'POST', 'POST', 'GET', 'DELETE', 'PUT', 'PATCH', 'OPTIONS', 'HEAD'),
      path: fc.constantFrom('/mcp', '/mcp', '/mcp', '/', '/typo', '/mcp/', '/mcp?x=1', '/MCP', `/${'p'.repeat(3000)}`, '/mcp/../admin'),
      session: sessionId,
      pick: fc.nat(),
      headers: fc.dictionary(
        fc.oneof(
          fc.constantFrom(
            'content-type',
            'accept',
            'mcp-protocol-version',
            'last-event-id',
            'x-mcp-pin-dst',
            'x-mcp-pin-upstream',
            'x-mcp-pin-role',
            'x-mcp-pin-client-session',
            'x-mcp-pin-searched',
            'x-mcp-pin-envoy-reply',
            'x-envoy-original-dst-host',
            'x-envoy-attempt-count',
            'x-forwarded-for',
          ),
          fc.string({ unit: fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz-'.split('')), minLength: 1, maxLength: 20 }).map((k) => `x-${k}`),
        ),
        headerText,
        { maxKeys: 12 },
      ),
      extraHeaders: fc.oneof(fc.constant(0), fc.constant(0), fc.integer({ min: 0, max: 110 })),
      // Most requests look like an MCP client's, with some of it wrong; the rest are anything.
      speaksMcp: fc.boolean(),
      body: fc.option(jsonRpc, { nil: undefined }),
    })
    .map((r) => {
      const headers: Record<string, string> = {
        ...(r.speaksMcp ? { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-11-25' } : {}),
        ...r.headers,
      };
      if (r.session !== undefined && r.session !== 'own') headers['mcp-session-id'] = r.session;
      for (let i = 0; i < r.extraHeaders; i++) headers[`x-pad-${i}`] = 'v';
      const body = r.method === 'GET' || r.method === 'HEAD' ? undefined : r.body;
      return { method: r.method, path: r.path, headers, body, ...(r.session === 'own' ? { ownSession: r.pick } : {}) };
    });
}
