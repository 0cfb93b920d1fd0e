/**
 * Issue 29: the state a client set in its session survives a recovery. Real
 * Envoy, mcp-pin, SDK pods and the TypeScript SDK client: the client
 * subscribes to a resource (and to another, then unsubscribes from it) and
 * sets its log level; its pod restarts; after its next request, or with
 * only its GET stream open, the pod that took the session over sends it
 * notifications/resources/updated for the resource it subscribed to, none
 * for the one it left, and log messages at its level only.
 */
import { expect } from 'chai';
import { LoggingMessageNotificationSchema, ResourceUpdatedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { connectClient, type TestClient } from '../helpers/mcp-client.js';
import { eventually } from '../helpers/net.js';
import type { Pod } from '../helpers/pod.js';
import { stackPerTest } from '../helpers/stack-fixture.js';

interface Heard {
  updates: string[];
  logs: string[];
}

/** A client that subscribed to demo://counter (and left demo://other) and logs at warning and above. */
async function clientWithState(client: () => Promise<TestClient>): Promise<{ c: TestClient; heard: Heard }> {
  const c = await client();
  const heard: Heard = { updates: [], logs: [] };
  c.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void heard.updates.push(n.params.uri));
  c.client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void heard.logs.push(String(n.params.data)));
  await c.client.subscribeResource({ uri: 'demo://counter' });
  await c.client.subscribeResource({ uri: 'demo://other' });
  await c.client.unsubscribeResource({ uri: 'demo://other' });
  await c.client.setLoggingLevel('warning');
  return { c, heard };
}

/** What `pod` sends this client now: an update of each resource, and a log line at info and at error. */
async function expectStateOn(pod: Pod, heard: Heard, what: string): Promise<void> {
  heard.updates.length = 0;
  heard.logs.length = 0;
  // Its GET stream is (re)opened when the client gets to it: until a notification arrives.
  await eventually(async () => {
    await pod.touch('demo://other');
    await pod.log('info');
    await pod.touch('demo://counter');
    await pod.log('error');
    return heard.updates.includes('demo://counter') && heard.logs.includes(`error from ${pod.name}`);
  }, `${what}: ${pod.name} notifies the client`, 20_000, 250);
  expect(heard.updates, `${what}: subscribed to demo://counter only`).to.not.include('demo://other');
  expect(heard.logs.filter((l) => l.startsWith('info')), `${what}: nothing below its level`).to.deep.equal([]);
}

describe('session state survives recovery (issue 29)', function () {
  this.timeout(90_000);
  const fx = stackPerTest();

  it('after its pod restarts and the next request recovers the session, the new pod holds its subscription and its log level', async () => {
    const stack = await fx.start({ pods: 2 });
    const { c, heard } = await clientWithState(() => fx.client());
    const home = stack.podByName((await c.whoami()).pod);
    await expectStateOn(home, heard, 'before');
    await home.restartInPlace();
    const now = stack.podByName((await c.whoami()).pod);
    expect(now.name, 'recovered on the other pod').to.not.equal(home.name);
    await expectStateOn(now, heard, 'after the recovery');
    expect(await stack.pins[0]!.metric('mcp_pin_state_replays_total{result="replayed"}')).to.equal(2);
  });

  it('with only its GET stream open (no request), the stream comes back on the new pod with the state in place', async () => {
    const stack = await fx.start({ pods: 2 });
    const { c, heard } = await clientWithState(() => fx.client());
    const home = stack.podByName((await c.whoami()).pod);
    await expectStateOn(home, heard, 'before');
    await home.restartInPlace();
    // No request: the client's own GET reconnect drives the recovery (Envoy retries it on the other pod).
    const other = stack.pods.find((p) => p !== home)!;
    await expectStateOn(other, heard, 'after the GET stream came back');
  });
});
