import { expect } from 'chai';
import { CachedStore } from '../../src/sessions/cached-store.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';

function counting(inner: MemoryStore): { store: MemoryStore; lookups: () => number } {
  let n = 0;
  const orig = inner.lookup.bind(inner);
  inner.lookup = async (sid) => {
    n++;
    return orig(sid);
  };
  return { store: inner, lookups: () => n };
}

describe('CachedStore', () => {
  let now = 1_000_000;
  const clock = () => now;

  it('answers repeated lookups from the cache until its TTL, then asks the store again', async () => {
    const { store, lookups } = counting(new MemoryStore({ sessionTtlMs: 3_600_000 }));
    const c = new CachedStore(store, { ttlMs: 1000, now: clock });
    await c.create('s', { pod: '10.0.0.1:80', backendSessionId: 's', initBody: null });
    for (let i = 0; i < 5; i++) expect((await c.lookup('s'))!.pod).to.equal('10.0.0.1:80');
    expect(lookups()).to.equal(1);
    now += 1001;
    await c.lookup('s');
    expect(lookups()).to.equal(2);
  });

  it('serves a stale pin when another replica changed the shared store (recovery then corrects it), and never caches a miss', async () => {
    const shared = new MemoryStore({ sessionTtlMs: 3_600_000 });
    const a = new CachedStore(shared, { ttlMs: 1000, now: clock });
    const b = new CachedStore(shared, { ttlMs: 1000, now: clock });
    await a.create('s', { pod: '10.0.0.1:80', backendSessionId: 's', initBody: null });
    expect((await b.lookup('s'))!.generation).to.equal(1);
    expect(await a.replacePin('s', 1, '10.0.0.2:80', 'b2')).to.deep.include({ generation: 2 });
    expect((await a.lookup('s'))!.pod, 'the writer sees its change at once').to.equal('10.0.0.2:80');
    expect((await b.lookup('s'))!.pod, 'the other replica is stale within its TTL').to.equal('10.0.0.1:80');
    expect((await b.load('s'))!.generation, 'recovery reads the store, not the cache').to.equal(2);
    expect(await b.lookup('nope')).to.equal(null);
    await shared.create('nope', { pod: '10.0.0.3:80', backendSessionId: 'nope', initBody: null });
    expect((await b.lookup('nope'))!.pod).to.equal('10.0.0.3:80');
  });

  it('invalidates on every change it makes', async () => {
    const c = new CachedStore(new MemoryStore({ sessionTtlMs: 3_600_000 }), { ttlMs: 60_000, now: clock });
    await c.create('s', { pod: '10.0.0.1:80', backendSessionId: 's', initBody: null });
    await c.lookup('s');
    await c.remove('s');
    expect(await c.lookup('s')).to.equal(null);
    await c.create('s', { pod: '10.0.0.1:80', backendSessionId: 's', initBody: null });
    await c.lookup('s');
    await c.removeIfGeneration('s', 1);
    expect(await c.lookup('s')).to.equal(null);
    expect(await c.adopt('s', '10.0.0.4:80')).to.equal(true);
    expect((await c.lookup('s'))!.pod).to.equal('10.0.0.4:80');
  });

  it('keeps the shared sliding TTL alive with a background touch', async () => {
    const { store, lookups } = counting(new MemoryStore({ sessionTtlMs: 3_600_000 }));
    const c = new CachedStore(store, { ttlMs: 120_000, touchEveryMs: 30_000, now: clock });
    await c.create('s', { pod: '10.0.0.1:80', backendSessionId: 's', initBody: null });
    await c.lookup('s');
    now += 10_000;
    await c.lookup('s');
    expect(lookups(), 'no touch yet').to.equal(1);
    now += 25_000;
    await c.lookup('s');
    expect(lookups(), 'touched').to.equal(2);
  });

  it('holds at most maxEntries pins, dropping the oldest', async () => {
    const c = new CachedStore(new MemoryStore({ sessionTtlMs: 3_600_000 }), { ttlMs: 60_000, maxEntries: 3, now: clock });
    for (const id of ['a', 'b', 'c', 'd']) {
      await c.create(id, { pod: '10.0.0.1:80', backendSessionId: id, initBody: null });
      await c.lookup(id);
    }
    expect(c.size).to.equal(3);
  });

  it('drops a cached pin another replica made stale when this replica creates, adopts or fails a replacePin on that id', async () => {
    const shared = new MemoryStore({ sessionTtlMs: 3_600_000 });
    const a = new CachedStore(shared, { ttlMs: 60_000, now: clock });
    const b = new CachedStore(shared, { ttlMs: 60_000, now: clock });
    const cacheOnA = async (pod: string): Promise<void> => {
      await a.remove('s');
      await shared.create('s', { pod, backendSessionId: 's', initBody: null });
      expect((await a.lookup('s'))!.pod).to.equal(pod);
    };
    await cacheOnA('10.0.0.1:80');
    await b.remove('s');
    expect(await a.create('s', { pod: '10.0.0.2:80', backendSessionId: 's', initBody: null })).to.equal(true);
    expect((await a.lookup('s'))!.pod, 'after create').to.equal('10.0.0.2:80');
    await b.remove('s');
    expect(await a.adopt('s', '10.0.0.3:80')).to.equal(true);
    expect((await a.lookup('s'))!.pod, 'after adopt').to.equal('10.0.0.3:80');
    await cacheOnA('10.0.0.4:80');
    expect(await b.replacePin('s', 1, '10.0.0.5:80', 'b5')).to.not.equal(null);
    expect(await a.replacePin('s', 1, '10.0.0.6:80', 'b6'), 'a lost race').to.equal(null);
    expect((await a.lookup('s'))!.pod, 'after a replacePin that lost').to.equal('10.0.0.5:80');
  });

  it('asks the store again at its TTL exactly, forgets a pin the store no longer has, and touches at touchEveryMs exactly', async () => {
    const { store, lookups } = counting(new MemoryStore({ sessionTtlMs: 3_600_000 }));
    const c = new CachedStore(store, { ttlMs: 1000, touchEveryMs: 500, now: clock });
    await c.create('s', { pod: '10.0.0.1:80', backendSessionId: 's', initBody: null });
    await c.lookup('s');
    now += 499;
    await c.lookup('s');
    expect(lookups(), 'before touchEveryMs').to.equal(1);
    now += 1;
    await c.lookup('s');
    expect(lookups(), 'touched at touchEveryMs').to.equal(2);
    now += 500;
    await c.lookup('s');
    expect(lookups(), 'the TTL ran out: asked, not served').to.equal(3);
    await store.remove('s');
    now += 1000;
    expect(await c.lookup('s')).to.equal(null);
    expect(c.size, 'a pin the store no longer has is not kept').to.equal(0);
  });

  it('takes what a background touch read: a new pin, or no pin when the store lost it', async () => {
    const shared = new MemoryStore({ sessionTtlMs: 3_600_000 });
    const c = new CachedStore(shared, { ttlMs: 60_000, touchEveryMs: 1000, now: clock });
    await c.create('s', { pod: '10.0.0.1:80', backendSessionId: 's', initBody: null });
    await c.lookup('s');
    await shared.replacePin('s', 1, '10.0.0.2:80', 'b2');
    now += 1000;
    expect((await c.lookup('s'))!.pod, 'served from the cache while the touch runs').to.equal('10.0.0.1:80');
    await new Promise((r) => setImmediate(r));
    expect((await c.lookup('s'))!.pod, 'the touch read the new pin').to.equal('10.0.0.2:80');
    await shared.remove('s');
    now += 1000;
    await c.lookup('s');
    await new Promise((r) => setImmediate(r));
    expect(c.size, 'the touch found no record').to.equal(0);
    expect(await c.lookup('s')).to.equal(null);
  });

  it('refreshes a pin in place of its old entry (evicting nothing), as the newest, and close empties it', async () => {
    const { store, lookups } = counting(new MemoryStore({ sessionTtlMs: 3_600_000 }));
    const c = new CachedStore(store, { ttlMs: 60_000, touchEveryMs: 1000, maxEntries: 2, now: clock });
    for (const id of ['a', 'b']) {
      await c.create(id, { pod: '10.0.0.1:80', backendSessionId: id, initBody: null });
      await c.lookup(id);
    }
    now += 1000;
    await c.lookup('b');
    await new Promise((r) => setImmediate(r));
    expect(c.size, "b's refresh took b's place").to.equal(2);
    await c.lookup('a');
    await new Promise((r) => setImmediate(r));
    await c.create('c', { pod: '10.0.0.1:80', backendSessionId: 'c', initBody: null });
    await c.lookup('c');
    const asked = lookups();
    await c.lookup('a');
    expect(lookups(), "'a' was refreshed last: still cached").to.equal(asked);
    await c.lookup('b');
    expect(lookups(), "'b' was the oldest: evicted").to.equal(asked + 1);
    await c.close();
    expect(c.size, 'close empties the cache').to.equal(0);
  });
});
