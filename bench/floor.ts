/** Starting the floor server (floor-ext-proc.mjs, on the build) as a process, as the benchmark and the profiler do. */
import { ENVOY_DEFAULTS } from '../envoy/params.js';
import { PRODUCTION_NODE_ARGS } from '../test/helpers/mcp-pin.js';
import { ManagedProcess } from '../test/helpers/process.js';

const FLOOR = new URL('./floor-ext-proc.mjs', import.meta.url).pathname;

/** The floor server on `port`, pinning every request to `pod` (host:port) in the template's pin header (the pinned route, as mcp-pin's requests take), with mcp-pin's node flags (and `nodeArgs`, e.g. --cpu-prof). */
export async function startFloor(port: number, pod: string, nodeArgs: string[] = []): Promise<ManagedProcess> {
  const proc = new ManagedProcess('floor-ext-proc', process.execPath, [...nodeArgs, ...PRODUCTION_NODE_ARGS, FLOOR], {
    FLOOR_LISTEN: `127.0.0.1:${port}`,
    FLOOR_POD: pod,
    FLOOR_PIN_HEADER: ENVOY_DEFAULTS.pinHeader,
  }).start();
  await proc.waitForJson((o) => o.ready === true, 20_000);
  return proc;
}
