/**
 * What a client request's exchange tells operators: each event once, at its
 * level, naming the session only by its tag (a session id is a bearer
 * credential: never written to a log), with the pod, the store operation and
 * the code that explain it.
 */
import { expect } from 'chai';
import { StoreError } from '../../src/errors.js';
import { Exchange, type ExchangeDeps } from '../../src/extproc/exchange.js';
import { RecentlyUnknown } from '../../src/extproc/recently-unknown.js';
import { sessionTag } from '../../src/log.js';
import { PinAllowlist } from '../../src/pin-allowlist.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import type { SessionStore } from '../../src/sessions/store.js';
import { capturedLog, LOG_LEVEL, type LogLine, newMetrics, requestBody, requestHeaders, responseHeaders } from './fakes.js';

const cfg = { pinHeader: 'x-mcp-pin-dst', maxInitBodyBytes: 1024, maxSessionIdLength: 64, lostSessionStatuses: [404] };
const INIT = JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-11-25' } });
const POST_JSON = { ':method': 'POST', ':path': '/mcp', 'content-type': 'application/json' };
const POD = '10.1.2.3:8080';
/** A session id long enough that it could not turn up in a log line by chance. */
const SID = 'session-7f3a9c2e41d84b6f';

function make(over: Partial<ExchangeDeps> = {}): { ex: () => Exchange; store: MemoryStore; lines: LogLine[] } {
  const { log, lines } = capturedLog();
  const store = new MemoryStore({ sessionTtlMs: 60_000 });
  const deps: ExchangeDeps = { store, cfg, log, metrics: newMetrics(), ...over };
  return { ex: () => new Exchange(deps), store, lines };
}

/** A store whose every call of `op` fails with `code` (the idiom of the other unit tests: the store with one method replaced). */
function failing(inner: MemoryStore, op: keyof SessionStore, code: ConstructorParameters<typeof StoreError>[0]): MemoryStore {
  return Object.assign(Object.create(inner) as MemoryStore, { [op]: async () => Promise.reject(new StoreError(code, `${String(op)} failed: test`)) });
}

const initialize = async (ex: Exchange, sid: string, attrs: Record<string, string> = { 'upstream.address': POD }): Promise<void> => {
  await ex.handle(requestHeaders(POST_JSON));
  await ex.handle(requestBody(INIT));
  await ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': sid }, attrs));
};

const noRawId = (lines: LogLine[]): void => {
  expect(JSON.stringify(lines), 'the raw session id is never logged').to.not.include(SID);
};

describe('Exchange: what it logs', () => {
  it('a recorded pin: info, with the tag, the pod and whether the initialize body was kept', async () => {
    const { ex, lines } = make();
    await initialize(ex(), SID);
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: LOG_LEVEL.info, msg: 'pin recorded', session: sessionTag(SID), pod: POD, initBodyKept: true });
    const big = ex();
    await big.handle(requestHeaders(POST_JSON));
    await big.handle(requestBody(JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { pad: 'x'.repeat(2000) } })));
    await big.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'big-session-01' }, { 'upstream.address': POD }));
    expect(lines[1]).to.include({ msg: 'pin recorded', initBodyKept: false });
    noRawId(lines);
  });

  it('an initialize it cannot pin: error, with what Envoy reported and whether the id was valid', async () => {
    const { ex, lines } = make();
    await initialize(ex(), SID, {});
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: LOG_LEVEL.error, validSessionId: true });
    expect(lines[0]!.msg).to.match(/^initialize not pinned: Envoy reported no usable upstream.address/);
    await initialize(ex(), SID, { 'upstream.address': 'not-an-address' });
    expect(lines[1]).to.include({ level: LOG_LEVEL.error, reported: 'not-an-address', validSessionId: true });
    await initialize(ex(), 'bad id with spaces', { 'upstream.address': POD });
    expect(lines[2]).to.include({ level: LOG_LEVEL.error, reported: POD, validSessionId: false });
    noRawId(lines);
  });

  it('a session id a pod handed out twice: error, with the tag and the pod', async () => {
    const { ex, lines } = make();
    await initialize(ex(), SID);
    await initialize(ex(), SID);
    expect(lines[1]).to.include({ level: LOG_LEVEL.error, session: sessionTag(SID), pod: POD });
    expect(lines[1]!.msg).to.match(/^initialize answered with a session id already pinned/);
    noRawId(lines);
  });

  it('a DELETE that ended the session: info, with the tag and the status; one it could not forget: warn, with the store error', async () => {
    const { ex, store, lines } = make();
    await initialize(ex(), SID);
    const del = ex();
    await del.handle(requestHeaders({ ':method': 'DELETE', ':path': '/mcp', 'mcp-session-id': SID }, true));
    await del.handle(responseHeaders({ ':status': '200' }));
    expect(lines[1]).to.include({ level: LOG_LEVEL.info, msg: 'session forgotten', session: sessionTag(SID), status: 200 });

    const broken = make({ store: failing(store, 'removeIfGeneration', 'MCP_PIN_STORE_TIMEOUT') });
    await initialize(broken.ex(), 'other-session-5c1d');
    const del2 = broken.ex();
    await del2.handle(requestHeaders({ ':method': 'DELETE', ':path': '/mcp', 'mcp-session-id': 'other-session-5c1d' }, true));
    await del2.handle(responseHeaders({ ':status': '200' }));
    expect(broken.lines.at(-1)).to.include({
      level: LOG_LEVEL.warn,
      msg: 'could not forget deleted session',
      session: sessionTag('other-session-5c1d'),
      err: 'removeIfGeneration failed: test',
    });
    noRawId(lines);
  });

  it('a session found on a pod after the store lost it: info when adopted, warn with the error when the store refused', async () => {
    const { ex, store, lines } = make();
    const search = ex();
    await search.handle(requestHeaders({ ':method': 'GET', ':path': '/mcp', 'mcp-session-id': SID }, true));
    await search.handle(responseHeaders({ ':status': '200', 'mcp-session-id': SID }, { 'upstream.address': POD }));
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({ level: LOG_LEVEL.info, msg: 'pin adopted from a pod that holds the session', session: sessionTag(SID), pod: POD });

    const broken = make({ store: failing(store, 'adopt', 'MCP_PIN_STORE_UNAVAILABLE') });
    const s2 = broken.ex();
    await s2.handle(requestHeaders({ ':method': 'GET', ':path': '/mcp', 'mcp-session-id': 'lost-session-88aa' }, true));
    await s2.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'lost-session-88aa' }, { 'upstream.address': POD }));
    expect(broken.lines).to.have.length(1);
    expect(broken.lines[0]).to.include({
      level: LOG_LEVEL.warn,
      msg: 'could not adopt session',
      session: sessionTag('lost-session-88aa'),
      err: 'adopt failed: test',
    });
    noRawId(lines);
  });

  it('a store that fails a lookup: error, with the operation and the code; an unreadable record: error, with the tag too', async () => {
    const inner = new MemoryStore({ sessionTtlMs: 60_000 });
    const down = make({ store: failing(inner, 'lookup', 'MCP_PIN_STORE_TIMEOUT') });
    await down.ex().handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': SID }, true));
    expect(down.lines).to.have.length(1);
    expect(down.lines[0]).to.include({
      level: LOG_LEVEL.error,
      msg: 'session store failed',
      op: 'lookup',
      code: 'MCP_PIN_STORE_TIMEOUT',
      err: 'lookup failed: test',
    });

    const corrupt = make({ store: failing(inner, 'lookup', 'MCP_PIN_STORE_CORRUPT') });
    await corrupt.ex().handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': SID }, true));
    expect(corrupt.lines).to.have.length(1);
    expect(corrupt.lines[0]).to.include({
      level: LOG_LEVEL.error,
      msg: 'session record unreadable: dropped; the session is searched for on the pods',
      op: 'lookup',
      code: 'MCP_PIN_STORE_CORRUPT',
      session: sessionTag(SID),
      err: 'lookup failed: test',
    });
    noRawId([...down.lines, ...corrupt.lines]);
  });

  it('a stored pin outside --pin-allow: error, with the tag and the pod it refused', async () => {
    const { ex, store, lines } = make({ allowlist: new PinAllowlist('10.0.0.0/8'), recentlyUnknown: new RecentlyUnknown(0) });
    await store.create(SID, { pod: '192.168.9.9:8080', backendSessionId: SID, initBody: null });
    await ex().handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': SID }, true));
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include({
      level: LOG_LEVEL.error,
      msg: 'stored pin outside --pin-allow: dropped, not routed',
      session: sessionTag(SID),
      pod: '192.168.9.9:8080',
    });
    noRawId(lines);
  });
});
