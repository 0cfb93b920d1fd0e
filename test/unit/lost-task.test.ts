import { expect } from 'chai';
import { TaskAnswer } from '../../src/extproc/task-answer.js';
import { LOST_TASK_MESSAGE, LOST_TASK_REASON, explainUnknownTask } from '../../src/lost-task.js';
import { MemoryStore } from '../../src/sessions/memory-store.js';
import { capturedLog, LOG_LEVEL, newMetrics, requestHeaders, responseHeaders, silentLog } from './fakes.js';
import { sessionTag } from '../../src/log.js';

const TS_NOT_FOUND = { jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'MCP error -32602: Failed to retrieve task: Task not found' } };
const json = (m: unknown): Buffer => Buffer.from(JSON.stringify(m));

describe('a task lost with its pod (lost-task.ts)', () => {
  it('explains a pod\'s "Task not found" in a JSON answer, keeping id, code and the pod\'s words', () => {
    const out = JSON.parse(explainUnknownTask(json(TS_NOT_FOUND), 'application/json')!.toString());
    expect(out).to.deep.equal({
      jsonrpc: '2.0',
      id: 7,
      error: { code: -32602, message: LOST_TASK_MESSAGE, data: { mcpPin: LOST_TASK_REASON, podMessage: TS_NOT_FOUND.error.message } },
    });
    // The pod's own data is kept beside mcp-pin's.
    const withData = JSON.parse(
      explainUnknownTask(
        json({ ...TS_NOT_FOUND, error: { ...TS_NOT_FOUND.error, message: 'Task abc not found', data: { taskId: 'abc' } } }),
        'application/json',
      )!.toString(),
    );
    expect(withData.error.data).to.deep.equal({ taskId: 'abc', mcpPin: LOST_TASK_REASON, podMessage: 'Task abc not found' });
  });

  it('explains it in whole SSE events only, every other line and event as it came', () => {
    const sse = `id: 1\nevent: message\ndata: ${JSON.stringify(TS_NOT_FOUND)}\n\nevent: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}\n\n`;
    const out = explainUnknownTask(Buffer.from(sse), 'text/event-stream')!.toString();
    const events = out.split('\n\n');
    expect(events[0]!.split('\n').slice(0, 2)).to.deep.equal(['id: 1', 'event: message']);
    expect(JSON.parse(events[0]!.split('\n')[2]!.slice(6)).error.message).to.equal(LOST_TASK_MESSAGE);
    expect(events[1]).to.equal('event: message\ndata: {"jsonrpc":"2.0","method":"notifications/message","params":{}}');
    // An unfinished event is left alone.
    expect(explainUnknownTask(Buffer.from(`data: ${JSON.stringify(TS_NOT_FOUND)}`), 'text/event-stream')).to.equal(undefined);
    expect(explainUnknownTask(Buffer.from(`data: ${JSON.stringify(TS_NOT_FOUND)}\r\n\r\n`), 'text/event-stream; charset=utf-8')).to.not.equal(undefined);
  });

  it('leaves everything else alone: results, other errors, other codes, malformed bodies', () => {
    expect(explainUnknownTask(json({ jsonrpc: '2.0', id: 7, result: { taskId: 'a', status: 'working' } }), 'application/json')).to.equal(undefined);
    expect(explainUnknownTask(json({ jsonrpc: '2.0', id: 7, error: { code: -32602, message: 'Invalid arguments' } }), 'application/json')).to.equal(undefined);
    expect(explainUnknownTask(json({ jsonrpc: '2.0', id: 7, error: { code: -32603, message: 'Task not found' } }), 'application/json')).to.equal(undefined);
    expect(explainUnknownTask(Buffer.from('{"jsonrpc":'), 'application/json')).to.equal(undefined);
    expect(explainUnknownTask(Buffer.from('data: {"x"\n\n'), 'text/event-stream')).to.equal(undefined);
  });

  describe("TaskAnswer (the task route's ext_proc stream)", () => {
    async function run(opts: {
      moved: boolean;
      status?: string;
      contentType?: string;
      chunks: Buffer[];
      client?: string;
    }): Promise<{ out: (Buffer | undefined)[]; headerMutation: unknown; mode: unknown; count: number; complete: boolean }> {
      const store = new MemoryStore({ sessionTtlMs: 60_000 });
      await store.create('C', { pod: '10.0.0.1:80', backendSessionId: 'C', initBody: null });
      if (opts.moved) await store.replacePin('C', 1, '10.0.0.2:80', 'B2');
      const metrics = newMetrics();
      const t = new TaskAnswer({ store, log: silentLog, metrics });
      await t.handle(
        requestHeaders({
          ':method': 'POST',
          ':path': '/mcp',
          'mcp-session-id': opts.client ? 'B2' : 'C',
          ...(opts.client ? { 'x-mcp-pin-client-session': opts.client } : {}),
        }),
      );
      const [h] = await t.handle(responseHeaders({ ':status': opts.status ?? '200', 'content-type': opts.contentType ?? 'application/json' }));
      const out: (Buffer | undefined)[] = [];
      for (const [i, body] of opts.chunks.entries()) {
        if (t.complete) break;
        const [r] = await t.handle({ request: 'response_body', response_body: { body, end_of_stream: i === opts.chunks.length - 1 } });
        out.push(r!.response_body?.response?.body_mutation?.body);
      }
      const count = (await metrics.registry.getSingleMetric('mcp_pin_lost_tasks_total')!.get()).values[0]?.value ?? 0;
      return { out, headerMutation: h!.response_headers?.response?.header_mutation, mode: h!.mode_override, count, complete: t.complete };
    }

    it('explains the "Task not found" of a session mcp-pin moved, once, under the client\'s own id; counts it', async () => {
      const r = await run({ moved: true, client: 'C', chunks: [json(TS_NOT_FOUND)] });
      expect(JSON.parse(r.out[0]!.toString()).error.message).to.equal(LOST_TASK_MESSAGE);
      expect(r.headerMutation, 'its length may change').to.deep.equal({ remove_headers: ['content-length'] });
      expect(r.count).to.equal(1);
      expect(r.complete).to.equal(true);
    });

    it("passes the pod's answer untouched for a session never moved, a non-2xx answer, a body that is neither JSON nor SSE", async () => {
      expect((await run({ moved: false, chunks: [json(TS_NOT_FOUND)] })).out).to.deep.equal([undefined]);
      const refused = await run({ moved: true, status: '404', chunks: [json(TS_NOT_FOUND)] });
      expect(refused.mode).to.deep.equal({ response_body_mode: 'NONE' });
      expect(refused.complete).to.equal(true);
      expect((await run({ moved: true, contentType: 'text/plain', chunks: [json(TS_NOT_FOUND)] })).mode).to.deep.equal({ response_body_mode: 'NONE' });
      expect((await run({ moved: true, chunks: [json({ jsonrpc: '2.0', id: 7, result: {} })] })).count).to.equal(0);
    });

    it("a streamed answer: each piece passes on; a store that cannot answer leaves the pod's answer as it is", async () => {
      const r = await run({
        moved: true,
        contentType: 'text/event-stream',
        chunks: [Buffer.from('event: message\n'), Buffer.from(`data: ${JSON.stringify(TS_NOT_FOUND)}\n\n`), Buffer.from('')],
      });
      expect(r.out[0]).to.equal(undefined);
      expect(r.out[1]!.toString()).to.include(LOST_TASK_MESSAGE);
      expect(r.out[2]).to.equal(undefined);
      const store = new MemoryStore({ sessionTtlMs: 60_000 });
      const failing = Object.assign(Object.create(store) as MemoryStore, { load: async () => Promise.reject(new Error('down')) });
      const t = new TaskAnswer({ store: failing, log: silentLog, metrics: newMetrics() });
      await t.handle(requestHeaders({ 'mcp-session-id': 'C' }));
      await t.handle(responseHeaders({ ':status': '200', 'content-type': 'application/json' }));
      const [out] = await t.handle({ request: 'response_body', response_body: { body: json(TS_NOT_FOUND), end_of_stream: true } });
      expect(out!.response_body).to.deep.equal({ response: {} });
    });

    it('explains one "Task not found" per answer (a stream that repeats it passes the rest as they are), and says so by the session\'s tag', async () => {
      const store = new MemoryStore({ sessionTtlMs: 60_000 });
      await store.create('client-7a', { pod: '10.0.0.1:80', backendSessionId: 'client-7a', initBody: null });
      await store.replacePin('client-7a', 1, '10.0.0.2:80', 'B2');
      const { log, lines } = capturedLog();
      const metrics = newMetrics();
      const t = new TaskAnswer({ store, log, metrics });
      await t.handle(requestHeaders({ 'mcp-session-id': 'B2', 'x-mcp-pin-client-session': 'client-7a' }));
      await t.handle(responseHeaders({ ':status': '200', 'content-type': 'text/event-stream' }));
      const sse = Buffer.from(`data: ${JSON.stringify(TS_NOT_FOUND)}\n\n`);
      const out = [];
      for (const [i, body] of [sse, sse, Buffer.alloc(0)].entries()) {
        const [r] = await t.handle({ request: 'response_body', response_body: { body, end_of_stream: i === 2 } });
        out.push(r!.response_body?.response?.body_mutation?.body?.toString());
      }
      expect(out[0]).to.include(LOST_TASK_MESSAGE);
      expect(out.slice(1)).to.deep.equal([undefined, undefined]);
      expect((await metrics.registry.getSingleMetric('mcp_pin_lost_tasks_total')!.get()).values[0]?.value).to.equal(1);
      expect(lines).to.have.length(1);
      expect(lines[0]).to.include({ level: LOG_LEVEL.info, session: sessionTag('client-7a') });
      expect(lines[0]!.msg).to.equal('a task of a moved session was not found on its new pod: the client is told it was lost with its pod');

      const failing = Object.assign(Object.create(store) as MemoryStore, { load: async () => Promise.reject(new Error('down')) });
      const quiet = capturedLog();
      const f = new TaskAnswer({ store: failing, log: quiet.log, metrics: newMetrics() });
      await f.handle(requestHeaders({ 'mcp-session-id': 'B2', 'x-mcp-pin-client-session': 'client-7a' }));
      await f.handle(responseHeaders({ ':status': '200', 'content-type': 'application/json' }));
      await f.handle({ request: 'response_body', response_body: { body: json(TS_NOT_FOUND), end_of_stream: true } });
      expect(quiet.lines).to.have.length(1);
      expect(quiet.lines[0]).to.include({ level: LOG_LEVEL.warn, session: sessionTag('client-7a'), err: 'down' });
      expect(quiet.lines[0]!.msg).to.match(/^could not read the session to explain a task not found/);
      expect(JSON.stringify([...lines, ...quiet.lines])).to.not.include('"client-7a"');
    });
  });
});
