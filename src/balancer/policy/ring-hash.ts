/**
 * Consistent hashing on a ring of virtual nodes (Karger et al.; Envoy's RING_HASH, ketama): each
 * candidate owns points on a 32-bit circle in proportion to its weight, and a key goes to the
 * first point at or after its hash. Removing one of N candidates moves only the keys it owned,
 * about 1/N. A pick is a binary search; a retry walks on to the next point of another candidate.
 */
import { RING_SIZE_MAX, RING_VNODES_PER_ENDPOINT } from "./defaults.js";
import type { EndpointState } from "./endpoint-state.js";
import { hash32 } from "./hash.js";
import { isExcluded, type Picker } from "./picker.js";

/**
 * ringPoints gives each weight its number of points: RING_VNODES_PER_ENDPOINT per unit of weight
 * after dividing by the weights' greatest common divisor (so equal weights get 160 each whatever
 * their value), scaled down only when the ring would pass RING_SIZE_MAX. At least one point each.
 */
export function ringPoints(weights: readonly number[]): number[] {
  const g = weights.reduce((a, w) => gcd(a, w), 0) || 1;
  const units = weights.reduce((a, w) => a + w / g, 0);
  const scale = Math.min(1, RING_SIZE_MAX / (RING_VNODES_PER_ENDPOINT * units));
  return weights.map((w) => Math.max(1, Math.round(RING_VNODES_PER_ENDPOINT * (w / g) * scale)));
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** ringHashPicker builds the ring over the candidates. */
export function ringHashPicker(candidates: readonly EndpointState[]): Picker {
  const pointsOf = ringPoints(candidates.map((s) => s.endpoint.weight));
  const raw: { pos: number; owner: number }[] = [];
  for (let c = 0; c < candidates.length; c++) {
    const s = candidates[c] as EndpointState;
    // Points hash "<id>_<k>", so an endpoint's points depend on its id only, not on the others.
    const points = pointsOf[c] as number;
    for (let k = 0; k < points; k++) raw.push({ pos: hash32(`${s.endpoint.id}_${k}`), owner: c });
  }
  // Ties between equal positions go to the smaller id, so the ring does not depend on candidate order.
  raw.sort((x, y) => x.pos - y.pos || cmp((candidates[x.owner] as EndpointState).endpoint.id, (candidates[y.owner] as EndpointState).endpoint.id));
  const positions = new Int32Array(raw.length);
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
