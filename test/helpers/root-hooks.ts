/**
 * Mocha root hooks: when a test fails, print the tail of every process log
 * registered for it (Envoy's access log included); after the run, kill every
 * child process still running, whatever happened.
 */
import type { ManagedProcess } from './process.js';
import { killAll } from './process.js';

// A promise rejected with no one to handle it is a bug the test run must
// show: rethrown, it fails the test that was running (mocha reports it as
// an uncaught error).
process.on('unhandledRejection', (reason) => {
  throw reason instanceof Error ? reason : new Error(`unhandled rejection: ${String(reason)}`);
});

type Source = () => (ManagedProcess | undefined)[];
let sources: Source[] = [];
/** Unregistered during the current test: still reported if it fails (its own afterEach runs before ours). */
let leaving: Source[] = [];

/** Registers processes whose logs a failing test prints; returns the unregister function. */
export function registerForReport(src: Source): () => void {
  sources.push(src);
  return () => {
    sources = sources.filter((s) => s !== src);
    leaving.push(src);
  };
}

export const mochaHooks = {
  afterEach(this: Mocha.Context): void {
    const all = [...sources, ...leaving];
    leaving = [];
    if (this.currentTest?.state === 'failed') {
      for (const src of all) {
        for (const p of src()) {
          if (!p) continue;
          process.stderr.write(`\n----- ${p.name} (last output) -----\n${p.output.slice(-4000)}\n`);
        }
      }
    }
  },
  async afterAll(): Promise<void> {
    sources = [];
    leaving = [];
    await killAll();
  },
};
