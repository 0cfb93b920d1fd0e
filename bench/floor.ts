/** Starting the floor server (floor-ext-proc.ts) as a process, as the benchmark and the profiler do. */
import { PRODUCTION_NODE_ARGS } from '../test/helpers/mcp-pin.js';
import { ManagedProcess } from '../test/helpers/process.js';

const FLOOR = new URL('./floor-ext-proc.ts', import.meta.url).pathname;

/** The floor server on `port`, pinning every request to `pod` (host:port), with mcp-pin's node flags (and `nodeArgs`, e.g. --cpu-prof). */
export async function startFloor(port: number, pod: string, nodeArgs: string[] = []): Promise<ManagedProcess> {
  const proc = new ManagedProcess('floor-ext-proc', process.execPath, [...nodeArgs, ...PRODUCTION_NODE_ARGS, '--import', 'tsx', FLOOR], { FLOOR_LISTEN: `127.0.0.1:${port}`, FLOOR_POD: pod }).start();
  await proc.waitForJson((o) => o.ready === true, 20_000);
  return proc;
}
