/**
 * The memory store's bound (--memory-store-max-sessions): past it a new
 * session is refused with a coded error, never made room for by evicting a
 * live one; and what the client of that initialize gets.
 */
import { expect } from 'chai';
import { eventually } from '../helpers/net.js';
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
    expect((err as StoreError).message, 'names the cap and the flag that sets it').to.equal('memory store holds 2 sessions (--memory-store-max-sessions)');
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

  it('sweeps only while full, at most once a second: an expired session makes room from the first sweep after it expired', async () => {
    let now = 0;
    const store = new MemoryStore({ sessionTtlMs: 5_500, maxEntries: 2, now: () => now });
    const create = async (id: string): Promise<string | undefined> =>
      store.create(id, session('10.0.0.1:1')).then(
        () => undefined,
        (e: unknown) => (e as StoreError).code,
      );
    await create('a');
    now = 500;
    await create('b');
    now = 5_000;
    expect(await create('c'), 'full, swept, nothing expired').to.equal('MCP_PIN_STORE_FULL');
    now = 5_999;
    expect(await create('c'), "'a' expired at 5,500, but the last sweep was 999 ms ago").to.equal('MCP_PIN_STORE_FULL');
    now = 6_000;
    expect(await create('c'), "swept: 'a' and 'b' (expiring now) are gone").to.equal(undefined);
    expect(store.size).to.equal(1);
    await store.close();

    // A create that does not find the store full does not sweep (nor use up the second).
    now = 0;
    const small = new MemoryStore({ sessionTtlMs: 300, maxEntries: 2, now: () => now });
    await small.create('a', session('10.0.0.1:1'));
    now = 500;
    await small.create('b', session('10.0.0.1:1'));
    now = 600;
    await small.create('c', session('10.0.0.1:1'));
    expect(await small.lookup('c')).to.not.equal(null);
    await small.close();
  });

  it('counts a session as gone at its expiry exactly, drops it when read then, and close forgets everything', async () => {
    let now = 0;
    const store = new MemoryStore({ sessionTtlMs: 1_000, now: () => now });
    await store.create('a', session('10.0.0.1:1'));
    await store.create('b', session('10.0.0.1:1'));
    now = 1_000;
    expect(await store.lookup('a')).to.equal(null);
    expect(store.size, 'an expired session read is dropped').to.equal(1);
    expect((await store.list({ limit: 10 })).sessions, 'nor listed').to.deep.equal([]);
    await store.create('c', session('10.0.0.1:1'));
    await store.tryLock('c', 't', 60_000);
    await store.rememberUnknown('u', 60_000);
    await store.close();
    expect(store.size).to.equal(0);
    expect(await store.tryLock('c', 'other', 60_000), 'locks forgotten').to.equal(true);
    expect(await store.isRememberedUnknown('u'), 'remembered ids forgotten').to.equal(false);
  });

  it('drops expired sessions on its sweep timer, not full and unread, and keeps the live ones', async () => {
    let now = 1_000;
    const store = new MemoryStore({ sessionTtlMs: 1_000, now: () => now, sweepEveryMs: 10 });
    try {
      await store.create('old', { pod: '10.0.0.1:1', backendSessionId: 'old', initBody: null });
      now += 600;
      await store.create('young', { pod: '10.0.0.1:1', backendSessionId: 'young', initBody: null });
      now += 500;
      await eventually(async () => store.size === 1, 'the expired one swept');
      expect(await store.lookup('young')).to.not.equal(null);
    } finally {
      await store.close();
    }
  });

  it('drops expired recovery locks on its sweep timer (one expiring that moment included) and keeps the live ones held', async () => {
    let now = 1_000;
    const store = new MemoryStore({ sessionTtlMs: 1_000, now: () => now, sweepEveryMs: 10 });
    try {
      await store.create('old', { pod: '10.0.0.1:1', backendSessionId: 'old', initBody: null });
      expect(await store.tryLock('stale', 'a', 1_500)).to.equal(true);
      expect(await store.tryLock('live', 'b', 60_000)).to.equal(true);
      expect(store.lockCount).to.equal(2);
      now += 1_500;
      // One sweep drops the expired session and the expired lock together.
      await eventually(async () => store.size === 0, 'the expired session swept');
      expect(store.lockCount, 'the expired lock swept with it').to.equal(1);
      expect(await store.tryLock('live', 'c', 60_000), 'the live lock still held').to.equal(false);
    } finally {
      await store.close();
    }
  });

  it('lists in id order, a page ending at the last id with no cursor', async () => {
    const store = new MemoryStore({ sessionTtlMs: 60_000 });
    for (const id of ['d', 'b', 'a', 'c']) await store.create(id, session('10.0.0.1:1'));
    const first = await store.list({ limit: 2 });
    expect(first.sessions.map((s) => s.clientSessionId)).to.deep.equal(['a', 'b']);
    expect(first.cursor).to.equal('b');
    const last = await store.list({ limit: 2, cursor: 'b' });
    expect(last.sessions.map((s) => s.clientSessionId)).to.deep.equal(['c', 'd']);
    expect(last.cursor, 'the page ended at the last id').to.equal(null);
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
