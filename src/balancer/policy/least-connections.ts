/**
 * Weighted least-connections, as nginx's least_conn: the candidate with the fewest requests in
 * flight per unit of weight (active/weight, compared as a cross product so no division rounds);
 * ties are broken by smooth weighted round-robin among the tied, so idle candidates still share
 * traffic in proportion to weight. Two passes over the candidates at most, no allocation.
 */
import type { EndpointState } from "./endpoint-state.js";
import { isExcluded, type Picker } from "./picker.js";

/** loadBelow says whether a carries less load per weight than b (a.active/a.weight < b.active/b.weight). */
export function loadBelow(a: EndpointState, b: EndpointState): boolean {
  return a.active * b.endpoint.weight < b.active * a.endpoint.weight;
}

/** leastConnectionsPicker picks the least loaded candidate per weight. */
export function leastConnectionsPicker(candidates: readonly EndpointState[]): Picker {
  const n = candidates.length;
  return {
    pick(_hash, exclude) {
      // Pass 1: the least load per weight, as the fraction bestActive/bestWeight, and whether it is shared.
      let best: EndpointState | undefined;
      let bestActive = 0;
      let bestWeight = 1;
      let many = false;
      for (let i = 0; i < n; i++) {
        const s = candidates[i] as EndpointState;
        if (isExcluded(s, exclude)) continue;
        const a = s.active * bestWeight;
        const b = bestActive * s.endpoint.weight;
        if (best === undefined || a < b) {
          best = s;
          bestActive = s.active;
          bestWeight = s.endpoint.weight;
          many = false;
        } else if (a === b) {
          many = true;
        }
      }
      if (!many || best === undefined) return best;
      // Pass 2: nginx's smooth weighted round-robin step over the tied candidates only.
      let chosen: EndpointState | undefined;
      let total = 0;
      for (let i = 0; i < n; i++) {
        const s = candidates[i] as EndpointState;
        const w = s.endpoint.weight;
        if (s.active * bestWeight !== bestActive * w || isExcluded(s, exclude)) continue;
        s.swrrCurrent += w;
        total += w;
        if (chosen === undefined || s.swrrCurrent > chosen.swrrCurrent) chosen = s;
      }
      (chosen as EndpointState).swrrCurrent -= total;
      return chosen;
    },
  };
}
