/** mcp-pin as a real process (src/main.ts), as Envoy would talk to it. */
import { ManagedProcess } from './process.js';

const MAIN = new URL('../../src/main.ts', import.meta.url).pathname;
const BUILT = new URL('../../dist/src/main.js', import.meta.url).pathname;

/**
 * The node flags the image runs mcp-pin with (Dockerfile ENTRYPOINT; a
 * packaging test keeps the two equal): V8's young generation capped at
 * 2 x 8 MB instead of growing to 32 MB under load. Measured with
 * bench:profile: about 15 MB less RSS, no measurable CPU cost.
 */
export const PRODUCTION_NODE_ARGS = ['--max-semi-space-size=8'];

export class McpPinProcess {
  proc!: ManagedProcess;
  metricsPort = 0;

  constructor(
    readonly name: string,
    /** 0: bind any free port and report it; a restart binds the port it got, as a fixed-port replica would. */
    public port: number,
    private readonly env: Record<string, string>,
    /** Extra node flags, e.g. --cpu-prof for profiling. */
    private readonly nodeArgs: string[] = [],
    /**
     * 'dist' runs the compiled build (npm run build) with the image's node
     * flags, as production does; tests run the sources; { main } runs another
     * build the same way as 'dist' (the benchmark's before/after runs).
     */
    private readonly entry: 'src' | 'dist' | { main: string } = 'src',
  ) {}

  async start(extraEnv: Record<string, string> = {}): Promise<this> {
    const entry = this.entry === 'src' ? ['--import', 'tsx', MAIN] : [...PRODUCTION_NODE_ARGS, this.entry === 'dist' ? BUILT : this.entry.main];
    this.proc = new ManagedProcess(this.name, process.execPath, [...this.nodeArgs, ...entry], {
      MCP_PIN_LISTEN: `127.0.0.1:${this.port}`,
      MCP_PIN_METRICS_LISTEN: '127.0.0.1:0',
      MCP_PIN_LOG_LEVEL: 'info',
      ...this.env,
      ...extraEnv,
    }).start();
    const ready = await this.proc.waitForJson((o) => o.ready === true, 20_000);
    this.metricsPort = Number(ready.metricsPort);
    this.port = Number(ready.grpcPort);
    return this;
  }

  async metrics(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
  }

  /** Value of one sample line, e.g. metric('mcp_pin_requests_total{outcome="pinned"}'). */
  async metric(sample: string): Promise<number> {
    const text = await this.metrics();
    for (const line of text.split('\n')) if (line.startsWith(`${sample} `)) return Number(line.slice(sample.length + 1));
    return 0;
  }

  async stop(): Promise<void> {
    await this.proc?.stop(15_000);
  }

  async kill(): Promise<void> {
    await this.proc?.kill();
  }

  async restart(extraEnv: Record<string, string> = {}): Promise<void> {
    await this.kill();
    await this.start(extraEnv);
  }
}
