import { expect } from 'chai';
import { ByteBudget } from '../../src/recovery/byte-budget.js';

describe('ByteBudget: the bytes every relay shares', () => {
  it('grants up to its limit exactly, across leases, and refuses a take that would pass it without taking any of it', () => {
    const budget = new ByteBudget(100);
    const a = budget.lease();
    const b = budget.lease();
    expect(a.take(60)).to.equal(true);
    expect(b.take(41), 'one byte over').to.equal(false);
    expect(budget.inUse, 'a refused take holds nothing').to.equal(60);
    expect(budget.exhausted).to.equal(false);
    expect(b.take(40), 'to the limit exactly').to.equal(true);
    expect(budget.inUse).to.equal(100);
    expect(budget.exhausted).to.equal(true);
    expect(a.take(0), 'nothing more is always there').to.equal(true);
    expect(a.take(1)).to.equal(false);
  });

  it('gives back what a lease took, once', () => {
    const budget = new ByteBudget(100);
    const a = budget.lease();
    const b = budget.lease();
    a.take(30);
    a.take(20);
    b.take(10);
    a.release();
    expect(budget.inUse).to.equal(10);
    a.release();
    expect(budget.inUse, 'release is idempotent').to.equal(10);
    expect(a.take(90)).to.equal(true);
    b.release();
    expect(budget.inUse).to.equal(90);
  });
});
