/**
 * The commands of the generated schedules (fast-check model-based testing):
 * client requests, cancellations, pod events, DELETEs, each followed by some
 * steps of the world. Shared by every protocol property, so a schedule means
 * the same thing wherever it runs.
 */
import fc from 'fast-check';
import { type Coverage, MCP_PATH, PODS, SLOW_MS, type Kind, World } from './world.js';

export interface Model {
  requests: number;
}

type Cmd = fc.AsyncCommand<Model, World>;

class Request implements Cmd {
  constructor(
    readonly client: number,
    readonly kind: Kind,
    readonly hostPicks: number[],
    readonly steps: number,
  ) {}
  check = (): boolean => true;
  async run(m: Model, w: World): Promise<void> {
    m.requests++;
    w.request(w.clients[this.client % w.clients.length]!, this.kind, this.hostPicks);
    await w.step(this.steps);
  }
  toString = (): string => `request(c${this.client}, ${this.kind}, hosts ${this.hostPicks.join('/')}, then ${this.steps} steps)`;
}

class Cancel implements Cmd {
  constructor(
    readonly which: number,
    readonly steps: number,
  ) {}
  check = (m: Readonly<Model>): boolean => m.requests > 0;
  async run(_m: Model, w: World): Promise<void> {
    const open = w.requests.filter((r) => !r.answer && !r.abort.signal.aborted);
    open[this.which % Math.max(1, open.length)]?.abort.abort();
    await w.step(this.steps);
  }
  toString = (): string => `cancel(#${this.which}, then ${this.steps} steps)`;
}

class PodEvent implements Cmd {
  constructor(
    readonly pod: number,
    readonly what: 'kill' | 'start' | 'restart' | 'init-500-once' | 'init-400' | 'reset-next',
    readonly steps: number,
  ) {}
  check = (): boolean => true;
  async run(_m: Model, w: World): Promise<void> {
    const p = PODS[this.pod % PODS.length]!;
    if (this.what === 'kill') w.kill(p);
    else if (this.what === 'start') w.start(p);
    else if (this.what === 'restart') w.restartInPlace(p);
    else w.fault(p, this.what);
    await w.step(this.steps);
  }
  toString = (): string => `${this.what}(${PODS[this.pod % PODS.length]}, then ${this.steps} steps)`;
}

class Delete implements Cmd {
  constructor(
    readonly client: number,
    readonly steps: number,
    readonly path: string = MCP_PATH,
  ) {}
  check = (): boolean => true;
  async run(_m: Model, w: World): Promise<void> {
    void w.delete(w.clients[this.client % w.clients.length]!, this.path);
    await w.step(this.steps);
  }
  toString = (): string => `delete(c${this.client}${this.path === MCP_PATH ? '' : ` ${this.path}`}, then ${this.steps} steps)`;
}

/** What the wider world (issue 28 item 3) adds to a pod: slowness, overload (503 for BUSY_MS), leaving and rejoining discovery. */
class WiderPodEvent implements Cmd {
  constructor(
    readonly pod: number,
    readonly what: 'slow' | 'busy' | 'unlist' | 'list',
    readonly slow: number,
    readonly steps: number,
  ) {}
  check = (): boolean => true;
  async run(_m: Model, w: World): Promise<void> {
    const p = PODS[this.pod % PODS.length]!;
    if (this.what === 'unlist' || this.what === 'list') w.list(p, this.what === 'list');
    else w.fault(p, this.what === 'busy' ? 'busy' : { slowMs: SLOW_MS[this.slow % SLOW_MS.length]! });
    await w.step(this.steps);
  }
  toString = (): string =>
    `${this.what}(${PODS[this.pod % PODS.length]}${this.what === 'slow' ? ` ${SLOW_MS[this.slow % SLOW_MS.length]} ms` : ''}, then ${this.steps} steps)`;
}

/** An mcp-pin replica dies mid-stream and starts again: its open streams fail, its locks stay until their TTL. */
class ReplicaCrash implements Cmd {
  constructor(
    readonly slot: number,
    readonly steps: number,
  ) {}
  check = (): boolean => true;
  async run(_m: Model, w: World): Promise<void> {
    w.crashReplica(this.slot);
    await w.step(this.steps);
  }
  toString = (): string => `crash-replica(${this.slot}, then ${this.steps} steps)`;
}

/** The store loses everything (Redis restarted without persistence). */
class StoreFlush implements Cmd {
  constructor(readonly steps: number) {}
  check = (): boolean => true;
  async run(_m: Model, w: World): Promise<void> {
    await w.flushStore();
    await w.step(this.steps);
  }
  toString = (): string => `flush-store(then ${this.steps} steps)`;
}

/** The whole machine stops for a while: every timer due meanwhile fires late, at once. */
class Stall implements Cmd {
  constructor(
    readonly ms: number,
    readonly steps: number,
  ) {}
  check = (): boolean => true;
  async run(_m: Model, w: World): Promise<void> {
    w.stall(this.ms);
    await w.step(this.steps);
  }
  toString = (): string => `stall(${this.ms} ms, then ${this.steps} steps)`;
}

const steps = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 12 }));
const requestOf = (kinds: Kind[]) =>
  fc
    .tuple(fc.nat(2), fc.constantFrom<Kind>(...kinds), fc.array(fc.nat(5), { minLength: 4, maxLength: 4 }), steps)
    .map(([c, k, h, n]) => new Request(c, k, h, n));
const request = requestOf(['call', 'call', 'slow-call', 'slow-call', 'read', 'typo']);
/** With the client's GET stream too (its reconnects after a pod or a recovery ended it). */
const requestOrGet = requestOf(['call', 'call', 'slow-call', 'slow-call', 'read', 'typo', 'get']);
const podEvent = fc
  .tuple(
    fc.nat(2),
    fc.constantFrom('kill', 'kill', 'start', 'restart', 'restart', 'restart', 'init-500-once', 'init-400', 'reset-next') as fc.Arbitrary<PodEvent['what']>,
    steps,
  )
  .map(([p, what, n]) => new PodEvent(p, what, n));
// Requests weigh most: recoveries, joins and relays need several in flight at once.
export const commands = fc.commands(
  [
    request,
    request,
    request,
    podEvent,
    podEvent,
    fc.tuple(fc.nat(5), steps).map(([i, n]) => new Cancel(i, n)),
    fc.tuple(fc.nat(2), steps).map(([c, n]) => new Delete(c, n)),
  ],
  { maxCommands: 12 },
);

/**
 * The wider world (issue 28 item 3), a generator of its own so the schedules
 * above keep their seeds: everything above, and pods that are slow (past
 * Envoy's message timeout, the recovery's deadline, the lock's TTL: SLOW_MS,
 * from what ships), overloaded, or out of discovery; stalls of the machine;
 * DELETEs of a wrong path; up to 24 commands.
 */
const widerPodEvent = fc
  .tuple(
    fc.nat(2),
    fc.constantFrom('slow', 'slow', 'busy', 'unlist', 'unlist', 'list') as fc.Arbitrary<WiderPodEvent['what']>,
    fc.nat(SLOW_MS.length - 1),
    steps,
  )
  .map(([p, what, slow, n]) => new WiderPodEvent(p, what, slow, n));
const stall = fc.tuple(fc.constantFrom(500, 2_000, 12_000), steps).map(([ms, n]) => new Stall(ms, n));
const wider = [
  request,
  request,
  request,
  request,
  podEvent,
  podEvent,
  widerPodEvent,
  widerPodEvent,
  stall,
  fc.tuple(fc.nat(5), steps).map(([i, n]) => new Cancel(i, n)),
  fc.tuple(fc.nat(2), steps, fc.constantFrom(MCP_PATH, MCP_PATH, '/typo')).map(([c, n, path]) => new Delete(c, n, path)),
];
export const widerCommands = fc.commands(wider, { maxCommands: 24 });

/**
 * The wider world with restarts: mcp-pin replicas that die mid-stream and
 * start again, and a store that loses everything (a generator of its own:
 * the one above keeps its seeds).
 */
export const widerCommandsWithRestarts = fc.commands(
  [...wider, requestOrGet, requestOrGet, fc.tuple(fc.nat(1), steps).map(([r, n]) => new ReplicaCrash(r, n)), steps.map((n) => new StoreFlush(n))],
  { maxCommands: 24 },
);

/**
 * One property over a generator: one or two clients, a third of the runs with
 * a 1 s pin cache, each schedule run to its end and checked (World.runSchedule);
 * `coverage` adds up what the runs exercised. `rememberUnknown`: the
 * replicas keep --unknown-session-cache-ms (worlds whose store is flushed).
 */
export const scheduleProperty = (generator: typeof commands, coverage: Coverage, rememberUnknown = false) =>
  fc.asyncProperty(fc.scheduler(), generator, fc.integer({ min: 1, max: 2 }), fc.constantFrom(0, 0, 1000), async (s, cmds, clientCount, pinCacheMs) => {
    const w = new World(
      s,
      Array.from({ length: clientCount }, (_, i) => `c${i}`),
      { pinCacheMs, rememberUnknown },
    );
    await w.runSchedule(
      () => fc.asyncModelRun(() => ({ model: { requests: 0 }, real: w }), cmds),
      (run) => coverage.add(run),
    );
  });
