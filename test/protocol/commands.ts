/**
 * The commands of the generated schedules (fast-check model-based testing):
 * client requests, cancellations, pod events, DELETEs, each followed by some
 * steps of the world. Shared by every protocol property, so a schedule means
 * the same thing wherever it runs.
 */
import fc from 'fast-check';
import { PODS, type Kind, type World } from './world.js';

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
  ) {}
  check = (): boolean => true;
  async run(_m: Model, w: World): Promise<void> {
    void w.delete(w.clients[this.client % w.clients.length]!);
    await w.step(this.steps);
  }
  toString = (): string => `delete(c${this.client}, then ${this.steps} steps)`;
}

const steps = fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 12 }));
const request = fc
  .tuple(fc.nat(2), fc.constantFrom<Kind>('call', 'call', 'slow-call', 'slow-call', 'read', 'typo'), fc.array(fc.nat(5), { minLength: 4, maxLength: 4 }), steps)
  .map(([c, k, h, n]) => new Request(c, k, h, n));
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
