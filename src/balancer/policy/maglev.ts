/**
 * Maglev consistent hashing (Eisenbud et al., NSDI 2016; Envoy's MAGLEV): a lookup table of prime
 * size M filled by each candidate in turn along its own permutation of the slots (offset and skip
 * from two hashes of its id), weighted as Envoy does: a candidate of half the largest weight takes
 * a turn every second round. A pick is one table read. Removing one of N candidates moves its own
 * slots plus a small extra share (the paper's "minimal disruption" is approximate, unlike a ring).
 */
import { MAGLEV_SLOTS_PER_ENDPOINT, MAGLEV_TABLE_SIZE_MIN } from "./defaults.js";
import type { EndpointState } from "./endpoint-state.js";
import { hash32 } from "./hash.js";
import { isExcluded, type Picker } from "./picker.js";

/** OFFSET_SEED and SKIP_SEED make the two independent hashes of a permutation. */
const OFFSET_SEED = 0x9e3779b9;
const SKIP_SEED = 0x85ebca6b;

/** maglevTableSize is the smallest prime ≥ max(MAGLEV_TABLE_SIZE_MIN, MAGLEV_SLOTS_PER_ENDPOINT × n). */
export function maglevTableSize(n: number): number {
  let m = Math.max(MAGLEV_TABLE_SIZE_MIN, MAGLEV_SLOTS_PER_ENDPOINT * n);
  while (!isPrime(m)) m++;
  return m;
}

function isPrime(m: number): boolean {
  if (m < 2) return false;
  for (let d = 2; d * d <= m; d++) if (m % d === 0) return false;
  return true;
}

/** buildMaglevTable fills a table of `size` slots with candidate indices (exported for tests). */
export function buildMaglevTable(candidates: readonly EndpointState[], size: number): Int32Array {
  const n = candidates.length;
  const table = new Int32Array(size).fill(-1);
  const offset = new Float64Array(n);
  const skip = new Float64Array(n);
  const next = new Float64Array(n);
  const nextWeight = new Float64Array(n);
  let maxWeight = 0;
  for (let i = 0; i < n; i++) {
    const s = candidates[i] as EndpointState;
    offset[i] = (hash32(s.endpoint.id, OFFSET_SEED) >>> 0) % size;
    skip[i] = ((hash32(s.endpoint.id, SKIP_SEED) >>> 0) % (size - 1)) + 1;
    maxWeight = Math.max(maxWeight, s.endpoint.weight);
  }
  let filled = 0;
  for (let round = 1; filled < size; round++) {
    for (let i = 0; i < n && filled < size; i++) {
      const w = (candidates[i] as EndpointState).endpoint.weight;
      // A candidate takes a turn when round × weight has caught up with its next threshold.
      if (round * w < (nextWeight[i] as number)) continue;
      nextWeight[i] = (nextWeight[i] as number) + maxWeight;
      let slot = ((offset[i] as number) + (next[i] as number) * (skip[i] as number)) % size;
      while (table[slot] !== -1) {
        next[i] = (next[i] as number) + 1;
        slot = ((offset[i] as number) + (next[i] as number) * (skip[i] as number)) % size;
      }
      table[slot] = i;
      next[i] = (next[i] as number) + 1;
      filled++;
    }
  }
  return table;
}

/** maglevPicker builds the lookup table over the candidates. */
export function maglevPicker(unordered: readonly EndpointState[]): Picker {
  // Filling order decides contested slots: order by id so the table depends on the set only.
  const candidates = [...unordered].sort((a, b) => (a.endpoint.id < b.endpoint.id ? -1 : a.endpoint.id > b.endpoint.id ? 1 : 0));
  const size = maglevTableSize(candidates.length);
  const table = buildMaglevTable(candidates, size);
  return {
    pick(hash, exclude) {
      const start = (hash >>> 0) % size;
      for (let step = 0; step < size; step++) {
        const at = start + step >= size ? start + step - size : start + step;
        const s = candidates[table[at] as number] as EndpointState;
        if (!isExcluded(s, exclude)) return s;
      }
      return undefined;
    },
  };
}
