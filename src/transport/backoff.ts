/**
 * Backoff is jittered exponential backoff between reconnect attempts: the ceiling doubles from min
 * to max, and each delay is drawn from [ceiling/2, ceiling] so that peers that lost a node at the
 * same moment do not redial it in lockstep, while the wait never drops to zero.
 */
export class Backoff {
  private ceilingMs: number;

  /** random returns a number in [0, 1); tests pass a fixed one. */
  constructor(
    private readonly minMs: number,
    private readonly maxMs: number,
    private readonly random: () => number = Math.random,
  ) {
    this.ceilingMs = minMs;
  }

  /** next returns the delay before the next attempt and doubles the ceiling for the one after. */
  next(): number {
    const delay = this.ceilingMs / 2 + this.random() * (this.ceilingMs / 2);
    this.ceilingMs = Math.min(this.ceilingMs * 2, this.maxMs);
    return Math.round(delay);
  }

  /** reset starts again from the minimum, after a connection was accepted. */
  reset(): void {
    this.ceilingMs = this.minMs;
  }

  /** saturate jumps to the maximum, after a refusal that will not fix itself within milliseconds. */
  saturate(): void {
    this.ceilingMs = this.maxMs;
  }
}
