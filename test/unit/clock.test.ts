import { expect } from 'chai';
import { untilAborted } from '../../src/clock.js';

describe('untilAborted', () => {
  it('a wait given up on before it began leaves no unhandled rejection behind (the work it stopped waiting for may fail later)', async () => {
    const gone = new AbortController();
    gone.abort(new Error('client left'));
    const work = new Promise<never>((_resolve, reject) => setTimeout(() => reject(new Error('the work failed later')), 10));
    const err = await untilAborted(work, gone.signal).then(
      () => null,
      (e: Error) => e.message,
    );
    expect(err).to.equal('client left');
    // The work's own failure comes after; with no one listening it would be
    // an unhandled rejection, which the test run turns into a failure.
    await new Promise((r) => setTimeout(r, 30));
  });

  it('passes on the outcome when the signal does not abort, and stops waiting when it does', async () => {
    expect(await untilAborted(Promise.resolve(7), new AbortController().signal)).to.equal(7);
    const gone = new AbortController();
    const waiting = untilAborted(new Promise(() => {}), gone.signal);
    gone.abort(new Error('stop'));
    expect(
      await waiting.then(
        () => null,
        (e: Error) => e.message,
      ),
    ).to.equal('stop');
  });
});
