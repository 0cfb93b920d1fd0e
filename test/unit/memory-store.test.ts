/**
 * The memory store's bound (--memory-store-max-sessions): past it a new
 * session is refused with a coded error, never made room for by evicting a
 * live one; and what the client of that initialize gets.
 */
import { expect } from 'chai';
import { StoreError } from '../../src/errors.js';
import { Exchange } from '../../src/extproc/exchange.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { newMetrics, requestBody, requestHeaders, responseHeaders, silentLog } from './fakes.js';

const session = (pod: string) => ({ pod, backendSessionId: 'x', initBody: null });

describe('memory store: bounded', () => {
  it('refuses a new session past its cap with MCP_PIN_STORE_FULL, keeping every live one', async () => {
    let now = 1_000;
    const store = new MemoryStore({ sessionTtlMs: 10_000, maxEntries: 2, now: () => now });
    await store.create('a', session('10.0.0.1:1'));
    await store.create('b', session('10.0.0.1:1'));
    const err = await store.create('c', session('10.0.0.1:1')).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(StoreError);
    expect((err as StoreError).code).to.equal('MCP_PIN_STORE_FULL');
    expect(await store.lookup('a')).to.not.equal(null);
    expect(await store.lookup('b')).to.not.equal(null);
    expect(await store.lookup('c')).to.equal(null);
    // An id it holds is refused (never overwritten), full or not.
    expect(await store.create('a', session('10.0.0.2:2'))).to.equal(false);
    expect(await store.lookup('a')).to.deep.include({ pod: '10.0.0.1:1' });
    // Expired sessions make room (swept when the cap is reached).
    now += 20_000;
    await store.create('c', session('10.0.0.3:3'));
    expect(await store.lookup('c')).to.deep.include({ pod: '10.0.0.3:3' });
    expect(store.size).to.equal(1);
    await store.close();
  });

  it('answers the initialize that finds it full with 503, JSON-RPC -32603 and Retry-After', async () => {
    const store = new MemoryStore({ sessionTtlMs: 10_000, maxEntries: 1 });
    await store.create('taken', session('10.0.0.1:1'));
    const ex = new Exchange({
      store,
      cfg: { pinHeader: 'x-mcp-pin-dst', maxInitBodyBytes: 1024, maxSessionIdLength: 64, lostSessionStatuses: [404] },
      log: silentLog,
      metrics: newMetrics(),
    });
    await ex.handle(requestHeaders({ ':method': 'POST', ':path': '/mcp', 'content-type': 'application/json' }));
    await ex.handle(requestBody('{"jsonrpc":"2.0","id":0,"method":"initialize"}'));
    const [r] = await ex.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'new' }, { 'upstream.address': '10.1.2.3:8080' }));
    const imm = r!.immediate_response!;
    expect(imm.status.code).to.equal(503);
    expect(JSON.parse(imm.body!.toString()).error).to.deep.include({ code: -32603 });
    expect(JSON.parse(imm.body!.toString()).error.message).to.match(/store is full/);
    expect(imm.headers!.set_headers!.map((h) => h.header.key)).to.include('retry-after');
    await store.close();
  });
});
