/**
 * Issue 29: the state a client set in its session survives a recovery. Real
 * Envoy, mcp-pin and SDK pods, and an SDK client: it subscribes to a
 * resource (and to another, then unsubscribes from it) and sets its log
 * level; its pod restarts; after its next request, or with only its GET
 * stream open, the pod that took the session over sends it
 * notifications/resources/updated for the resource it subscribed to, none
 * for the one it left, and log messages at its level only. TypeScript and
 * Python clients, TypeScript and Python pods.
 */
import { expect } from 'chai';
import {
  CreateTaskResultSchema,
  ErrorCode,
  GetTaskResultSchema,
  LoggingMessageNotificationSchema,
  McpError,
  ResourceUpdatedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { LOST_TASK_MESSAGE, LOST_TASK_REASON } from '../../src/lost-task.js';
import type { TestClient } from '../helpers/mcp-client.js';
import { eventually } from '../helpers/net.js';
import type { Pod, PodKind } from '../helpers/pod.js';
import { connectPythonClient, type PythonClient } from '../helpers/python-client.js';
import { stackPerTest } from '../helpers/stack-fixture.js';
import type { Stack } from '../helpers/stack.js';

interface Heard {
  updates: string[];
  logs: string[];
}

/** A client as these tests use it, whichever SDK it is. */
interface StatefulClient {
  whoami(): Promise<{ pod: string }>;
  heard(): Promise<Heard>;
  forget(): Promise<void>;
}

/** Subscribed to demo://counter (and left demo://other), logging at warning and above. */
async function tsClientWithState(client: () => Promise<TestClient>): Promise<StatefulClient> {
  const c = await client();
  const heard: Heard = { updates: [], logs: [] };
  c.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void heard.updates.push(n.params.uri));
  c.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void heard.logs.push(String(n.params.data)));
  await c.client.subscribeResource({ uri: 'demo://counter' });
  await c.client.subscribeResource({ uri: 'demo://other' });
  await c.client.unsubscribeResource({ uri: 'demo://other' });
  await c.client.setLoggingLevel('warning');
  return {
    whoami: () => c.whoami(),
    heard: async () => ({ updates: [...heard.updates], logs: [...heard.logs] }),
    forget: async () => {
      heard.updates.length = 0;
      heard.logs.length = 0;
    },
  };
}

async function pythonClientWithState(stack: Stack, opened: PythonClient[]): Promise<StatefulClient> {
  const c = await connectPythonClient(stack.mcpUrl);
  opened.push(c);
  await c.subscribe('demo://counter');
  await c.subscribe('demo://other');
  await c.unsubscribe('demo://other');
  await c.setLevel('warning');
  return c;
}

/** What `pod` sends this client now: an update of each resource, and a log line at info and at error. */
async function expectStateOn(pod: Pod, c: StatefulClient, what: string): Promise<void> {
  await c.forget();
  let heard: Heard = { updates: [], logs: [] };
  // Its GET stream is (re)opened when the client gets to it: until a notification arrives.
  await eventually(
    async () => {
      await pod.touch('demo://other');
      await pod.log('info');
      await pod.touch('demo://counter');
      await pod.log('error');
      heard = await c.heard();
      return heard.updates.includes('demo://counter') && heard.logs.includes(`error from ${pod.name}`);
    },
    `${what}: ${pod.name} notifies the client`,
    20_000,
    250,
  );
  expect(heard.updates, `${what}: subscribed to demo://counter only`).to.not.include('demo://other');
  expect(
    heard.logs.filter((l) => l.startsWith('info')),
    `${what}: nothing below its level`,
  ).to.deep.equal([]);
}

describe('session state survives recovery (issue 29)', function () {
  this.timeout(90_000);
  const fx = stackPerTest();
  const python: PythonClient[] = [];
  afterEach(async () => {
    await Promise.all(python.splice(0).map((c) => c.close()));
  });

  /** The client's pod restarts; its next request recovers the session on the other pod. */
  async function afterNextRequest(stack: Stack, c: StatefulClient): Promise<void> {
    const home = stack.podByName((await c.whoami()).pod);
    await expectStateOn(home, c, 'before');
    await home.restartInPlace();
    const now = stack.podByName((await c.whoami()).pod);
    expect(now.name, 'recovered on the other pod').to.not.equal(home.name);
    await expectStateOn(now, c, 'after the recovery');
    expect(await stack.pins[0]!.metric('mcp_pin_state_replays_total{result="replayed"}'), 'the level and one subscription').to.equal(2);
  }

  for (const podKind of ['ts', 'python-1.30'] as PodKind[]) {
    it(`TypeScript client, ${podKind === 'ts' ? 'TypeScript' : 'Python (mcp 1.30)'} pods: after its pod restarts and the next request recovers the session, the new pod holds its subscription and its log level`, async () => {
      const stack = await fx.start({ pods: 2, podKind });
      await afterNextRequest(stack, await tsClientWithState(() => fx.client()));
    });
  }

  it('Python client (mcp 1.30), TypeScript pods: the same', async () => {
    const stack = await fx.start({ pods: 2 });
    await afterNextRequest(stack, await pythonClientWithState(stack, python));
  });

  it('with only its GET stream open (no request), the stream comes back on the new pod with the state in place', async () => {
    const stack = await fx.start({ pods: 2 });
    const c = await tsClientWithState(() => fx.client());
    const home = stack.podByName((await c.whoami()).pod);
    await expectStateOn(home, c, 'before');
    await home.restartInPlace();
    // No request: the client's own GET reconnect drives the recovery (Envoy retries it on the other pod).
    const other = stack.pods.find((p) => p !== home)!;
    await expectStateOn(other, c, 'after the GET stream came back');
  });
});

describe('a task lost with its pod gets a clear answer (issue 29)', function () {
  this.timeout(90_000);
  const fx = stackPerTest();

  for (const json of [false, true]) {
    it(`${json ? 'JSON' : 'SSE'} answers: after a recovery, tasks/get, tasks/result and tasks/cancel of a task that ran on the lost pod say so (the new pod's "Task not found", explained); a task started on the new pod is answered as the pod gives it`, async () => {
      const stack = await fx.start({ pods: 2, ...(json ? { podEnv: { POD_JSON: '1' } } : {}) });
      const c = await fx.client();
      const started = await c.client.request(
        { method: 'tools/call', params: { name: 'slow-task', arguments: { ms: 60_000 }, task: { ttl: 600_000 } } },
        CreateTaskResultSchema,
      );
      const taskId = started.task.taskId;
      // The pod that holds the session knows it, and the answer passes untouched.
      expect((await c.client.request({ method: 'tasks/get', params: { taskId } }, GetTaskResultSchema)).status).to.equal('working');
      const home = stack.podByName((await c.whoami()).pod);
      await home.restartInPlace();
      const now = stack.podByName((await c.whoami()).pod);
      expect(now.name, 'recovered on the other pod').to.not.equal(home.name);
      for (const method of ['tasks/get', 'tasks/result', 'tasks/cancel'] as const) {
        const err = await c.client.request({ method, params: { taskId } }, GetTaskResultSchema).then(
          () => null,
          (e: McpError) => e,
        );
        expect(err, method).to.be.instanceOf(McpError);
        expect(err!.code, `${method}: the pod's own code`).to.equal(ErrorCode.InvalidParams);
        expect(err!.message, method).to.include(LOST_TASK_MESSAGE);
        expect((err!.data as { mcpPin?: string }).mcpPin, method).to.equal(LOST_TASK_REASON);
      }
      expect(await stack.pins[0]!.metric('mcp_pin_lost_tasks_total'), 'counted').to.equal(3);
      // A task started after the move lives on the new pod: answered as the pod gives it.
      const fresh = await c.client.request(
        { method: 'tools/call', params: { name: 'slow-task', arguments: { ms: 100 }, task: { ttl: 600_000 } } },
        CreateTaskResultSchema,
      );
      await eventually(
        async () => (await c.client.request({ method: 'tasks/get', params: { taskId: fresh.task.taskId } }, GetTaskResultSchema)).status === 'completed',
        'the new task completes',
        10_000,
        50,
      );
      // A task id the new pod does not know, of a session never moved: the pod's own answer, untouched.
      const c2 = await fx.client();
      const unknown = await c2.client.request({ method: 'tasks/get', params: { taskId: 'no-such-task' } }, GetTaskResultSchema).then(
        () => null,
        (e: McpError) => e,
      );
      expect(unknown?.message).to.match(/Task not found/);
      expect(unknown?.message).to.not.include(LOST_TASK_MESSAGE);
    });
  }
});
