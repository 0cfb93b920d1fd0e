import { expect } from 'chai';
import { PassThrough } from 'node:stream';
import { isMet, judged, printTargets, type Target } from '../../bench/targets.js';

describe('bench targets: one entry prints and judges (issue 31 item 3)', () => {
  const at = (value: number, op: Target['op'], limit: number): Target => ({ text: 'x', value, op, limit });

  it('judges on the unrounded value, at the limit inclusive', () => {
    expect(isMet(at(0.95, '>=', 0.95))).to.equal(true);
    expect(isMet(at(0.9499, '>=', 0.95))).to.equal(false);
    expect(isMet(at(1.15, '<=', 1.15))).to.equal(true);
    expect(isMet(at(1.1501, '<=', 1.15))).to.equal(false);
  });

  it('prints the limit it judged against, and the results JSON keeps the same line', () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    const t: Target = { text: 'mcp-pin c=64, share of the floor', value: 0.93249, op: '>=', limit: 0.95 };
    printTargets([t], out);
    expect(text).to.equal('\nTargets\n- NOT MET mcp-pin c=64, share of the floor >= 0.95: 0.932\n');
    expect(judged(t)).to.deep.equal({ target: 'mcp-pin c=64, share of the floor >= 0.95', value: 0.93249, met: false });
  });
});
