/**
 * Invariant I8 (docs/recovery-protocol.md): after a recovery, the session's
 * pod holds every subscription and the log level the client set, as the
 * client last set them. Generated schedules over the simulated deployment
 * (world.ts: the real Exchange, AttemptExchange, StateRecorder and
 * recovery over one store, two replicas): each client sets its state one
 * request at a time (resources/subscribe, resources/unsubscribe,
 * logging/setLevel: the session-state route and its filter), while tool
 * calls of the same sessions run and pods die, restart and come back. Its
 * own generator, so the main interleavings test keeps its regression seeds.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { PODS, World, type Kind, type StateKind } from './world.js';

interface Model {
  /** Each client's last state request: the next waits for its answer (a client knows what it set only in order). */
  last: Map<number, { answer?: unknown }>;
  /** How many clients the world has (commands name them modulo this). */
  clients: number;
}
type Cmd = fc.AsyncCommand<Model, World>;

class SetState implements Cmd {
  constructor(
    readonly client: number,
    readonly kind: StateKind,
    readonly param: string,
    readonly hostPicks: number[],
    readonly steps: number,
  ) {}
  check = (m: Readonly<Model>): boolean => {
    const last = m.last.get(this.client % m.clients);
    return last === undefined || last.answer !== undefined;
  };
  async run(m: Model, w: World): Promise<void> {
    m.last.set(this.client % m.clients, w.request(w.clients[this.client % w.clients.length]!, this.kind, this.hostPicks, this.param));
    await w.step(this.steps);
  }
  toString = (): string => `${this.kind}(c${this.client}, ${this.param}, hosts ${this.hostPicks.join('/')}, then ${this.steps} steps)`;
}

class Call implements Cmd {
  constructor(
    readonly client: number,
    readonly kind: Kind,
    readonly hostPicks: number[],
    readonly steps: number,
  ) {}
  check = (): boolean => true;
  async run(_m: Model, w: World): Promise<void> {
    w.request(w.clients[this.client % w.clients.length]!, this.kind, this.hostPicks);
    await w.step(this.steps);
  }
  toString = (): string => `${this.kind}(c${this.client}, hosts ${this.hostPicks.join('/')}, then ${this.steps} steps)`;
}

class PodEvent implements Cmd {
  constructor(
    readonly pod: number,
    readonly what: 'kill' | 'start' | 'restart',
    readonly steps: number,
  ) {}
  check = (): boolean => true;
  async run(_m: Model, w: World): Promise<void> {
    const p = PODS[this.pod % PODS.length]!;
    if (this.what === 'kill') w.kill(p);
    else if (this.what === 'start') w.start(p);
    else w.restartInPlace(p);
    await w.step(this.steps);
  }
  toString = (): string => `${this.what}(${PODS[this.pod % PODS.length]}, then ${this.steps} steps)`;
}

const steps = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 12 }));
const hostPicks = fc.array(fc.nat(5), { minLength: 4, maxLength: 4 });
const setState = fc.oneof(
  fc
    .tuple(fc.nat(1), fc.constantFrom<StateKind>('subscribe', 'subscribe', 'unsubscribe'), fc.constantFrom('u1', 'u2', 'u3'), hostPicks, steps)
    .map(([c, k, u, h, n]) => new SetState(c, k, u, h, n)),
  fc.tuple(fc.nat(1), fc.constantFrom('debug', 'warning', 'error'), hostPicks, steps).map(([c, l, h, n]) => new SetState(c, 'set-level', l, h, n)),
);
const call = fc.tuple(fc.nat(1), fc.constantFrom<Kind>('call', 'read'), hostPicks, steps).map(([c, k, h, n]) => new Call(c, k, h, n));
const podEvent = fc
  .tuple(fc.nat(2), fc.constantFrom('kill', 'start', 'restart', 'restart') as fc.Arbitrary<PodEvent['what']>, steps)
  .map(([p, w, n]) => new PodEvent(p, w, n));
const commands = fc.commands([setState, setState, setState, call, podEvent, podEvent], { maxCommands: 16 });

let runs = 0;
let replayedRuns = 0;
const property = fc.asyncProperty(
  fc.scheduler(),
  commands,
  fc.integer({ min: 1, max: 2 }),
  fc.constantFrom(0, 1000),
  async (s, cmds, clientCount, pinCacheMs) => {
    const w = new World(
      s,
      Array.from({ length: clientCount }, (_, i) => `c${i}`),
      { pinCacheMs },
    );
    try {
      await w.seed();
      await fc.asyncModelRun(() => ({ model: { last: new Map(), clients: clientCount }, real: w }), cmds);
      // A last request of each client that recovers its session, with the state it set in place.
      for (const c of w.clients) w.request(c, 'call', [0, 0, 0, 0]);
      await w.settle();
      w.checkRequests();
      await w.checkRecords();
      await w.checkState();
      runs++;
      if (w.stateReplays > 0) replayedRuns++;
      w.throwIfViolated(s);
    } finally {
      await w.close();
    }
  },
);

describe('recovery protocol: session state (I8) over generated interleavings', function () {
  this.timeout(120_000);
  const numRuns = Number(process.env.PROTOCOL_RUNS ?? 3000);

  it(`holds I8 (and I1-I7, A1) over ${numRuns} generated schedules of state requests, calls and pod restarts`, async () => {
    const seed = process.env.PROTOCOL_SEED ? Number(process.env.PROTOCOL_SEED) : undefined;
    const path = process.env.PROTOCOL_PATH;
    await fc.assert(property, { numRuns, ...(seed !== undefined ? { seed } : {}), ...(path ? { path, endOnFailure: true } : {}) });
    console.log(`      ${runs} schedules; ${replayedRuns} recovered a session with state to replay`);
    if (!seed && !path && numRuns >= 1000) expect(replayedRuns, 'runs whose recovery replayed state').to.be.greaterThan(numRuns / 100);
  });
});
