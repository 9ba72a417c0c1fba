/**
 * hash32 is MurmurHash3 (x86, 32-bit) over a string's UTF-16 code units, two to a block. It is
 * fast, allocation-free and mixes well enough for ring positions, Maglev permutations and keys;
 * it is not a defence against chosen keys (hash flooding only skews load, it cannot pick a target
 * outside the eligible set).
 */

/**
 * hash32 returns the MurmurHash3 of `s` with `seed` as a signed 32-bit integer: a small integer
 * (Smi) on 64-bit V8, so passing it around allocates nothing, where an unsigned value above 2^31
 * would be boxed as a heap number on every call. Use `>>> 0` locally where unsigned is needed.
 */
export function hash32(s: string, seed = 0): number {
  let h = seed >>> 0;
  const n = s.length;
  let i = 0;
  for (; i + 1 < n; i += 2) {
    let k = (s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16)) >>> 0;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < n) {
    let k = s.charCodeAt(i);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= n * 2;
  return fmix32(h);
}

/** fmix32 is MurmurHash3's finalizer: it spreads every input bit over the whole word (signed 32-bit result, see hash32). */
export function fmix32(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
