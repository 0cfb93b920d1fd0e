/**
 * ExtProcService (src/extproc/server.ts) as Envoy's gRPC client sees it: the
 * start gate, the handler each stream role gets, the status a failing
 * stream ends with, and the open-stream and per-message metrics.
 */
import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import { ExtProcService } from '../../src/extproc/server.js';
import { ROLE_METADATA, STREAM_ROLES } from '../../src/extproc/stream-handler.js';
import { createGrpcServer, listen, shutdown } from '../../src/grpc-server.js';
import type { Metrics } from '../../src/metrics.js';
import type { Recoverer, StateCatchUp } from '../../src/recovery/http-recoverer.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { eventually } from '../helpers/net.js';
import { extProcClient, wireRequestHeaders } from '../helpers/grpc-clients.js';
import { capturedLog, metricValue, newMetrics, type LogLine } from './fakes.js';

const GET = wireRequestHeaders({ ':method': 'GET', ':path': '/' });
/** Request headers of a session the store does not know: the exchange then waits for the response phase. */
const UNKNOWN_SESSION = wireRequestHeaders({ ':method': 'GET', ':path': '/mcp', 'mcp-session-id': 'unknown' });
const TRAILERS_FIRST = { request_trailers: { trailers: { headers: [] } } };
const BODY_FIRST = { request_body: { body: Buffer.from('{}'), end_of_stream: true } };
/** A retry attempt of a pinned request, with the pod Envoy chose for it: what an attempt stream plans with its recoverer. */
const RETRY_ATTEMPT = {
  ...wireRequestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 'lost-one' }),
  attributes: { 'envoy.filters.http.ext_proc': { fields: { 'upstream.address': { stringValue: '10.0.0.2:8080' } } } },
};

/** A recoverer that is never asked anything here: an attempt stream only needs one to be an AttemptExchange. */
const idleRecoverer: Recoverer & StateCatchUp = {
  messageTimeoutMs: 3500,
  deadline: (c) => c,
  planRetry: async () => {
    throw new Error('not asked in these tests');
  },
  relay: async () => {
    throw new Error('not asked in these tests');
  },
  catchUpState: async () => {
    throw new Error('not asked in these tests');
  },
};

describe('ExtProcService: streams as Envoy sees them', function () {
  this.timeout(20_000);
  let server: grpc.Server;
  let port: number;
  let service: ExtProcService;
  let metrics: Metrics;
  let logs: LogLine[];
  const store = new MemoryStore({ sessionTtlMs: 60_000 });

  const start = async (opts: { startClosed?: boolean; recoverer?: Recoverer & StateCatchUp } = {}): Promise<void> => {
    server = createGrpcServer({ maxMessageBytes: 64 * 1024 });
    metrics = newMetrics();
    const captured = capturedLog();
    logs = captured.lines;
    service = new ExtProcService({
      store,
      cfg: { pinHeader: 'x-mcp-pin-dst', maxInitBodyBytes: 1024, maxSessionIdLength: 64, lostSessionStatuses: [404] },
      log: captured.log,
      metrics,
      ...opts,
    });
    service.addTo(server);
    port = await listen(server, { kind: 'tcp', host: '127.0.0.1', port: 0 });
  };
  afterEach(() => shutdown(server, 1000));
  after(() => store.close());

  /** One stream: what it answered and the status it ended with. */
  const exchange = async (messages: object[], role?: string): Promise<{ replies: Record<string, unknown>[]; status: grpc.StatusObject }> => {
    const client = extProcClient(port);
    try {
      const md = new grpc.Metadata();
      if (role !== undefined) md.set(ROLE_METADATA, role);
      const call = (client as unknown as { Process(md: grpc.Metadata): grpc.ClientDuplexStream<object, Record<string, unknown>> }).Process(md);
      const replies: Record<string, unknown>[] = [];
      call.on('data', (m: Record<string, unknown>) => replies.push(m));
      call.on('error', () => {});
      const status = new Promise<grpc.StatusObject>((resolve) => call.on('status', resolve));
      for (const m of messages) call.write(m);
      call.end();
      return { replies, status: await status };
    } finally {
      client.close();
    }
  };

  it('refuses every stream with UNAVAILABLE until the store first answered (startAccepting), counting each', async () => {
    await start({ startClosed: true });
    expect(service.isAccepting).to.equal(false);
    const refused = await exchange([GET]);
    expect(refused.status.code).to.equal(grpc.status.UNAVAILABLE);
    expect(refused.status.details).to.match(/starting: the session store has not answered yet/);
    expect(refused.replies).to.deep.equal([]);
    expect(await metricValue(metrics, 'mcp_pin_stream_errors_total', { code: 'MCP_PIN_STARTING' })).to.equal(1);
    expect(await metricValue(metrics, 'mcp_pin_streams_total'), 'not accepted').to.equal(0);
    service.startAccepting();
    expect(service.isAccepting).to.equal(true);
    const answered = await exchange([GET]);
    expect(answered.status.code).to.equal(grpc.status.OK);
    expect(answered.replies).to.have.length(1);
    expect(await metricValue(metrics, 'mcp_pin_streams_total')).to.equal(1);
  });

  it('accepts at once unless told to start closed', async () => {
    await start({ startClosed: false });
    expect(service.isAccepting).to.equal(true);
    expect((await exchange([GET])).status.code).to.equal(grpc.status.OK);
  });

  it('counts a stream open while it is, and once closed, whether the client left or the stream failed', async () => {
    await start();
    const client = extProcClient(port);
    try {
      const call = client.Process();
      call.on('error', () => {});
      call.write(UNKNOWN_SESSION);
      await eventually(async () => service.openStreams === 1, 'the stream is open');
      expect(metrics.openStreams).to.equal(1);
      expect(await metricValue(metrics, 'mcp_pin_streams_open')).to.equal(1);
      call.cancel();
      await eventually(async () => service.openStreams === 0, 'the stream is closed');
      expect(metrics.openStreams, 'counted down once').to.equal(0);
    } finally {
      client.close();
    }
    await exchange([TRAILERS_FIRST]);
    await eventually(async () => service.openStreams === 0, 'the failed stream is closed');
    expect(metrics.openStreams).to.equal(0);
    expect(await metricValue(metrics, 'mcp_pin_streams_total')).to.equal(2);
  });

  it('ends a stream that breaks the protocol with INVALID_ARGUMENT and its reason, counts it by code, and answers nothing after', async () => {
    await start();
    const { replies, status } = await exchange([TRAILERS_FIRST, GET]);
    expect(status.code).to.equal(grpc.status.INVALID_ARGUMENT);
    expect(status.details).to.equal('mcp-pin: request_trailers received before request_headers');
    expect(replies, 'the request headers after it are not answered').to.deep.equal([]);
    expect(await metricValue(metrics, 'mcp_pin_stream_errors_total', { code: 'MCP_PIN_PROTOCOL' })).to.equal(1);
    const failed = logs.filter((l) => l.msg === 'ext_proc stream failed');
    expect(failed).to.have.length(1);
    expect(failed[0]).to.deep.include({ level: 40, code: 'MCP_PIN_PROTOCOL', err: 'request_trailers received before request_headers' });
  });

  it('ends a stream whose handler fails in a way nothing expects (a bug) with INTERNAL, counted and logged as MCP_PIN_UNEXPECTED', async () => {
    await start({ recoverer: idleRecoverer });
    // The recoverer throws where it never does (planRetry "never throws"): a bug.
    const { status } = await exchange([RETRY_ATTEMPT], 'attempt');
    expect(status.code).to.equal(grpc.status.INTERNAL);
    expect(status.details).to.equal('mcp-pin: not asked in these tests');
    expect(await metricValue(metrics, 'mcp_pin_stream_errors_total', { code: 'MCP_PIN_UNEXPECTED' })).to.equal(1);
    expect(logs.find((l) => l.msg === 'ext_proc stream failed')).to.deep.include({ code: 'MCP_PIN_UNEXPECTED', err: 'not asked in these tests' });
  });

  it('times each message it answers, in seconds', async () => {
    await start();
    await exchange([GET]);
    const m = (await metrics.registry.getMetricsAsJSON()).find((x) => x.name === 'mcp_pin_message_seconds');
    const values = (m?.values ?? []) as { metricName?: string; labels: Record<string, string | number>; value: number }[];
    const count = values.find((v) => v.metricName === 'mcp_pin_message_seconds_count' && v.labels.phase === 'request_headers');
    const sum = values.find((v) => v.metricName === 'mcp_pin_message_seconds_sum' && v.labels.phase === 'request_headers');
    expect(count?.value).to.equal(1);
    expect(sum?.value, 'a message of a test run takes well under a second').to.be.greaterThan(0).and.lessThan(1);
  });

  it('gives each stream role its own handler (what a first message it does not expect is answered with shows which)', async () => {
    await start({ recoverer: idleRecoverer });
    const said: Record<string, string> = {};
    for (const role of [...STREAM_ROLES, 'something-else']) {
      const { status } = await exchange([BODY_FIRST], role);
      expect(status.code, role).to.equal(grpc.status.INVALID_ARGUMENT);
      said[role] = status.details;
    }
    expect(said).to.deep.equal({
      request: 'mcp-pin: request_body received before request_headers',
      attempt: "mcp-pin: request_body not expected in a retry attempt's request phase",
      search: 'mcp-pin: request_body not expected in a session search attempt',
      state: "mcp-pin: request_body not expected in a session-state request's request-headers phase",
      task: "mcp-pin: request_body not expected in a task request's request-headers phase",
      'something-else': 'mcp-pin: request_body received before request_headers',
    });
  });

  it('ends a stream whose handler rejects with no error object at all (null) with INTERNAL, and goes on serving', async () => {
    await start({
      recoverer: {
        ...idleRecoverer,
        planRetry: () => Promise.reject(null),
      },
    });
    const { status } = await exchange([RETRY_ATTEMPT], 'attempt');
    expect(status.code).to.equal(grpc.status.INTERNAL);
    expect(status.details).to.equal('mcp-pin: null');
    expect((await exchange([GET])).status.code, 'the next stream is served').to.equal(grpc.status.OK);
  });

  it("gives a session-state stream the recoverer, so a change kept under a moved session's old backend id reaches its new pod (I8)", async () => {
    const asked: unknown[][] = [];
    const catchUpState = async (...args: unknown[]) => {
      asked.push(args);
      return 'current' as const;
    };
    await start({ recoverer: { ...idleRecoverer, catchUpState } });
    await store.create('state-c', { pod: '10.0.0.1:80', backendSessionId: 'state-c', initBody: null });
    const { status } = await exchange(
      [
        wireRequestHeaders({ ':method': 'POST', ':path': '/mcp', 'mcp-session-id': 'state-c' }),
        { request_body: { body: Buffer.from('{"jsonrpc":"2.0","id":1,"method":"logging/setLevel","params":{"level":"info"}}'), end_of_stream: true } },
        {
          response_headers: {
            headers: {
              headers: [
                { key: ':status', raw_value: Buffer.from('200') },
                { key: 'content-type', raw_value: Buffer.from('application/json') },
              ],
            },
          },
        },
        { response_body: { body: Buffer.from('{"jsonrpc":"2.0","id":1,"result":{}}'), end_of_stream: true } },
      ],
      'state',
    );
    expect(status.code).to.equal(grpc.status.OK);
    expect((await store.load('state-c'))!.state.level).to.equal('info');
    expect(asked.map((a) => a.slice(0, 2))).to.deep.equal([['state-c', 'state-c']]);
  });

  it('treats an attempt stream as a client request when it has no recoverer (the client filter alone)', async () => {
    await start();
    const { status } = await exchange([TRAILERS_FIRST], 'attempt');
    expect(status.details).to.equal('mcp-pin: request_trailers received before request_headers');
  });
});
