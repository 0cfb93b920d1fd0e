import { expect } from 'chai';
import { StoreError } from '../../src/errors.js';
import { CachedStore } from '../../src/sessions/cached-store.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { TimedStore, type StoreOp } from '../../src/sessions/timed-store.js';

describe('TimedStore (mcp_pin_store_seconds)', () => {
  it('times each call that reaches the shared store, by op, failures included', async () => {
    const seen: StoreOp[] = [];
    const took: number[] = [];
    const inner = new MemoryStore({ sessionTtlMs: 60_000 });
    const t = new TimedStore(inner, (op, s) => {
      seen.push(op);
      took.push(s);
    });
    await t.create('s', { pod: '10.0.0.1:80', backendSessionId: 's', initBody: null });
    await t.lookup('s');
    await t.load('s');
    await t.replacePin('s', 1, '10.0.0.2:80', 'b');
    await t.tryLock('s', 'tok', 1000);
    await t.unlock('s', 'tok');
    await t.removeIfGeneration('s', 2);
    inner.lookup = () => Promise.reject(new StoreError('MCP_PIN_STORE_UNAVAILABLE', 'down'));
    await t.lookup('s').catch(() => {});
    expect(seen).to.deep.equal(['create', 'lookup', 'load', 'replace_pin', 'lock', 'unlock', 'remove', 'lookup']);
    // What is observed is the call's own duration, in seconds: a lookup that takes 30 ms is seen as about 0.03.
    inner.lookup = () => new Promise((r) => setTimeout(() => r(null), 30));
    await t.lookup('s');
    expect(took.at(-1)).to.be.within(0.025, 1);
  });

  it('under the pin cache: a hit is not timed, a miss is', async () => {
    const seen: StoreOp[] = [];
    const hits: boolean[] = [];
    const c = new CachedStore(new TimedStore(new MemoryStore({ sessionTtlMs: 60_000 }), (op) => seen.push(op)), {
      ttlMs: 60_000,
      onLookup: (hit) => hits.push(hit),
    });
    await c.create('s', { pod: '10.0.0.1:80', backendSessionId: 's', initBody: null });
    for (let i = 0; i < 5; i++) await c.lookup('s');
    expect(hits).to.deep.equal([false, true, true, true, true]);
    expect(seen).to.deep.equal(['create', 'lookup']);
  });
});
