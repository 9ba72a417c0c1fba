import { type Entry, EntryKind, type LogIndex } from "../../src/raft/index.js";

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** chainHash folds one entry into a running hash (53-bit), so equal hashes mean equal apply histories. */
export function chainHash(prev: number, e: Entry): number {
  let h1 = 0xdeadbeef ^ prev;
  let h2 = 0x41c6ce57 ^ Math.floor(prev / 4294967296);
  const mix = (v: number) => {
    h1 = Math.imul(h1 ^ v, 2654435761);
    h2 = Math.imul(h2 ^ v, 1597334677);
  };
  mix(e.index);
  mix(e.term);
  mix(e.kind);
  for (const b of e.data) mix(b);
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/** encodeWrite makes the entry data of a simulated client write. */
export function encodeWrite(key: string, value: string): Uint8Array {
  return encoder.encode(`${key}=${value}`);
}

/**
 * KvMachine is the simulator's deterministic state machine: a string map, plus the hash chain of
 * everything applied, which a snapshot carries along.
 */
export class KvMachine {
  applied: LogIndex = 0;
  chain = 0;
  private kv = new Map<string, string>();

  /** apply applies one committed entry; entries must come in index order with no gap. */
  apply(e: Entry): void {
    if (e.index !== this.applied + 1) throw new Error(`apply gap: ${this.applied} then ${e.index}`);
    this.applied = e.index;
    this.chain = chainHash(this.chain, e);
    if (e.kind !== EntryKind.Normal || e.data.length === 0) return;
    const text = decoder.decode(e.data);
    const eq = text.indexOf("=");
    this.kv.set(text.slice(0, eq), text.slice(eq + 1));
  }

  /** get reads a key. */
  get(key: string): string | undefined {
    return this.kv.get(key);
  }

  /** snapshot encodes the whole state. */
  snapshot(): Uint8Array {
    return encoder.encode(JSON.stringify({ applied: this.applied, chain: this.chain, kv: [...this.kv] }));
  }

  /** restore replaces the whole state with a snapshot. */
  restore(data: Uint8Array): void {
    const s = JSON.parse(decoder.decode(data)) as { applied: number; chain: number; kv: [string, string][] };
    this.applied = s.applied;
    this.chain = s.chain;
    this.kv = new Map(s.kv);
  }
}
