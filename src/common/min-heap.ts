/**
 * MinHeap is a binary heap of items ordered by a numeric key (smallest first): push and pop in
 * O(log n), peek in O(1). Pure and synchronous.
 */
export class MinHeap<T> {
  private readonly keys: number[] = [];
  private readonly items: T[] = [];

  /** peekKey is the smallest key, or undefined when empty. */
  peekKey(): number | undefined {
    return this.keys[0];
  }

  push(key: number, item: T): void {
    const keys = this.keys;
    const items = this.items;
    let i = keys.length;
    keys.push(key);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if ((keys[parent] as number) <= key) break;
      keys[i] = keys[parent] as number;
      items[i] = items[parent] as T;
      i = parent;
    }
    keys[i] = key;
    items[i] = item;
  }

  /** pop removes and returns the item with the smallest key (undefined when empty). */
  pop(): T | undefined {
    const keys = this.keys;
    const items = this.items;
    const n = keys.length;
    if (n === 0) return undefined;
    const top = items[0] as T;
    const lastKey = keys.pop() as number;
    const lastItem = items.pop() as T;
    if (n === 1) return top;
    let i = 0;
    const size = n - 1;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= size) break;
      const right = left + 1;
      const child = right < size && (keys[right] as number) < (keys[left] as number) ? right : left;
      if ((keys[child] as number) >= lastKey) break;
      keys[i] = keys[child] as number;
      items[i] = items[child] as T;
      i = child;
    }
    keys[i] = lastKey;
    items[i] = lastItem;
    return top;
  }

  clear(): void {
    this.keys.length = 0;
    this.items.length = 0;
  }
}
