import { invariant } from "./errors.js";
import type { LogIndex } from "./types.js";

/**
 * Inflights is the window of appends sent to one follower and not yet acknowledged, bounded in
 * count and in bytes so that a slow follower cannot make the leader buffer without limit.
 */
export class Inflights {
  private readonly lastIndexes: LogIndex[] = [];
  private readonly sizes: number[] = [];
  private bytes = 0;

  constructor(
    private readonly countMax: number,
    private readonly bytesMax: number,
  ) {}

  /** add records an append whose last entry is lastIndex. Invariant: indexes only grow. */
  add(lastIndex: LogIndex, bytes: number): void {
    invariant(!this.full(), "inflights: add while full");
    const prev = this.lastIndexes[this.lastIndexes.length - 1];
    invariant(prev === undefined || lastIndex > prev, () => `inflights: ${lastIndex} after ${prev}`);
    this.lastIndexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  /** freeLE frees every append whose last index is <= index. */
  freeLE(index: LogIndex): void {
    let n = 0;
    while (n < this.lastIndexes.length && (this.lastIndexes[n] ?? Number.POSITIVE_INFINITY) <= index) {
      this.bytes -= this.sizes[n] ?? 0;
      n++;
    }
    this.lastIndexes.splice(0, n);
    this.sizes.splice(0, n);
  }

  /** freeFirst frees the oldest append (a heartbeat response proves the follower is alive). */
  freeFirst(): void {
    const first = this.lastIndexes[0];
    if (first !== undefined) this.freeLE(first);
  }

  /** full says whether no further append may be sent. */
  full(): boolean {
    return this.lastIndexes.length >= this.countMax || this.bytes >= this.bytesMax;
  }

  /** count is the number of appends in flight. */
  count(): number {
    return this.lastIndexes.length;
  }

  /** reset forgets every append in flight. */
  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.bytes = 0;
  }
}
