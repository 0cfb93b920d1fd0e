/**
 * One contract, two stores: MemoryStore and RedisStore (against a
 * redis-server of the test's own) must behave the same.
 */
import { spawn } from 'node:child_process';
import { expect } from 'chai';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { StoreError } from '../../src/errors.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { RedisStore } from '../../src/sessions/redis-store.js';
import { CachedStore } from '../../src/sessions/cached-store.js';
import { TimedStore } from '../../src/sessions/timed-store.js';
import { createStore } from '../../src/sessions/index.js';
import type { StoreOp } from '../../src/sessions/timed-store.js';
import type { SessionInspector, SessionInfo, SessionStore } from '../../src/sessions/store.js';
import { eventually, freePort } from '../helpers/net.js';
import { startRedis, startRedisCluster, startRedisSentinel, type ProcsHandle, type RedisHandle } from '../helpers/redis.js';

/** A clock the test moves by hand: TTLs are checked without waiting for them. */
class FakeClock {
  nowMs = 1_700_000_000_000;
  readonly now = (): number => this.nowMs;
  advance(ms: number): void {
    this.nowMs += ms;
  }
}

/**
 * The behaviour both stores share. TTL behaviour is part of it where the
 * test owns the clock (the memory store); Redis expires keys by its own
 * clock, so RedisStore's TTLs are checked below by waiting on conditions.
 */
function contract(name: string, make: (ttlMs: number) => Promise<SessionStore>, clock?: FakeClock): void {
  describe(`SessionStore contract: ${name}`, () => {
    let store: SessionStore;
    const made: SessionStore[] = [];
    const open = async (ttlMs = 60_000): Promise<SessionStore> => {
      const s = await make(ttlMs);
      made.push(s);
      return s;
    };
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await Promise.all(made.splice(0).map((s) => s.close()));
    });

    it('knows nothing of an unknown id', async () => {
      expect(await store.lookup('nope')).to.equal(null);
      expect(await store.load('nope')).to.equal(null);
    });

    it('records a session at generation 1 and returns its pin', async () => {
      await store.create('c1', { pod: '10.0.0.1:8080', backendSessionId: 'c1', initBody: Buffer.from('{"method":"initialize"}') });
      expect(await store.lookup('c1')).to.deep.equal({ pod: '10.0.0.1:8080', backendSessionId: 'c1', generation: 1 });
    });

    it('keeps the initialize body byte for byte, and null when none was kept', async () => {
      const bytes = Buffer.from([0x7b, 0x00, 0xff, 0xfe, 0x22, 0xc3, 0x28, 0x7d]);
      await store.create('bin', { pod: '10.0.0.1:1', backendSessionId: 'bin', initBody: bytes });
      const rec = await store.load('bin');
      expect(rec!.initBody!.equals(bytes)).to.equal(true);
      expect(rec!.createdAtMs).to.be.greaterThan(0);
      await store.create('none', { pod: '10.0.0.1:1', backendSessionId: 'none', initBody: null });
      expect((await store.load('none'))!.initBody).to.equal(null);
    });

    it('keeps the path the session was initialized on (where recovery pings), and null when none was given', async () => {
      await store.create('p', { pod: '10.0.0.1:1', backendSessionId: 'p', initBody: Buffer.from('{}'), initPath: '/mcp?tenant=a' });
      expect((await store.load('p'))!.initPath).to.equal('/mcp?tenant=a');
      await store.create('p2', { pod: '10.0.0.1:1', backendSessionId: 'p2', initBody: null });
      expect((await store.load('p2'))!.initPath).to.equal(null);
      await store.adopt('adopted', '10.0.0.1:1');
      expect((await store.load('adopted'))!.initPath).to.equal(null);
    });

    it('replaces a pin only at the expected generation', async () => {
      await store.create('g', { pod: '10.0.0.1:1', backendSessionId: 'g', initBody: null });
      expect(await store.replacePin('g', 1, '10.0.0.2:2', 'b2')).to.deep.equal({ pod: '10.0.0.2:2', backendSessionId: 'b2', generation: 2 });
      expect(await store.replacePin('g', 1, '10.0.0.3:3', 'b3'), 'stale generation').to.equal(null);
      expect(await store.lookup('g')).to.deep.equal({ pod: '10.0.0.2:2', backendSessionId: 'b2', generation: 2 });
      expect(await store.replacePin('missing', 1, '10.0.0.3:3', 'b3')).to.equal(null);
    });

    it('never lets a new session overwrite another: create of a taken id is refused and changes nothing', async () => {
      expect(await store.create('r', { pod: '10.0.0.1:1', backendSessionId: 'r', initBody: Buffer.from('{"victim":1}'), initPath: '/mcp' })).to.equal(true);
      await store.replacePin('r', 1, '10.0.0.2:2', 'x');
      expect(await store.create('r', { pod: '10.0.0.9:9', backendSessionId: 'r', initBody: Buffer.from('{"attacker":1}'), initPath: '/evil' })).to.equal(false);
      expect(await store.lookup('r')).to.deep.equal({ pod: '10.0.0.2:2', backendSessionId: 'x', generation: 2 });
      const rec = await store.load('r');
      expect(rec!.initBody!.toString()).to.equal('{"victim":1}');
      expect(rec!.initPath).to.equal('/mcp');
      // An adopted record is a session too.
      expect(await store.adopt('ad', '10.0.0.1:1')).to.equal(true);
      expect(await store.create('ad', { pod: '10.0.0.9:9', backendSessionId: 'ad', initBody: null })).to.equal(false);
      expect(await store.lookup('ad')).to.deep.equal({ pod: '10.0.0.1:1', backendSessionId: 'ad', generation: 1 });
      // Once removed (DELETE), the id is free again.
      await store.remove('r');
      expect(await store.create('r', { pod: '10.0.0.9:9', backendSessionId: 'r', initBody: null })).to.equal(true);
      expect(await store.lookup('r')).to.deep.equal({ pod: '10.0.0.9:9', backendSessionId: 'r', generation: 1 });
    });

    it("keeps a session's state (issue 29) with the record, across a new pin, under concurrent changes, and never makes a record for it", async () => {
      await store.create('st', { pod: '10.0.0.1:1', backendSessionId: 'st', initBody: null });
      expect((await store.load('st'))!.state).to.deep.equal({ level: null, subscriptions: [] });
      expect(await store.changeState('st', { op: 'subscribe', uri: 'a://1' })).to.equal('kept');
      expect(await store.changeState('st', { op: 'subscribe', uri: 'a://1' })).to.equal('unchanged');
      expect(await store.changeState('st', { op: 'setLevel', level: 'error' })).to.equal('kept');
      await store.replacePin('st', 1, '10.0.0.2:2', 'st2');
      expect((await store.load('st'))!.state, 'a recovery keeps it').to.deep.equal({ level: 'error', subscriptions: ['a://1'] });
      // Many changes at once (a client's concurrent requests, or two replicas): none is lost.
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.changeState('st', { op: 'subscribe', uri: `c://${i}` })));
      expect((await store.load('st'))!.state.subscriptions).to.have.length(21);
      await Promise.all(Array.from({ length: 20 }, (_, i) => store.changeState('st', { op: 'unsubscribe', uri: `c://${i}` })));
      expect((await store.load('st'))!.state.subscriptions).to.deep.equal(['a://1']);
      expect(await store.changeState('nobody', { op: 'setLevel', level: 'info' })).to.equal('gone');
      expect(await store.load('nobody')).to.equal(null);
      // Ends with the session.
      await store.remove('st');
      expect(await store.changeState('st', { op: 'subscribe', uri: 'a://2' })).to.equal('gone');
      await store.create('st', { pod: '10.0.0.1:1', backendSessionId: 'st', initBody: null });
      expect((await store.load('st'))!.state, 'a new session under the id starts empty').to.deep.equal({ level: null, subscriptions: [] });
    });

    it("bounds a session's state by the one rule (session-state.ts): 128 subscriptions, 64 KiB of URIs", async () => {
      await store.create('sb', { pod: '10.0.0.1:1', backendSessionId: 'sb', initBody: null });
      for (let i = 0; i < 128; i++) expect(await store.changeState('sb', { op: 'subscribe', uri: `r://${i}` })).to.equal('kept');
      expect(await store.changeState('sb', { op: 'subscribe', uri: 'r://more' })).to.equal('over_limit');
      for (let i = 0; i < 128; i++) await store.changeState('sb', { op: 'unsubscribe', uri: `r://${i}` });
      let kept = 0;
      while ((await store.changeState('sb', { op: 'subscribe', uri: `r://${kept}/${'x'.repeat(2000)}` })) === 'kept') kept++;
      expect(kept, '2 KB URIs up to 64 KiB').to.equal(32);
      expect((await store.load('sb'))!.state.subscriptions).to.have.length(32);
    });

    it('removes, and removes-if-generation only at that generation', async () => {
      await store.create('d', { pod: '10.0.0.1:1', backendSessionId: 'd', initBody: null });
      await store.remove('d');
      expect(await store.lookup('d')).to.equal(null);
      await store.create('e', { pod: '10.0.0.1:1', backendSessionId: 'e', initBody: null });
      await store.replacePin('e', 1, '10.0.0.2:2', 'e2');
      expect(await store.removeIfGeneration('e', 1)).to.equal(false);
      expect(await store.lookup('e')).to.not.equal(null);
      expect(await store.removeIfGeneration('e', 2)).to.equal(true);
      expect(await store.lookup('e')).to.equal(null);
    });

    it('gives the recovery lock to one token at a time, and frees it by token', async () => {
      expect(await store.tryLock('l', 'a', 30_000)).to.equal(true);
      expect(await store.tryLock('l', 'b', 30_000)).to.equal(false);
      await store.unlock('l', 'b');
      expect(await store.tryLock('l', 'b', 30_000), 'wrong token did not unlock').to.equal(false);
      await store.unlock('l', 'a');
      expect(await store.tryLock('l', 'b', 30_000)).to.equal(true);
    });

    if (clock) {
      it('expires a session after its TTL, and every lookup slides it (fake clock)', async () => {
        const s = await open(400);
        await s.create('t', { pod: '10.0.0.1:1', backendSessionId: 't', initBody: null });
        clock.advance(250);
        expect(await s.lookup('t'), 'still alive at 250 ms').to.not.equal(null);
        clock.advance(250);
        expect(await s.lookup('t'), 'alive at 500 ms because the lookup slid it').to.not.equal(null);
        clock.advance(399);
        expect(await s.load('t'), 'alive 399 ms after the last lookup').to.not.equal(null);
        clock.advance(1);
        expect(await s.lookup('t'), 'gone after a full idle TTL').to.equal(null);
      });

      it('frees a lock when it expires (fake clock)', async () => {
        expect(await store.tryLock('l', 'a', 200)).to.equal(true);
        clock.advance(199);
        expect(await store.tryLock('l', 'c', 200), 'held until it expires').to.equal(false);
        clock.advance(1);
        expect(await store.tryLock('l', 'c', 200), 'expired lock is free').to.equal(true);
      });
    }

    it('adopts an unknown id once, with no init body, and never over an existing record', async () => {
      expect(await store.adopt('a1', '10.0.0.4:80')).to.equal(true);
      expect(await store.lookup('a1')).to.deep.equal({ pod: '10.0.0.4:80', backendSessionId: 'a1', generation: 1 });
      expect((await store.load('a1'))!.initBody).to.equal(null);
      expect(await store.adopt('a1', '10.0.0.5:80')).to.equal(false);
      expect((await store.lookup('a1'))!.pod).to.equal('10.0.0.4:80');
    });

    it('remembers an id no pod held, for its time, apart from any session record', async () => {
      expect(await store.isRememberedUnknown('nobody')).to.equal(false);
      await store.rememberUnknown('nobody', 60_000);
      expect(await store.isRememberedUnknown('nobody')).to.equal(true);
      expect(await store.lookup('nobody'), 'no session made of it').to.equal(null);
      expect(await store.isRememberedUnknown('somebody-else')).to.equal(false);
      await store.rememberUnknown('brief', 30);
      await eventually(
        async () => {
          clock?.advance(50);
          return !(await store.isRememberedUnknown('brief'));
        },
        'forgotten after its time',
        2000,
        20,
      );
    });

    it('treats odd ids as plain data (braces, colons, spaces, long)', async () => {
      const ids = ['a}b{c', '{x}', 'x:lock', 'with space', '*', 'é-ünï', 'k'.repeat(1000)];
      // Backend ids are what a pod issued: visible ASCII (mcp-pin stores no other, and refuses a record with one).
      for (const [i, id] of ids.entries()) await store.create(id, { pod: `10.0.0.${i + 1}:1`, backendSessionId: `b-${i}`, initBody: null });
      for (const [i, id] of ids.entries()) expect((await store.lookup(id))!.pod).to.equal(`10.0.0.${i + 1}:1`);
      expect(await store.lookup('x')).to.equal(null);
    });
  });
}

/**
 * What an operator reads (mcp-pin sessions get/list): the same on every store.
 * A page may hold more than `limit` on Redis (the rest of one SCAN batch), so
 * the paging checks are: every session exactly once, none of another pod, a
 * page that is not the last holds at least `limit`.
 */
function inspection(name: string, make: () => Promise<SessionStore & SessionInspector>): void {
  describe(`SessionInspector contract: ${name}`, () => {
    let store: SessionStore & SessionInspector;
    beforeEach(async () => {
      store = await make();
    });
    afterEach(async () => store.close());

    const allPages = async (limit: number, pod?: string): Promise<{ ids: string[]; pages: SessionInfo[][] }> => {
      const pages: SessionInfo[][] = [];
      let cursor: string | undefined;
      for (let i = 0; i < 1000; i++) {
        const page = await store.list({ limit, ...(pod !== undefined ? { pod } : {}), ...(cursor !== undefined ? { cursor } : {}) });
        pages.push(page.sessions);
        if (page.cursor === null) break;
        expect(page.sessions.length, 'a page that is not the last').to.be.at.least(limit);
        cursor = page.cursor;
      }
      return { ids: pages.flat().map((s) => s.clientSessionId), pages };
    };

    it('inspects a session: its pin, times, TTL left and whether it can be recovered; null for an unknown or lock-only id', async () => {
      await store.create('kept', { pod: '10.0.0.1:8080', backendSessionId: 'b-kept', initBody: Buffer.from('{"method":"initialize"}') });
      await store.create('bare', { pod: '10.0.0.2:8080', backendSessionId: 'b-bare', initBody: null });
      await store.tryLock('only-a-lock', 'tok', 10_000);
      const kept = (await store.inspect('kept'))!;
      expect(kept).to.include({ clientSessionId: 'kept', pod: '10.0.0.1:8080', backendSessionId: 'b-kept', generation: 1, recoverable: true });
      expect(kept.createdAtMs, 'created').to.be.greaterThan(0);
      expect(kept.lastSeenAtMs, 'last seen').to.be.at.least(kept.createdAtMs);
      expect(kept.ttlMs, 'TTL left').to.be.greaterThan(0).and.at.most(60_000);
      expect((await store.inspect('bare'))!).to.include({ backendSessionId: 'b-bare', recoverable: false });
      expect(await store.inspect('nope')).to.equal(null);
      expect(await store.inspect('only-a-lock')).to.equal(null);
      await store.replacePin('kept', 1, '10.0.0.3:8080', 'b-new');
      expect(await store.inspect('kept')).to.include({ pod: '10.0.0.3:8080', backendSessionId: 'b-new', generation: 2 });
    });

    it('lists every session exactly once over pages, only those of the pod asked for, and no lock', async () => {
      const onA: string[] = [];
      for (let i = 0; i < 250; i++) {
        const id = `s${String(i).padStart(3, '0')}`;
        const pod = i % 5 < 3 ? '10.0.0.1:8080' : '10.0.0.2:8080';
        if (pod === '10.0.0.1:8080') onA.push(id);
        await store.create(id, { pod, backendSessionId: `b${i}`, initBody: i % 2 ? null : Buffer.from('{}') });
      }
      await store.tryLock('s000', 'tok', 10_000);
      await store.tryLock('lock-only', 'tok', 10_000);
      const a = await allPages(10, '10.0.0.1:8080');
      expect(a.ids.length, 'no session twice').to.equal(new Set(a.ids).size);
      expect([...a.ids].sort()).to.deep.equal(onA);
      expect(
        a.pages.flat().every((s) => s.pod === '10.0.0.1:8080' && s.generation === 1 && s.backendSessionId === `b${Number(s.clientSessionId.slice(1))}`),
      ).to.equal(true);
      expect(a.pages.flat().find((s) => s.clientSessionId === 's001')!.recoverable).to.equal(false);
      expect(a.pages.flat().find((s) => s.clientSessionId === 's000')!.recoverable).to.equal(true);
      // A page stops once it holds its limit: 250 sessions do not come back in one page of 7.
      const first = await store.list({ limit: 7 });
      expect(first.cursor, 'more to come').to.not.equal(null);
      expect(first.sessions.length).to.be.below(250);
      const all = await allPages(7);
      expect(all.ids.length).to.equal(250);
      expect(new Set(all.ids).size).to.equal(250);
      expect((await store.list({ limit: 1000 })).sessions.length, 'one page with room for all').to.equal(250);
      expect((await allPages(10, '10.0.0.9:1')).ids).to.deep.equal([]);
    });
  });
}

/**
 * Garbage in a store others can write to (Redis: by hand, a restore of old or
 * foreign data, another program on the same keys). The memory store lives in
 * mcp-pin's own process: nobody else can write to it.
 */
function corruption(name: string, make: () => Promise<RedisStore>): void {
  describe(`corrupt entries: ${name}`, () => {
    let store: RedisStore;
    beforeEach(async () => (store = await make()));
    afterEach(async () => store.close());
    // biome-ignore lint/complexity/useLiteralKeys: the key prefix is private; the test writes raw keys under it
    const key = (sid: string): string => `${store['prefix'] as string}{${sid}}`;
    const good = { pod: '10.0.0.1:8080', bsid: 'b1', gen: '1', init: '{}', path: '/mcp', created: '1', seen: '1' };
    const cases: [string, (sid: string) => Promise<unknown>][] = [
      ['a key of another type (a string)', (sid) => store.redis.set(key(sid), 'garbage')],
      ['a key of another type (a list)', (sid) => store.redis.rpush(key(sid), 'a', 'b')],
      [
        'a hash without its backend id',
        (sid) => store.redis.hset(key(sid), { ...good, bsid: undefined as never }).then(() => store.redis.hdel(key(sid), 'bsid')),
      ],
      ['a hash without its pod', (sid) => store.redis.hset(key(sid), good).then(() => store.redis.hdel(key(sid), 'pod'))],
      ['an empty backend id', (sid) => store.redis.hset(key(sid), { ...good, bsid: '' })],
      ['a backend id with CR LF', (sid) => store.redis.hset(key(sid), { ...good, bsid: 'b1\r\nx-evil: 1' })],
      ['a pod that is not ip:port', (sid) => store.redis.hset(key(sid), { ...good, pod: 'redis:6379' })],
      ['a generation that is not a number', (sid) => store.redis.hset(key(sid), { ...good, gen: 'one' })],
      ['an initialize path that is not a path', (sid) => store.redis.hset(key(sid), { ...good, path: 'http://elsewhere/\r\n' })],
      ['a hash of unrelated fields', (sid) => store.redis.hset(key(sid), { foo: 'bar' })],
    ];
    for (const [what, write] of cases) {
      it(`${what}: lookup and load refuse it with MCP_PIN_STORE_CORRUPT (never a raw error), drop it, and the id works again`, async () => {
        for (const read of ['lookup', 'load'] as const) {
          const sid = `${read}-${what.replace(/\W+/g, '-')}`;
          await write(sid);
          const err = await store[read](sid).then(
            () => null,
            (e: unknown) => e,
          );
          // The path case only matters where the path is read (load).
          if (read === 'lookup' && what.startsWith('an initialize path')) {
            expect(err, what).to.equal(null);
            continue;
          }
          expect(err, `${read}: ${what}`).to.be.instanceOf(StoreError);
          expect((err as StoreError).code).to.equal('MCP_PIN_STORE_CORRUPT');
          expect((err as StoreError).message).to.match(/dropped/);
          if (what.startsWith('a key of another type'))
            expect((err as StoreError).message, 'says what it found').to.equal(`Redis ${read}: the key is not a session record (wrong type): dropped`);
          expect(await store.redis.exists(key(sid)), 'dropped').to.equal(0);
          expect(await store.lookup(sid)).to.equal(null);
          expect(await store.create(sid, { pod: '10.0.0.2:8080', backendSessionId: sid, initBody: null })).to.equal(true);
          expect(await store.lookup(sid)).to.deep.equal({ pod: '10.0.0.2:8080', backendSessionId: sid, generation: 1 });
        }
      });
    }

    it('a lock it does not recognise (no expiry, or longer than its own) blocks a recovery no longer than its own would', async () => {
      for (const [what, write] of [
        ['without expiry', (k: string) => store.redis.set(k, 'not-ours')],
        ['for a day', (k: string) => store.redis.set(k, 'not-ours', 'PX', 86_400_000)],
        ['of another type', (k: string) => store.redis.rpush(k, 'x')],
      ] as const) {
        const sid = `lock-${what.replace(/\W+/g, '-')}`;
        await write(`${key(sid)}:lock`);
        expect(await store.tryLock(sid, 'mine', 300), what).to.equal(false);
        const ttl = await store.redis.pttl(`${key(sid)}:lock`);
        expect(ttl, what).to.be.within(1, 300);
        await eventually(async () => store.tryLock(sid, 'mine', 300), `${what}: the lock taken once the foreign one expired`, 3000, 50);
        await store.unlock(sid, 'mine');
      }
    });
  });
}

const memoryClock = new FakeClock();
contract('MemoryStore', async (ttlMs) => new MemoryStore({ sessionTtlMs: ttlMs, now: memoryClock.now }), memoryClock);
inspection('MemoryStore', async () => new MemoryStore({ sessionTtlMs: 60_000 }));

describe('RedisStore', () => {
  let redis: RedisHandle;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => redis?.stop());

  let n = 0;
  const make = async (ttlMs: number, prefix = `c${n++}:`, now?: () => number): Promise<RedisStore> => {
    const s = new RedisStore({ url: redis.url, keyPrefix: prefix, sessionTtlMs: ttlMs, storeTimeoutMs: 200, ...(now ? { now } : {}) });
    await s.connect();
    return s;
  };
  contract('RedisStore', (ttl) => make(ttl));

  it('names the operation and the connection state in the error of every call Redis could not take', async () => {
    // Nothing listens there: every call fails at once (no offline queue), each with its own operation in the message.
    const s = new RedisStore({ url: `redis://127.0.0.1:${await freePort()}`, keyPrefix: 'down:', sessionTtlMs: 60_000, storeTimeoutMs: 200 });
    const calls: [string, () => Promise<unknown>][] = [
      ['lookup', () => s.lookup('x')],
      ['create', () => s.create('x', { pod: '10.0.0.1:1', backendSessionId: 'x', initBody: null })],
      ['adopt', () => s.adopt('x', '10.0.0.1:1')],
      ['load', () => s.load('x')],
      ['replacePin', () => s.replacePin('x', 1, '10.0.0.1:1', 'y')],
      ['changeState', () => s.changeState('x', { op: 'subscribe', uri: 'u' } as never)],
      ['remove', () => s.remove('x')],
      ['remove', () => s.removeIfGeneration('x', 1)],
      ['remember_unknown', () => s.rememberUnknown('x', 1000)],
      ['is_unknown', () => s.isRememberedUnknown('x')],
      ['lock', () => s.tryLock('x', 't', 1000)],
      ['unlock', () => s.unlock('x', 't')],
      ['ping', () => s.ping()],
      ['scan', () => s.list({ limit: 10 })],
      ['inspect', () => s.inspect('x')],
    ];
    for (const [op, call] of calls) {
      const err = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, op).to.be.instanceOf(StoreError);
      expect((err as StoreError).code, op).to.equal('MCP_PIN_STORE_UNAVAILABLE');
      expect((err as Error).message, op).to.match(new RegExp(`^Redis ${op} failed \\(connection [a-z]+\\)$`));
    }
    await s.close();
  });
  contract('CachedStore over RedisStore (100 ms pin cache)', async (ttl) => new CachedStore(await make(ttl), { ttlMs: 100, touchEveryMs: 50 }));
  corruption('RedisStore', () => make(60_000));
  inspection('RedisStore', () => make(60_000));

  it("lists only its own prefix's sessions, a prefix with SCAN's pattern characters too, and refuses a cursor it did not give", async () => {
    const odd = await make(60_000, 'a*[x]?\\:');
    const plain = await make(60_000, 'ab:');
    const wide = await make(60_000, 'aZx1:');
    try {
      await odd.create('mine', { pod: '10.0.0.1:1', backendSessionId: 'm', initBody: null });
      await plain.create('theirs', { pod: '10.0.0.1:1', backendSessionId: 't', initBody: null });
      await wide.create('other', { pod: '10.0.0.1:1', backendSessionId: 'o', initBody: null });
      expect((await odd.list({ limit: 100 })).sessions.map((s) => s.clientSessionId)).to.deep.equal(['mine']);
      expect((await plain.list({ limit: 100 })).sessions.map((s) => s.clientSessionId)).to.deep.equal(['theirs']);
      for (const bad of ['nonsense', '1', ':5', '1:', 'x:1', '1:2:3']) {
        const err = await odd.list({ limit: 10, cursor: bad }).then(
          () => null,
          (e: unknown) => e,
        );
        expect((err as { code?: string })?.code, bad).to.equal('MCP_PIN_BAD_CURSOR');
        expect((err as Error).message, bad).to.equal(`"${bad}" is not a cursor this store returned`);
      }
      expect((await odd.list({ limit: 10, cursor: '0:0' })).sessions.map((s) => s.clientSessionId)).to.deep.equal(['mine']);
      expect((await odd.list({ limit: 10, cursor: '1:0' })).sessions, 'past the last node').to.deep.equal([]);
      expect(await odd.list({ limit: 10, cursor: '12:0' }), 'a node number of two digits').to.deep.equal({ sessions: [], cursor: null });
    } finally {
      await Promise.all([odd.close(), plain.close(), wide.close()]);
    }
  });

  it('keeps stores with different key prefixes apart', async () => {
    const a = await make(60_000, 'pa:');
    const b = await make(60_000, 'pb:');
    await a.create('same', { pod: '10.0.0.1:1', backendSessionId: 'same', initBody: null });
    expect(await b.lookup('same')).to.equal(null);
    await Promise.all([a.close(), b.close()]);
  });

  it('slides the TTL in steps of 1% of it: a write per step, not per lookup', async () => {
    // The step is decided by mcp-pin's clock (a fake one here); the TTL itself is Redis's.
    const clock = new FakeClock();
    const s = await make(20_000, 'slide:', clock.now); // step 200 ms
    await s.create('w', { pod: '10.0.0.1:1', backendSessionId: 'w', initBody: null });
    const seen = async (): Promise<string | null> => s.redis.hget('slide:{w}', 'seen');
    const created = await seen();
    await s.redis.pexpire('slide:{w}', 5_000);
    clock.advance(199);
    await s.lookup('w');
    expect(await seen(), 'a lookup within the step does not write').to.equal(created);
    expect(await s.redis.pttl('slide:{w}'), 'nor extend the TTL').to.be.at.most(5_000);
    clock.advance(1);
    await s.lookup('w');
    expect(Number(await seen()), 'a lookup after the step slides it').to.equal(Number(created) + 200);
    expect(await s.redis.pttl('slide:{w}'), 'to a whole TTL again').to.be.greaterThan(19_000);
    await s.close();
  });

  it('lets Redis expire an idle session after its TTL', async () => {
    const s = await make(300, 'expiry:');
    await s.create('t', { pod: '10.0.0.1:1', backendSessionId: 't', initBody: null });
    const pttl = await s.redis.pttl('expiry:{t}');
    expect(pttl, 'the record carries the TTL').to.be.within(1, 300);
    // load, not lookup: a lookup would slide the TTL it waits out.
    await eventually(async () => (await s.load('t')) === null, 'the session expired', 5_000, 20);
    await s.close();
  });

  it('frees a recovery lock when it expires', async () => {
    const s = await make(60_000, 'lockexp:');
    expect(await s.tryLock('l', 'a', 200)).to.equal(true);
    const lockTtl = await s.redis.pttl('lockexp:{l}:lock');
    expect(lockTtl, 'the lock carries its TTL').to.be.within(1, 200);
    await eventually(() => s.tryLock('l', 'c', 200), 'the expired lock taken by another token', 5_000, 20);
    await s.close();
  });

  it('keeps both keys of a session in one cluster hash slot', async () => {
    const s = await make(60_000, 'slot:');
    await s.create('abc', { pod: '10.0.0.1:1', backendSessionId: 'abc', initBody: null });
    await s.tryLock('abc', 'tok', 1000);
    const keys = (await s.redis.keys('slot:*')).sort();
    expect(keys).to.deep.equal(['slot:{abc}', 'slot:{abc}:lock']);
    await s.close();
  });

  it('fails fast with a coded StoreError when Redis is slow', async () => {
    const s = await make(60_000);
    const admin = new Redis(redis.url);
    try {
      // Every other client's commands wait from the moment this returns.
      // (WRITE mode blocks every script, as mcp-pin's lookups are, and leaves this connection free to unpause.)
      await admin.call('CLIENT', 'PAUSE', '2000', 'WRITE');
      const started = Date.now();
      const err = await s.lookup('x').then(
        () => null,
        (e: unknown) => e,
      );
      const took = Date.now() - started;
      await admin.call('CLIENT', 'UNPAUSE');
      expect(err).to.be.instanceOf(StoreError);
      expect((err as StoreError).code).to.equal('MCP_PIN_STORE_TIMEOUT');
      expect((err as Error).message).to.equal('Redis lookup took longer than 200 ms');
      expect(took).to.be.lessThan(500);
    } finally {
      admin.disconnect();
      await s.close();
    }
  });

  it('keeps when a session was created and last seen, by its own clock, and moves "last seen" with the sliding TTL', async () => {
    const clock = new FakeClock();
    const s = await make(100_000, undefined, clock.now);
    try {
      const created = clock.nowMs;
      await s.create('seen', { pod: '10.0.0.1:1', backendSessionId: 'seen', initBody: null });
      expect(await s.load('seen')).to.deep.include({ createdAtMs: created, lastSeenAtMs: created });
      clock.advance(5_000);
      await s.lookup('seen');
      expect(await s.load('seen')).to.deep.include({ createdAtMs: created, lastSeenAtMs: created + 5_000 });
    } finally {
      await s.close();
    }
  });

  it('loads a live session in one round trip (HMGET), asking whether the key exists only when no field came back', async () => {
    const s = await make(60_000);
    const admin = new Redis(redis.url);
    const calls = async (cmd: string): Promise<number> => {
      const line = ((await admin.info('commandstats')) as string).split('\n').find((l) => l.startsWith(`cmdstat_${cmd}:`));
      return Number(/calls=(\d+)/.exec(line ?? '')?.[1] ?? 0);
    };
    try {
      await s.create('live', { pod: '10.0.0.1:1', backendSessionId: 'live', initBody: null });
      await admin.config('RESETSTAT');
      expect(await s.load('live')).to.deep.include({ pod: '10.0.0.1:1' });
      expect([await calls('hmget'), await calls('exists')]).to.deep.equal([1, 0]);
      expect(await s.load('nobody')).to.equal(null);
      expect([await calls('hmget'), await calls('exists')]).to.deep.equal([2, 1]);
    } finally {
      admin.disconnect();
      await s.close();
    }
  });

  it('inspects a key Redis keeps without expiry (set by hand) as having no TTL, not a negative one', async () => {
    const s = await make(60_000, 'persist:');
    const admin = new Redis(redis.url);
    try {
      await s.create('kept', { pod: '10.0.0.1:1', backendSessionId: 'kept', initBody: null });
      await admin.persist('persist:{kept}');
      expect(await s.inspect('kept')).to.deep.include({ ttlMs: null });
    } finally {
      admin.disconnect();
      await s.close();
    }
  });

  it("names load's second call too in its error (a user that may not run EXISTS)", async () => {
    const admin = new Redis(redis.url);
    await admin.call('ACL', 'SETUSER', 'no-exists', 'on', '>pw', '~*', '+@all', '-exists');
    const url = redis.url.replace('redis://', 'redis://no-exists:pw@');
    const s = new RedisStore({ url, keyPrefix: 'acl:', sessionTtlMs: 60_000, storeTimeoutMs: 500 });
    try {
      await s.connect();
      const err = await s.load('nobody').then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as StoreError).code).to.equal('MCP_PIN_STORE_UNAVAILABLE');
      expect((err as Error).message).to.equal('Redis load failed (connection ready)');
    } finally {
      await s.close();
      await admin.call('ACL', 'DELUSER', 'no-exists');
      admin.disconnect();
    }
  });

  it('pages with SCAN COUNT of at least 100: small pages cost few round trips', async () => {
    const s = await make(60_000, 'count:');
    const admin = new Redis(redis.url);
    try {
      for (let i = 0; i < 250; i++) await s.create(`k${i}`, { pod: '10.0.0.1:1', backendSessionId: `k${i}`, initBody: null });
      await admin.config('RESETSTAT');
      let cursor: string | null | undefined;
      let seen = 0;
      do {
        const page = await s.list({ limit: 10, ...(cursor ? { cursor } : {}) });
        seen += page.sessions.length;
        cursor = page.cursor;
      } while (cursor);
      const scans = Number(/cmdstat_scan:calls=(\d+)/.exec((await admin.info('commandstats')) as string)?.[1] ?? 0);
      expect(seen).to.equal(250);
      expect(scans, 'SCAN calls for 250 sessions, 10 a page').to.be.at.most(6);
    } finally {
      admin.disconnect();
      await s.close();
    }
  });

  it('keeps ioredis quiet: its connection errors reach callers as StoreErrors, never stderr', async () => {
    const printed: unknown[][] = [];
    const error = console.error;
    console.error = (...args: unknown[]) => void printed.push(args);
    try {
      const down = new RedisStore({ url: `redis://127.0.0.1:${await freePort()}`, keyPrefix: 'q:', sessionTtlMs: 60_000, storeTimeoutMs: 200 });
      await down.connect(300).catch(() => {});
      await down.close();
    } finally {
      console.error = error;
    }
    expect(printed.map((a) => String(a[0]))).to.deep.equal([]);
  });

  it('loads a record written before the MCP path was kept (no path field) with no path, not as corrupt', async () => {
    const s = await make(60_000, 'old:');
    try {
      await s.redis.hset('old:{before}', { pod: '10.0.0.1:1', bsid: 'before', gen: '3', init: '{}' });
      expect(await s.load('before')).to.deep.include({ pod: '10.0.0.1:1', backendSessionId: 'before', generation: 3, initPath: null });
    } finally {
      await s.close();
    }
  });

  /** Where the close tests below open their store: Redis up, and Redis down (connect gives up after 1 s; the store keeps reconnecting until closed). */
  const closingCases = async (): Promise<(readonly [url: string, connectMs: number])[]> => [
    [redis.url, 30_000],
    [`redis://127.0.0.1:${await freePort()}`, 1_000],
  ];

  it('leaves nothing behind once closed (no timer, no reconnect): a process that closes its store exits, whether Redis answered or was down', async function () {
    this.timeout(60_000);
    const src = new URL('../../src/sessions/redis-store.ts', import.meta.url).href;
    // Every wait is 30 s long, so a timer left running would hold the process that long; a reconnect loop, for ever.
    const script = (url: string, connectMs: number) => `
      import { RedisStore } from ${JSON.stringify(src)};
      const s = new RedisStore({ url: ${JSON.stringify(url)}, keyPrefix: 'exit:', sessionTtlMs: 60000, storeTimeoutMs: 30000 });
      await s.connect(${connectMs}).catch(() => {});
      await s.lookup('x').catch(() => {});
      await s.close();
      console.log('closed');`;
    for (const [url, connectMs] of await closingCases()) {
      const started = Date.now();
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(url, connectMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      const code = await new Promise<number | null>((resolve) => {
        const t = setTimeout(() => {
          child.kill('SIGKILL');
          resolve(null);
        }, 20_000);
        child.on('exit', (c) => {
          clearTimeout(t);
          resolve(c);
        });
      });
      expect(out.trim(), url).to.equal('closed');
      expect(code, `${url}: exited by itself, ${Date.now() - started} ms after it started`).to.equal(0);
    }
  });

  it('leaves nothing behind once closed, seen in this process: no timer of its own or its client still holds the event loop, whether Redis answered or was down', async () => {
    // The same as the test above, in-process (so a mutation run's per-test coverage sees it): every wait is 30 s long.
    // Each timer made while the store lives is followed until it fires or is cleared.
    const pending = new Set<NodeJS.Timeout>();
    const realSet = globalThis.setTimeout;
    const realClear = globalThis.clearTimeout;
    const follow = ((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const t = realSet(() => {
        pending.delete(t);
        fn(...args);
      }, ms);
      pending.add(t);
      return t;
    }) as typeof setTimeout;
    const holding = () => [...pending].filter((t) => t.hasRef()).length;
    for (const [url, connectMs] of await closingCases()) {
      pending.clear();
      globalThis.setTimeout = follow;
      globalThis.clearTimeout = ((t?: NodeJS.Timeout) => {
        if (t) pending.delete(t);
        realClear(t);
      }) as typeof clearTimeout;
      try {
        const s = new RedisStore({ url, keyPrefix: 'exit:', sessionTtlMs: 60_000, storeTimeoutMs: 30_000 });
        await s.connect(connectMs).catch(() => {});
        await s.lookup('x').catch(() => {});
        await s.close();
        // Every timer made meanwhile, the client's reconnect timer included, fired or was cleared. (A closed
        // client that was reconnecting keeps that status, with no timer: status says nothing here.)
        await eventually(async () => holding() === 0, `${url}: the store's timers all fired or cleared`, 3_000);
      } finally {
        globalThis.setTimeout = realSet;
        globalThis.clearTimeout = realClear;
      }
    }
  });

  it('connects only when asked, waits for "ready" within its time, and leaves no listener behind either way', async () => {
    const down = new RedisStore({ url: `redis://127.0.0.1:${await freePort()}`, keyPrefix: 'c:', sessionTtlMs: 60_000, storeTimeoutMs: 200 });
    expect(down.redis.status, 'nothing dialled before connect()').to.equal('wait');
    const before = down.redis.listenerCount('ready');
    const err = await down.connect(150).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(StoreError);
    expect((err as StoreError).code).to.equal('MCP_PIN_STORE_UNAVAILABLE');
    expect((err as Error).message).to.equal('Redis not ready after 150 ms');
    expect(down.redis.listenerCount('ready')).to.equal(before);
    // Closing a store that never connected does not throw (QUIT cannot be sent: it disconnects instead).
    await down.close();
    const fresh = new RedisStore({ url: redis.url, keyPrefix: 'c:', sessionTtlMs: 60_000, storeTimeoutMs: 200 });
    const waiting = fresh.redis.listenerCount('ready');
    await fresh.connect(2_000);
    expect(fresh.redis.listenerCount('ready'), 'connected: its listener gone').to.equal(waiting);
    await fresh.close();
    const up = await make(60_000);
    try {
      const ready = up.redis.listenerCount('ready');
      // Already connected: at once, not after the wait.
      const started = Date.now();
      await up.connect(2_000);
      expect(Date.now() - started).to.be.lessThan(1_000);
      expect(up.redis.listenerCount('ready')).to.equal(ready);
    } finally {
      await up.close();
    }
    await eventually(async () => up.redis.status === 'end', 'the connection ends after QUIT', 2_000);
  });

  it('is what createStore makes of a Redis URL: timed for mcp_pin_store_seconds, under the pin cache when --pin-cache-ms > 0', async () => {
    const calls: { store: StoreOp[]; cache: boolean[] } = { store: [], cache: [] };
    const metrics = { storeCall: (op: StoreOp) => calls.store.push(op), pinCache: (hit: boolean) => calls.cache.push(hit) };
    const cfg = { storeUrl: redis.url, keyPrefix: 'made:', sessionTtlMs: 60_000, storeTimeoutMs: 200, pinCacheMs: 500, memoryStoreMaxSessions: 2 };
    const cached = createStore(cfg, metrics);
    const timed = createStore({ ...cfg, pinCacheMs: 0 }, metrics);
    const bare = createStore({ ...cfg, pinCacheMs: 0 });
    try {
      expect(cached).to.be.instanceOf(CachedStore);
      expect(timed).to.be.instanceOf(TimedStore);
      expect(bare).to.be.instanceOf(RedisStore);
      await Promise.all([cached.connect!(5000), (bare as RedisStore).connect()]);
      await cached.create('made', { pod: '10.0.0.1:1', backendSessionId: 'made', initBody: null });
      await cached.lookup('made');
      await cached.lookup('made');
      expect(calls.store).to.include.members(['create', 'lookup']);
      expect(calls.cache).to.deep.equal([false, true]);
      // Its prefix and TTL are the config's.
      const ttl = await (bare as RedisStore).redis.pttl('made:{made}');
      expect(ttl).to.be.within(50_000, 60_000);
    } finally {
      await Promise.all([cached.close(), timed.close(), bare.close()]);
    }
    const memory = createStore({ ...cfg, storeUrl: 'memory:' }, metrics);
    expect(memory).to.be.instanceOf(MemoryStore);
    await memory.create('a', { pod: '10.0.0.1:1', backendSessionId: 'a', initBody: null });
    await memory.create('b', { pod: '10.0.0.1:1', backendSessionId: 'b', initBody: null });
    const full = await memory.create('c', { pod: '10.0.0.1:1', backendSessionId: 'c', initBody: null }).then(
      () => null,
      (e: unknown) => e,
    );
    expect((full as StoreError | null)?.code, '--memory-store-max-sessions').to.equal('MCP_PIN_STORE_FULL');
    await memory.close();
  });

  it('keeps its fail-fast settings on every topology, whatever extra ioredis options it is given', async () => {
    const loose: RedisOptions = {
      lazyConnect: false,
      enableOfflineQueue: true,
      maxRetriesPerRequest: 20,
      commandTimeout: 60_000,
      connectTimeout: 60_000,
      retryStrategy: () => 60_000,
      autoResendUnfulfilledCommands: true,
      enableAutoPipelining: false,
    };
    const failFast = (o: RedisOptions, storeTimeoutMs: number) => {
      expect(o).to.include({
        lazyConnect: true,
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: storeTimeoutMs * 2,
        connectTimeout: Math.max(1000, storeTimeoutMs),
        autoResendUnfulfilledCommands: false,
        enableAutoPipelining: true,
      });
      // Reconnects for ever, 50 ms more each time, never slower than once a second.
      expect([1, 2, 10, 20, 21, 1000].map((t) => o.retryStrategy!(t))).to.deep.equal([50, 100, 500, 1000, 1000, 1000]);
    };
    const stores: RedisStore[] = [];
    const store = (url: string, storeTimeoutMs: number) => {
      const s = new RedisStore({ url, keyPrefix: 'ff:', sessionTtlMs: 60_000, storeTimeoutMs, redisOptions: loose });
      stores.push(s);
      return s;
    };
    try {
      failFast(store('redis://127.0.0.1:1', 200).redis.options as RedisOptions, 200);
      failFast(store('redis://127.0.0.1:1', 3000).redis.options as RedisOptions, 3000);
      const sentinel = store('redis-sentinel://u:p@127.0.0.1:1,127.0.0.1:2/main', 200).redis as Redis;
      expect(sentinel.status).to.equal('wait');
      failFast(sentinel.options, 200);
      expect(sentinel.options).to.deep.include({ name: 'main', username: 'u', password: 'p' });
      expect(sentinel.options.sentinels).to.deep.equal([
        { host: '127.0.0.1', port: 1 },
        { host: '127.0.0.1', port: 2 },
      ]);
      expect([1, 5, 10, 11].map((t) => sentinel.options.sentinelRetryStrategy!(t))).to.deep.equal([100, 500, 1000, 1000]);
      const cluster = store('redis-cluster://u:p@127.0.0.1:1', 200).redis as Cluster;
      expect(cluster).to.be.instanceOf(Cluster);
      expect(cluster.status).to.equal('wait');
      const co = cluster.options as ClusterOptions;
      expect(co).to.include({ lazyConnect: true, enableOfflineQueue: false, enableAutoPipelining: true, maxRedirections: 4 });
      expect([1, 5, 10, 11].map((t) => co.clusterRetryStrategy!(t, null as never))).to.deep.equal([100, 500, 1000, 1000]);
      // Each node's connection: the same fail-fast settings (it connects when the cluster does), and the URL's credentials.
      failFast({ ...co.redisOptions, lazyConnect: true } as RedisOptions, 200);
      expect(co.redisOptions).to.include({ lazyConnect: false, username: 'u', password: 'p' });
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });

  it('fails fast with a coded StoreError when Redis is down, and works again when it is back', async () => {
    const s = await make(60_000);
    await s.create('kept', { pod: '10.0.0.1:1', backendSessionId: 'kept', initBody: null });
    await redis.stop();
    const started = Date.now();
    const err = await s.lookup('kept').then(
      () => null,
      (e: unknown) => e,
    );
    expect(Date.now() - started).to.be.lessThan(1000);
    expect(err).to.be.instanceOf(StoreError);
    expect((err as StoreError).code).to.equal('MCP_PIN_STORE_UNAVAILABLE');
    await redis.start();
    await eventually(
      () =>
        s.ping().then(
          () => true,
          () => false,
        ),
      'reconnected by itself',
      6_000,
      50,
    );
    await s.close();
  });
});

for (const [kind, start] of [
  ['Redis Cluster (3 masters)', startRedisCluster],
  ['Redis Sentinel', startRedisSentinel],
] as const) {
  describe(`RedisStore on ${kind}`, function () {
    this.timeout(60_000);
    let target: ProcsHandle;
    before(async () => {
      target = await start();
    });
    after(async () => target?.stop());
    let n = 0;
    contract(`RedisStore on ${kind}`, async (ttlMs) => {
      const s = new RedisStore({ url: target.url, keyPrefix: `k${n++}:`, sessionTtlMs: ttlMs, storeTimeoutMs: 500 });
      await s.connect(10_000);
      return s;
    });
    inspection(`RedisStore on ${kind}`, async () => {
      const s = new RedisStore({ url: target.url, keyPrefix: `i${n++}:`, sessionTtlMs: 60_000, storeTimeoutMs: 2000 });
      await s.connect(10_000);
      return s;
    });
    corruption(`RedisStore on ${kind}`, async () => {
      const s = new RedisStore({ url: target.url, keyPrefix: `x${n++}:`, sessionTtlMs: 60_000, storeTimeoutMs: 500 });
      await s.connect(10_000);
      return s;
    });
    if (start === startRedisCluster)
      it("a cursor means the same to a store whose seed nodes come in another order (the sessions CLI continuing a replica's page)", async () => {
        const prefix = `o${n++}:`;
        // The seeds in each of their three rotations: ioredis keeps its seed nodes' order, so each store sees the masters in another order.
        const seeds = target.url.slice('redis-cluster://'.length).split(',');
        const stores = [0, 1, 2].map(
          (k) =>
            new RedisStore({
              url: `redis-cluster://${[...seeds.slice(k), ...seeds.slice(0, k)].join(',')}`,
              keyPrefix: prefix,
              sessionTtlMs: 60_000,
              storeTimeoutMs: 2000,
            }),
        );
        try {
          for (const st of stores) await st.connect(10_000);
          const order = (st: RedisStore) => (st.redis as Cluster).nodes('master').map((r) => `${r.options.host}:${r.options.port}`);
          expect(new Set(stores.map((st) => order(st).join(' '))).size, 'three orders').to.equal(3);
          const ids = Array.from({ length: 40 }, (_, i) => `s${i}`);
          for (const id of ids) await (stores[0] as RedisStore).create(id, { pod: '10.0.0.1:8080', backendSessionId: id, initBody: null });
          // Every store begins, every other store continues, after each page.
          for (const [a, from] of stores.entries())
            for (const [b, to] of stores.entries())
              for (let switchAt = 1; a !== b && switchAt <= 3; switchAt++) {
                const seen: string[] = [];
                let cursor: string | undefined;
                for (let page = 0; page < 100; page++) {
                  const got = await (page < switchAt ? from : to).list({ limit: 5, ...(cursor !== undefined ? { cursor } : {}) });
                  seen.push(...got.sessions.map((x) => x.clientSessionId));
                  if (got.cursor === null) break;
                  cursor = got.cursor;
                }
                expect([...seen].sort(), `store ${a} for ${switchAt} page(s), then store ${b}: every session once, none twice`).to.deep.equal([...ids].sort());
              }
        } finally {
          await Promise.all(stores.map((st) => st.close()));
        }
      });
  });
}
