/**
 * The registry's key-value store: a map for lookups plus the keys in sorted order (SortedKeys, a
 * two-level B+ tree) for prefix lists and prefix deletes. Keys sort by UTF-16 code units
 * (JavaScript's `<`), the same on every node.
 */
import { SortedKeys } from "./sorted-keys.js";
import type { KvCompare, KvEntry } from "./types.js";

/** KvPage is one page of a list. */
export interface KvPage {
  readonly entries: KvEntry[];
  /** more says whether keys after the last one returned also match. */
  readonly more: boolean;
}

/** KvStore holds the entries. Invariant: `sorted` holds exactly the keys of `entries`, ascending. */
export class KvStore {
  private readonly entries = new Map<string, KvEntry>();
  private readonly sorted = new SortedKeys();

  get size(): number {
    return this.entries.size;
  }

  get(key: string): KvEntry | undefined {
    return this.entries.get(key);
  }

  /** put writes a key at `index` (etcd semantics: createIndex kept, version counts puts) and returns the new entry. */
  put(key: string, value: string, index: number): KvEntry {
    const prev = this.entries.get(key);
    const entry: KvEntry = { key, value, createIndex: prev?.createIndex ?? index, modIndex: index, version: (prev?.version ?? 0) + 1 };
    if (!prev) this.sorted.insert(key);
    this.entries.set(key, entry);
    return entry;
  }

  /** delete removes a key and returns its last entry, if it existed. */
  delete(key: string): KvEntry | undefined {
    const prev = this.entries.get(key);
    if (!prev) return undefined;
    this.entries.delete(key);
    this.sorted.delete(key);
    return prev;
  }

  /** deletePrefix removes every key starting with `prefix` and returns their last entries in key order. */
  deletePrefix(prefix: string): KvEntry[] {
    const out: KvEntry[] = [];
    for (const k of this.sorted.deletePrefix(prefix)) {
      out.push(this.entries.get(k)!);
      this.entries.delete(k);
    }
    return out;
  }

  /** list returns up to `limit` entries whose key starts with `prefix` and sorts after `startAfter`, in key order. */
  list(prefix: string, startAfter: string | undefined, limit: number): KvPage {
    const from = startAfter !== undefined && startAfter >= prefix ? startAfter : prefix;
    const entries: KvEntry[] = [];
    for (const k of this.sorted.from(from)) {
      if (k === startAfter) continue;
      if (!k.startsWith(prefix)) break;
      if (entries.length >= limit) return { entries, more: true };
      entries.push(this.entries.get(k)!);
    }
    return { entries, more: false };
  }

  /** all returns every entry in key order. */
  all(): KvEntry[] {
    return this.sorted.toArray().map((k) => this.entries.get(k)!);
  }

  /** load replaces the contents with entries given in ascending key order (a snapshot's). */
  load(entries: readonly KvEntry[]): void {
    this.entries.clear();
    const keys = new Array<string>(entries.length);
    let prev: string | undefined;
    entries.forEach((e, i) => {
      if (prev !== undefined && !(prev < e.key)) throw new Error(`kv keys out of order: ${JSON.stringify(prev)} then ${JSON.stringify(e.key)}`);
      prev = e.key;
      keys[i] = e.key;
      this.entries.set(e.key, e);
    });
    this.sorted.load(keys);
  }

  /** compare evaluates one transaction condition; a missing key has value "", indexes 0 and version 0. */
  compare(c: KvCompare): boolean {
    const e = this.entries.get(c.key);
    if (c.target === "value") {
      // Canonical base64 (validated) of equal bytes is equal text; order compares the bytes, as etcd does.
      const order = compareBytes(e?.value ?? "", c.value ?? "");
      return holds(c.op, order);
    }
    const have = e === undefined ? 0 : c.target === "mod" ? e.modIndex : c.target === "create" ? e.createIndex : e.version;
    const want = c.number ?? 0;
    return holds(c.op, have < want ? -1 : have > want ? 1 : 0);
  }
}

function holds(op: KvCompare["op"], order: number): boolean {
  switch (op) {
    case "==":
      return order === 0;
    case "!=":
      return order !== 0;
    case "<":
      return order < 0;
    case ">":
      return order > 0;
  }
}

function compareBytes(aB64: string, bB64: string): number {
  if (aB64 === bB64) return 0;
  return Buffer.compare(Buffer.from(aB64, "base64"), Buffer.from(bB64, "base64"));
}
