/**
 * The recovery protocol's invariants (docs/recovery-protocol.md), checked
 * over generated interleavings: fast-check's model-based commands drive a
 * simulated deployment (world.ts: two mcp-pin replicas running the real
 * code over one store, three pods, Envoy's retry rules) through client
 * requests, cancellations, pod crashes and restarts and pod faults, while its
 * scheduler picks the order in which every store answer and pod answer
 * arrives, and a virtual clock moves only when nothing else can happen.
 *
 * A failure prints the seed and path; `PROTOCOL_SEED=<seed> PROTOCOL_PATH=<path>`
 * replays exactly that schedule. Every schedule that once failed stays below
 * as a fixed regression case.
 */
import { expect } from 'chai';
import fc from 'fast-check';
import { commands, scheduleProperty } from './commands.js';
import { Coverage, World } from './world.js';

const coverage = new Coverage();

const property = scheduleProperty(commands, coverage);

/** Schedules that once failed: replayed on every run. */
const REGRESSIONS: { seed: number; path: string; why: string }[] = [
  // Found with each fix reverted (docs/recovery-protocol.md, "How the invariants are checked"); the run
  // as generated (before shrinking), replayed from its seed.
  { seed: 1406643387, path: '372', why: 'harm 1: a client leaving mid re-initialize deleted its record (I5)' },
  { seed: -421683118, path: '229', why: "harm 2: a relayed slow call cut by Envoy's message timeout after it ran (I2)" },
  { seed: 1044374173, path: '135', why: 'harm 3: a joiner lost "not lost" and its request reached the pod 3 times (I1)' },
  { seed: 268153329, path: '4032', why: 'a relay to a moved session whose pod then proved to hold it was sent there a third time (I1)' },
  { seed: -882874411, path: '12', why: "harm 4: the proof of loss at the request's own path re-initialized a session its pod held (I6)" },
  {
    seed: 1667843080,
    path: '3323',
    why: 'a redirected request named its session by the backend id its failed attempt used: told its live session was gone (A1)',
  },
  {
    seed: 455932358,
    path: '13375',
    why: 'a pod that proved it held the session restarted before the relay back, and a retry sent toward a newer pin met a pod that had lost it: the client was told its recoverable session was gone (A1)',
  },
  {
    seed: 2139550954,
    path: '160',
    why: "a request Envoy had started again was relayed twice, and both pods had lost the session meanwhile: the second pod's 404 told the client its recoverable session was gone (A1)",
  },
];

describe('recovery protocol: invariants over generated interleavings', function () {
  this.timeout(120_000);
  const numRuns = Number(process.env.PROTOCOL_RUNS ?? 10_000);

  it(`holds I1-I7 and A1 over ${numRuns} generated schedules (two replicas, three pods, crashes, restarts, faults, cancellations)`, async () => {
    const seed = process.env.PROTOCOL_SEED ? Number(process.env.PROTOCOL_SEED) : undefined;
    const path = process.env.PROTOCOL_PATH;
    const started = Date.now();
    await fc.assert(property, { numRuns, ...(seed !== undefined ? { seed } : {}), ...(path ? { path, endOnFailure: true } : {}) });
    console.log(`      ${numRuns} schedules in ${((Date.now() - started) / 1000).toFixed(1)} s; runs that exercised: ${coverage.toString()}`);
    // The generator reaches every case the invariants are about (checked, not assumed).
    if (!seed && !path && numRuns >= 1000) {
      for (const k of [
        're-initialize',
        'redirected to a moved session',
        'slow call redirected to a moved session',
        'relay to a moved session',
        'relay back (not lost)',
        'client left',
        'slow relayed call',
        'mcp-pin error mcp_pin_recovery_unavailable',
        'mcp-pin error mcp_pin_recovery_failed',
      ]) {
        expect(coverage.counts[k] ?? 0, `runs that exercised "${k}"`).to.be.greaterThan(numRuns / 1000);
      }
    }
  });

  for (const r of REGRESSIONS) {
    it(`regression: ${r.why} (seed ${r.seed})`, async () => {
      await fc.assert(property, { seed: r.seed, path: r.path });
    });
  }

  it('a violation is reported, not swallowed: a world that breaks I5 by hand fails the check', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), async (s) => {
        const w = new World(s, ['c0']);
        await w.seed();
        // Drop the record behind the protocol's back.
        await (w as unknown as { shared: { remove(id: string): Promise<void> } }).shared.remove('c0');
        await w.checkRecords();
        await w.close();
        expect(w.violations.map((v) => v.invariant)).to.deep.equal(['I5']);
      }),
      { numRuns: 1 },
    );
  });

  it('I3/I5 hold for a client that sends DELETE, up to its DELETE: a record dropped before it is reported', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), async (s) => {
        const w = new World(s, ['c0']);
        await w.seed();
        await (w as unknown as { shared: { remove(id: string): Promise<void> } }).shared.remove('c0');
        const deleted = w.delete('c0');
        await w.settle();
        await deleted;
        await w.checkRecords();
        await w.close();
        expect(w.violations.map((v) => `${v.invariant}: ${v.detail}`)).to.deep.equal(['I5: c0: record removed before its DELETE, without proof']);
      }),
      { numRuns: 1 },
    );
  });
});
