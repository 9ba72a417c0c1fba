/**
 * BoundedQueue is a FIFO with a bound on items and on bytes, checked on every offer. It never
 * grows past its bounds: a full queue refuses the new item and the caller counts it as dropped.
 */
export class BoundedQueue<T> {
  // Items before `head` are already taken; they are cut off once they are half the array, so
  // taking is O(1) amortized without a ring buffer's index arithmetic.
  private items: { value: T; bytes: number }[] = [];
  private head = 0;
  private bytesQueued = 0;

  /** length is the number of items waiting. */
  get length(): number {
    return this.items.length - this.head;
  }

  /** bytes is the sum of the waiting items' sizes. */
  get bytes(): number {
    return this.bytesQueued;
  }

  /** offer appends value unless that would pass messagesMax items or bytesMax bytes; it returns whether it did. */
  offer(value: T, bytes: number, messagesMax: number, bytesMax: number): boolean {
    if (this.length >= messagesMax || this.bytesQueued + bytes > bytesMax) return false;
    this.items.push({ value, bytes });
    this.bytesQueued += bytes;
    return true;
  }

  /** takeBatch removes and returns the oldest items up to bytesTarget bytes and messagesMax items, but always at least one. */
  takeBatch(bytesTarget: number, messagesMax: number): T[] {
    const batch: T[] = [];
    let bytes = 0;
    while (this.head < this.items.length && batch.length < messagesMax) {
      const item = this.items[this.head]!;
      if (batch.length > 0 && bytes + item.bytes > bytesTarget) break;
      batch.push(item.value);
      bytes += item.bytes;
      this.head++;
    }
    this.bytesQueued -= bytes;
    this.compact();
    return batch;
  }

  /** dropOldest removes the oldest items until at most keep remain, and returns how many it removed. */
  dropOldest(keep: number): number {
    let dropped = 0;
    while (this.length > keep) {
      this.bytesQueued -= this.items[this.head]!.bytes;
      this.head++;
      dropped++;
    }
    this.compact();
    return dropped;
  }

  private compact(): void {
    if (this.head === this.items.length) {
      this.items = [];
      this.head = 0;
    } else if (this.head > this.items.length / 2) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
  }
}
