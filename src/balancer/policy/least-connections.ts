/**
 * Weighted least-connections, as nginx's least_conn: the candidate with the fewest requests in
 * flight per unit of weight (active/weight, compared as a cross product so no division rounds);
 * ties are broken by smooth weighted round-robin among the tied, so idle candidates still share
 * traffic in proportion to weight.
 */
import type { EndpointState } from "./endpoint-state.js";
import { isExcluded, type Picker } from "./picker.js";
import { smoothWeightedPick } from "./weighted.js";

/** loadBelow says whether a carries less load per weight than b (a.active/a.weight < b.active/b.weight). */
export function loadBelow(a: EndpointState, b: EndpointState): boolean {
  return a.active * b.endpoint.weight < b.active * a.endpoint.weight;
}

/** leastConnectionsPicker picks the least loaded candidate per weight. */
export function leastConnectionsPicker(candidates: readonly EndpointState[]): Picker {
  let best: EndpointState | undefined;
  // tied is allocated once; it reads `best` from the enclosing pick.
  const tied = (s: EndpointState): boolean => best !== undefined && !loadBelow(s, best) && !loadBelow(best, s);
  return {
    pick(_hash, exclude) {
      best = undefined;
      let many = false;
      for (let i = 0; i < candidates.length; i++) {
        const s = candidates[i] as EndpointState;
        if (isExcluded(s, exclude)) continue;
        if (best === undefined || loadBelow(s, best)) {
          best = s;
          many = false;
        } else if (!loadBelow(best, s)) {
          many = true;
        }
      }
      if (!many) return best;
      return smoothWeightedPick(candidates, exclude, tied);
    },
  };
}
