/**
 * Every failure mcp-pin catches and carries on after is counted
 * (mcp_pin_ignored_errors_total{op}): the answer stays right, and the
 * failure is still seen.
 */
import { expect } from 'chai';
import { Exchange } from '../../src/extproc/exchange.js';
import { PinAllowlist } from '../../src/pin-allowlist.js';
import type { Metrics } from '../../src/metrics.js';
import { HttpRecoverer } from '../../src/recovery/http-recoverer.js';
import type { Forwarder } from '../../src/recovery/forwarder.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { StoreError } from '../../src/errors.js';
import { metricValue, newMetrics, requestHeaders, responseHeaders, silentLog, recovererCfg } from './fakes.js';

const cfg = { pinHeader: 'x-mcp-pin-dst', maxInitBodyBytes: 1024, maxSessionIdLength: 64, lostSessionStatuses: [404] };
const fail = async (): Promise<never> => {
  throw new Error('store down');
};
const ignored = (metrics: Metrics, op: string): Promise<number> => metricValue(metrics, 'mcp_pin_ignored_errors_total', { op });

describe('failures carried on after are counted', () => {
  it('dropping a poisoned pin, forgetting a deleted session, adopting a session', async () => {
    const metrics = newMetrics();
    const store = new MemoryStore({ sessionTtlMs: 60_000 });
    store.removeIfGeneration = fail;
    store.remove = fail;
    store.adopt = fail;
    const allowlist = new PinAllowlist('10.0.0.0/8');
    const deps = { store, cfg, log: silentLog, metrics, allowlist };

    await store.create('P', { pod: '127.0.0.1:6379', backendSessionId: 'P', initBody: null });
    const [r] = await new Exchange(deps).handle(requestHeaders({ ':method': 'GET', ':path': '/mcp', 'mcp-session-id': 'P' }, true));
    const pinnedTo = r!.request_headers?.response?.header_mutation?.set_headers?.find((h) => h.header.key === cfg.pinHeader)?.header.raw_value.toString();
    expect(r!.immediate_response, 'answered by the session search, not refused').to.equal(undefined);
    expect(pinnedTo, 'not routed to the poisoned pod').to.not.equal('127.0.0.1:6379');
    expect(await ignored(metrics, 'drop_poisoned_pin')).to.equal(1);

    await store.create('D', { pod: '10.0.0.7:9000', backendSessionId: 'D', initBody: null });
    const del = new Exchange(deps);
    await del.handle(requestHeaders({ ':method': 'DELETE', ':path': '/mcp', 'mcp-session-id': 'D' }, true));
    await del.handle(responseHeaders({ ':status': '200' }));
    expect(await ignored(metrics, 'forget_deleted_session')).to.equal(1);

    const adopt = new Exchange(deps);
    await adopt.handle(requestHeaders({ ':method': 'GET', ':path': '/mcp', 'mcp-session-id': 'U' }, true));
    await adopt.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'U' }, { 'upstream.address': '10.0.0.5:8080' }));
    expect(await ignored(metrics, 'adopt_session')).to.equal(1);
  });

  it('releasing a recovery lock (a failed drop of a record a pod refused is no ignored error: the client is told to try again)', async () => {
    const metrics = newMetrics();
    const store = new MemoryStore({ sessionTtlMs: 60_000 });
    await store.create('S', { pod: '10.0.0.9:8080', backendSessionId: 'S', initBody: Buffer.from('{"method":"initialize"}') });
    store.unlock = fail;
    store.removeIfGeneration = fail;
    // The pod that failed is gone (ping refused) and a pod refuses the stored initialize itself (4xx: proof it can never work).
    const pods: Forwarder = {
      send: async (req) =>
        req.body?.toString().includes('ping')
          ? Promise.reject(new Error('ECONNREFUSED'))
          : { status: 400, headers: [], body: Buffer.alloc(0), upstream: req.pod },
      close: async () => {},
    };
    const recoverer = new HttpRecoverer({
      cfg: recovererCfg,
      store,
      log: silentLog,
      metrics,
      forwarder: pods,
    });
    const out = await recoverer.planRetry(
      { clientSessionId: 'S', failedSessionId: 'S', pod: '10.0.1.1:8080', path: '/mcp', headers: [] },
      new AbortController().signal,
    );
    expect(out).to.deep.equal({ kind: 'failed', code: 'MCP_PIN_RECOVERY_UNAVAILABLE' });
    expect(await ignored(metrics, 'release_recovery_lock')).to.equal(1);
  });

  it('a store error behind any of them also moves its store-error series (every series that exists can move)', async () => {
    const metrics = newMetrics();
    const down = async (): Promise<never> => {
      throw new StoreError('MCP_PIN_STORE_UNAVAILABLE', 'store down');
    };
    const store = new MemoryStore({ sessionTtlMs: 60_000 });
    const deps = { store, cfg, log: silentLog, metrics };
    await store.create('D', { pod: '10.0.0.7:9000', backendSessionId: 'D', initBody: null, initPath: '/mcp' });
    store.removeIfGeneration = down;
    store.adopt = down;
    const del = new Exchange(deps);
    await del.handle(requestHeaders({ ':method': 'DELETE', ':path': '/mcp', 'mcp-session-id': 'D' }, true));
    await del.handle(responseHeaders({ ':status': '200' }));
    const adopt = new Exchange(deps);
    await adopt.handle(requestHeaders({ ':method': 'GET', ':path': '/mcp', 'mcp-session-id': 'U' }, true));
    await adopt.handle(responseHeaders({ ':status': '200', 'mcp-session-id': 'U' }, { 'upstream.address': '10.0.0.5:8080' }));
    store.load = down;
    const recoverer = new HttpRecoverer({
      cfg: recovererCfg,
      store,
      log: silentLog,
      metrics,
      forwarder: { send: down, close: async () => {} },
    });
    expect(
      await recoverer.planRetry({ clientSessionId: 'D', failedSessionId: 'D', pod: '10.0.1.1:8080', path: '/mcp', headers: [] }, new AbortController().signal),
    ).to.deep.equal({ kind: 'failed', code: 'MCP_PIN_STORE_UNAVAILABLE' });
    const series = (await metrics.storeErrors.get()).values.filter((v) => v.value > 0).map((v) => `${v.labels.op}/${v.labels.code}=${v.value}`);
    expect(series.sort()).to.deep.equal(['adopt/MCP_PIN_STORE_UNAVAILABLE=1', 'recovery/MCP_PIN_STORE_UNAVAILABLE=1', 'remove/MCP_PIN_STORE_UNAVAILABLE=1']);
  });
});
