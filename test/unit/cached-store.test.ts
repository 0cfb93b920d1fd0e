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
});
