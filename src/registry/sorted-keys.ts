/**
 * SortedKeys: a set of strings kept in ascending order (JavaScript's `<`, UTF-16 code units) as a
 * list of sorted leaves of at most SORTED_KEYS_LEAF_MAX keys each — a two-level B+ tree.
 *
 * Why not one sorted array: inserting a new key into the middle of one array moves every key after
 * it. With the KV at 200,000 keys that was ~200 µs of memmove per new key on every node, and at
 * KV_KEYS_MAX (1,000,000) about a millisecond: the KV's size capped the whole cluster's write rate.
 * Here an insert or delete touches one leaf (≤ 512 keys) plus, on a split or an emptied leaf, the
 * list of leaves (KV_KEYS_MAX / 256 ≈ 4,000 references), whatever the size.
 *
 * Invariants: every leaf is non-empty and sorted; the last key of a leaf is below the first key of
 * the next; `count` is the sum of leaf lengths.
 */

/** SORTED_KEYS_LEAF_MAX: a leaf splits in two above this many keys. 512 keeps a splice within a leaf under a microsecond. */
export const SORTED_KEYS_LEAF_MAX = 512;

/** Position names a key's place: leaf `leaf`, slot `slot`. A position past the end has leaf = leaves.length. */
interface Position {
  leaf: number;
  slot: number;
}

export class SortedKeys {
  private leaves: string[][] = [];
  private count = 0;
  /** mergeBelow: a leaf this small after deletes merges into a neighbour that has room, so many deletes do not leave many tiny leaves. */
  private readonly mergeBelow: number;

  /** leafMax is SORTED_KEYS_LEAF_MAX but for tests, which use tiny leaves to split and merge often. */
  constructor(private readonly leafMax: number = SORTED_KEYS_LEAF_MAX) {
    if (!Number.isInteger(leafMax) || leafMax < 2) throw new RangeError(`leafMax must be an integer ≥ 2, got ${leafMax}`);
    this.mergeBelow = Math.max(1, leafMax >>> 2);
  }

  get size(): number {
    return this.count;
  }

  /** insert adds a key that is not already present (the caller knows from its map); returns nothing. */
  insert(key: string): void {
    if (this.leaves.length === 0) {
      this.leaves.push([key]);
      this.count = 1;
      return;
    }
    const li = this.leafFor(key);
    const leaf = this.leaves[li]!;
    leaf.splice(lowerBound(leaf, key), 0, key);
    this.count++;
    if (leaf.length > this.leafMax) this.leaves.splice(li + 1, 0, leaf.splice(leaf.length >>> 1));
  }

  /** delete removes a key; returns whether it was present. */
  delete(key: string): boolean {
    if (this.leaves.length === 0) return false;
    const li = this.leafFor(key);
    const leaf = this.leaves[li]!;
    const slot = lowerBound(leaf, key);
    if (leaf[slot] !== key) return false;
    leaf.splice(slot, 1);
    this.count--;
    this.tidy(li);
    return true;
  }

  /**
   * deletePrefix removes every key that starts with `prefix` and returns them in order. Whole
   * leaves inside the range go in one splice of the leaf list.
   */
  deletePrefix(prefix: string): string[] {
    const out: string[] = [];
    const first = this.lowerBound(prefix);
    let li = first.leaf;
    let slot = first.slot;
    while (li < this.leaves.length) {
      const leaf = this.leaves[li]!;
      let end = slot;
      while (end < leaf.length && leaf[end]!.startsWith(prefix)) end++;
      const matchedToEnd = end === leaf.length;
      for (const k of leaf.splice(slot, end - slot)) out.push(k);
      // A key that does not match ends the range: every later key sorts after it.
      if (!matchedToEnd) break;
      if (leaf.length === 0) this.leaves.splice(li, 1);
      else li++;
      slot = 0;
    }
    this.count -= out.length;
    // The leaves at the range's two ends may now be small. Highest index first: tidy(i) only moves leaves at i and above.
    this.tidy(first.leaf + 1);
    this.tidy(first.leaf);
    this.tidy(first.leaf - 1);
    return out;
  }

  /**
   * from yields keys in order, starting at the first key ≥ `key` (or at the first key when `key`
   * is undefined). The caller must not change the set while iterating.
   */
  *from(key: string | undefined): Generator<string> {
    const p = key === undefined ? { leaf: 0, slot: 0 } : this.lowerBound(key);
    for (let li = p.leaf, slot = p.slot; li < this.leaves.length; li++, slot = 0) {
      const leaf = this.leaves[li]!;
      for (; slot < leaf.length; slot++) yield leaf[slot]!;
    }
  }

  /** toArray returns every key in order. */
  toArray(): string[] {
    const out = new Array<string>(this.count);
    let i = 0;
    for (const leaf of this.leaves) for (const k of leaf) out[i++] = k;
    return out;
  }

  /** load replaces the contents with keys already in strictly ascending order (checked by the caller). */
  load(keys: readonly string[]): void {
    this.leaves = [];
    // Leaves filled to half, so the first inserts after a restore do not split every leaf at once.
    const step = Math.max(1, this.leafMax >>> 1);
    for (let i = 0; i < keys.length; i += step) this.leaves.push(keys.slice(i, i + step));
    this.count = keys.length;
  }

  /** leafFor is the leaf a key belongs in: the last leaf whose first key is ≤ key, or the first leaf. */
  private leafFor(key: string): number {
    let lo = 0;
    let hi = this.leaves.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.leaves[mid]![0]! <= key) lo = mid + 1;
      else hi = mid;
    }
    return lo === 0 ? 0 : lo - 1;
  }

  /** lowerBound is the position of the first key ≥ key. */
  private lowerBound(key: string): Position {
    if (this.leaves.length === 0) return { leaf: 0, slot: 0 };
    const li = this.leafFor(key);
    const leaf = this.leaves[li]!;
    const slot = lowerBound(leaf, key);
    return slot < leaf.length ? { leaf: li, slot } : { leaf: li + 1, slot: 0 };
  }

  /** tidy drops leaf `li` if empty, or merges it into a neighbour when it is small and they fit together. */
  private tidy(li: number): void {
    const leaf = this.leaves[li];
    if (leaf === undefined) return;
    if (leaf.length === 0) {
      this.leaves.splice(li, 1);
      return;
    }
    if (leaf.length >= this.mergeBelow) return;
    const next = this.leaves[li + 1];
    if (next !== undefined && leaf.length + next.length <= this.leafMax) {
      this.leaves[li] = leaf.concat(next);
      this.leaves.splice(li + 1, 1);
      return;
    }
    const prev = this.leaves[li - 1];
    if (prev !== undefined && prev.length + leaf.length <= this.leafMax) {
      this.leaves[li - 1] = prev.concat(leaf);
      this.leaves.splice(li, 1);
    }
  }

  /** leafCount is the number of leaves (tests check that deletes do not leave a trail of tiny leaves). */
  get leafCount(): number {
    return this.leaves.length;
  }

  /** checkInvariants throws if the structure is broken (tests only; O(n)). */
  checkInvariants(): void {
    let n = 0;
    let prev: string | undefined;
    for (const leaf of this.leaves) {
      if (leaf.length === 0 || leaf.length > this.leafMax) throw new Error(`leaf of ${leaf.length} keys`);
      for (const k of leaf) {
        if (prev !== undefined && !(prev < k)) throw new Error(`keys out of order: ${prev} then ${k}`);
        prev = k;
        n++;
      }
    }
    if (n !== this.count) throw new Error(`count ${this.count}, keys ${n}`);
  }
}

function lowerBound(a: readonly string[], key: string): number {
  let lo = 0;
  let hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
