/**
 * One budget of bytes shared by every relay in this process: a relayed answer
 * is held whole before it goes to the client, so many large ones at once
 * could fill memory. Each relay reads under a lease and gives it back when
 * its answer has been handed on.
 */
export class ByteBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  get inUse(): number {
    return this.used;
  }

  get exhausted(): boolean {
    return this.used >= this.limit;
  }

  lease(): Lease {
    let held = 0;
    return {
      take: (n: number): boolean => {
        if (this.used + n > this.limit) return false;
        this.used += n;
        held += n;
        return true;
      },
      release: (): void => {
        this.used -= held;
        held = 0;
      },
    };
  }
}

export interface Lease {
  /** Takes n more bytes; false (nothing taken) when the budget has not that much left. */
  take(n: number): boolean;
  /** Gives back everything this lease took. Idempotent. */
  release(): void;
}
