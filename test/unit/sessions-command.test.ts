/** mcp-pin sessions get/list/drop on the memory store (the Redis and Cluster runs are in test/integration/sessions-cli.test.ts). */
import { expect } from 'chai';
import { runSessionsCommand } from '../../src/cli/sessions.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';

describe('mcp-pin sessions (memory store)', () => {
  let t = 1_000_000;
  let store: MemoryStore;
  beforeEach(async () => {
    t = 1_000_000;
    store = new MemoryStore({ sessionTtlMs: 3_600_000, now: () => t });
    for (let i = 0; i < 25; i++)
      await store.create(`s${String(i).padStart(2, '0')}`, {
        pod: i % 3 === 0 ? '10.0.0.1:8080' : '10.0.0.2:8080',
        backendSessionId: `s${i}`,
        initBody: i === 0 ? null : Buffer.from('{}'),
      });
    t += 65_000;
  });
  afterEach(() => store.close());

  async function run(...argv: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runSessionsCommand(
      argv,
      {},
      {
        out: (l) => out.push(l),
        err: (l) => err.push(l),
        now: () => t,
        openStore: () => Object.assign(Object.create(store) as MemoryStore, { close: async () => {} }),
      },
    );
    return { code, out, err };
  }

  it('get: pod, backend id, generation, age, TTL, recoverable', async () => {
    const r = await run('get', 's03');
    expect(r.code).to.equal(0);
    expect(r.out.join('\n'))
      .to.contain('pod          10.0.0.1:8080')
      .and.contain('generation   1')
      .and.contain('age          1m05s')
      .and.contain('ttl          58m55s')
      .and.contain('recoverable  yes');
    const j = await run('get', 's00', '--json');
    expect(JSON.parse(j.out[0]!)).to.include({ clientSessionId: 's00', pod: '10.0.0.1:8080', generation: 1, ttlMs: 3_535_000, recoverable: false });
  });

  it('list --pod pages with a cursor until every session of that pod was listed once', async () => {
    const seen: string[] = [];
    let cursor: string | null | undefined;
    for (let pages = 0; cursor !== null; pages++) {
      expect(pages).to.be.lessThan(10);
      const r = await run('list', '--pod', '10.0.0.1:8080', '--limit', '3', '--json', ...(cursor ? ['--cursor', cursor] : []));
      const page = JSON.parse(r.out[0]!) as { sessions: { clientSessionId: string; pod: string }[]; cursor: string | null };
      expect(page.sessions.length).to.be.at.most(3);
      expect(page.sessions.every((s) => s.pod === '10.0.0.1:8080')).to.equal(true);
      seen.push(...page.sessions.map((s) => s.clientSessionId));
      cursor = page.cursor;
    }
    expect(seen).to.deep.equal(['s00', 's03', 's06', 's09', 's12', 's15', 's18', 's21', 's24']);
    const human = await run('list', '--limit', '2');
    expect(human.out).to.have.length(2);
    expect(human.err[0]).to.match(/^2 session\(s\); more: mcp-pin sessions list --cursor s01$/);
  });

  it('drop removes a pin that a search finds again, losing nothing (no initialize kept); get then answers 1', async () => {
    // Under its own id, its initialize not kept (as an adopted session).
    await store.adopt('adopted', '10.0.0.1:8080', '/mcp');
    const dropped = await run('drop', 'adopted');
    expect(dropped.code).to.equal(0);
    expect(dropped.out[0]).to.match(/^dropped adopted \(was pinned to 10\.0\.0\.1:8080, generation 1\)/);
    expect(await store.inspect('adopted')).to.equal(null);
    const r = await run('get', 'adopted');
    expect(r.code).to.equal(1);
    expect(r.err[0]).to.contain('no session "adopted" in the store');
  });

  it('refuses to drop a session it would harm (exit 4, saying why), unless --force', async () => {
    // Under its own id with its initialize kept: found again, it could no longer be recovered.
    await store.create('own', { pod: '10.0.0.1:8080', backendSessionId: 'own', initBody: Buffer.from('{}') });
    const kept = await run('drop', 'own');
    expect(kept.code).to.equal(4);
    expect(kept.err[0]).to.match(/not dropped: its pod would be found again, but mcp-pin would no longer hold its initialize/);
    expect(await store.inspect('own')).to.not.equal(null);
    // A recovered session: its pod knows another id, no search finds it: dropping it would end it.
    await store.create('recovered', { pod: '10.0.0.1:8080', backendSessionId: 'recovered', initBody: Buffer.from('{}') });
    await store.replacePin('recovered', 1, '10.0.0.2:8080', 'backend-2');
    const moved = await run('drop', 'recovered');
    expect(moved.code).to.equal(4);
    expect(moved.err[0]).to.match(
      /not dropped: it was recovered: its pod \(10\.0\.0\.2:8080\) knows it as backend-2, so no search by recovered can find it again/,
    );
    expect(await store.inspect('recovered')).to.not.equal(null);
    // --force: the operator's decision.
    for (const id of ['own', 'recovered']) {
      expect((await run('drop', id, '--force')).code, id).to.equal(0);
      expect(await store.inspect(id), id).to.equal(null);
    }
  });

  it('answers usage errors with exit 2 and one clear line', async () => {
    for (const [argv, why] of [
      [[], 'which command'],
      [['show', 'x'], 'unknown command "show"'],
      [['get'], 'get needs one session id'],
      [['list', 'x'], 'list takes no session id'],
      [['list', '--limit', '0'], '--limit 0'],
      [['list', '--pod', 'nope'], '--pod nope: expected ip:port'],
      [['get', 'x', '--store-url', 'ftp://x'], 'expected memory:, redis://'],
    ] as [string[], string][]) {
      const r = await run(...argv);
      expect(r.code, argv.join(' ')).to.equal(2);
      expect(r.err[0], argv.join(' ')).to.contain(why);
    }
  });

  it('refuses the memory: store without a store of its own to read (it lives inside the server)', async () => {
    const err: string[] = [];
    expect(await runSessionsCommand(['list'], {}, { out: () => {}, err: (l) => err.push(l) })).to.equal(2);
    expect(err[0]).to.contain('lives inside the running mcp-pin process');
  });
});
