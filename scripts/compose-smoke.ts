/**
 * The compose stack's `tests` service: an MCP SDK client against Envoy on the
 * compose network (MCP_URL, default http://envoy:10000/mcp). Initializes,
 * checks that 20 tool calls stay on the pod that answered initialize,
 * that a forged pin header changes nothing, and ends the session. Exit 0
 * when all held. (The full integration suite starts its own processes and
 * runs with `npm test`.)
 */
import { connectClient } from '../test/helpers/mcp-client.js';

const url = process.env.MCP_URL ?? 'http://envoy:10000/mcp';

async function main(): Promise<void> {
  const deadline = Date.now() + 60_000;
  let client: Awaited<ReturnType<typeof connectClient>>;
  for (;;) {
    try {
      client = await connectClient(url, { name: 'compose-smoke' });
      break;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  const home = (await client.whoami()).pod;
  for (let i = 0; i < 20; i++) {
    const r = await client.echo(`call ${i}`);
    if (r.pod !== home) throw new Error(`call ${i} answered by ${r.pod}, session pinned to ${home}`);
  }
  const forged = await connectClient(url, { name: 'compose-smoke-forged', headers: { 'x-mcp-pin-dst': '172.28.0.5:6379' } });
  const forgedHome = (await forged.whoami()).pod;
  if ((await forged.echo('forged')).pod !== forgedHome) throw new Error('forged pin header moved the session');
  await forged.transport.terminateSession();
  await client.transport.terminateSession();
  await Promise.all([client.close(), forged.close()]);
  process.stdout.write(`compose smoke: session pinned to ${home}, 20 calls on it; forged header ignored\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`compose smoke failed: ${(err as Error)?.stack ?? String(err)}\n`);
  process.exit(1);
});
