/**
 * Consistent hashing on a ring of virtual nodes (Karger et al.; Envoy's RING_HASH, ketama): each
 * candidate owns points on a 32-bit circle in proportion to its weight, and a key goes to the
 * first point at or after its hash. Removing one of N candidates moves only the keys it owned,
 * about 1/N. A pick is a binary search; a retry walks on to the next point of another candidate.
 */
import { RING_SIZE_MAX, RING_SIZE_MIN, RING_VNODES_PER_ENDPOINT } from "./defaults.js";
import type { EndpointState } from "./endpoint-state.js";
import { hash32 } from "./hash.js";
import { isExcluded, type Picker } from "./picker.js";

/** ringSize is the number of points for `n` candidates: RING_VNODES_PER_ENDPOINT each, within [RING_SIZE_MIN, RING_SIZE_MAX]. */
export function ringSize(n: number): number {
  return Math.min(RING_SIZE_MAX, Math.max(RING_SIZE_MIN, n * RING_VNODES_PER_ENDPOINT));
}

/** ringHashPicker builds the ring over the candidates. */
export function ringHashPicker(candidates: readonly EndpointState[]): Picker {
  const size = ringSize(candidates.length);
  let totalWeight = 0;
  for (const s of candidates) totalWeight += s.endpoint.weight;
  const raw: { pos: number; owner: number }[] = [];
  for (let c = 0; c < candidates.length; c++) {
    const s = candidates[c] as EndpointState;
    // Points hash "<id>_<k>", so an endpoint's points depend on its id only, not on the others.
    const points = Math.max(1, Math.round((size * s.endpoint.weight) / totalWeight));
    for (let k = 0; k < points; k++) raw.push({ pos: hash32(`${s.endpoint.id}_${k}`), owner: c });
  }
  // Ties between equal positions go to the smaller id, so the ring does not depend on candidate order.
  raw.sort((x, y) => x.pos - y.pos || cmp((candidates[x.owner] as EndpointState).endpoint.id, (candidates[y.owner] as EndpointState).endpoint.id));
  const positions = new Uint32Array(raw.length);
  const owners = new Int32Array(raw.length);
  raw.forEach((p, i) => {
    positions[i] = p.pos;
    owners[i] = p.owner;
  });
  const last = raw.length - 1;
  return {
    pick(hash, exclude) {
      let lo = 0;
      let hi = raw.length; // first position >= hash, or raw.length to wrap
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if ((positions[mid] as number) < hash) lo = mid + 1;
        else hi = mid;
      }
      for (let step = 0; step <= last; step++) {
        const at = lo + step > last ? lo + step - last - 1 : lo + step;
        const s = candidates[owners[at] as number] as EndpointState;
        if (!isExcluded(s, exclude)) return s;
      }
      return undefined;
    },
  };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
