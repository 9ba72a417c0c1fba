/**
 * Smooth weighted round-robin, nginx's algorithm (ngx_http_upstream_get_peer): every pick adds
 * each candidate's weight to its current weight, takes the candidate with the largest current
 * weight, and subtracts the total from it. Over any run of `total weight` picks each candidate is
 * chosen exactly weight times, and heavy candidates are spread out (5,1,1 gives a a b a c a a).
 * Current weights live in EndpointState, so they survive rebuilds. O(n) a pick, as in nginx.
 */
import type { EndpointState } from "./endpoint-state.js";
import { isExcluded, type Picker } from "./picker.js";

/** smoothWeightedPick runs one step of nginx's smooth weighted round-robin over the candidates not excluded. */
export function smoothWeightedPick(candidates: readonly EndpointState[], exclude: ReadonlySet<string> | undefined): EndpointState | undefined {
  let best: EndpointState | undefined;
  let total = 0;
  for (let i = 0; i < candidates.length; i++) {
    const s = candidates[i] as EndpointState;
    if (isExcluded(s, exclude)) continue;
    const w = s.endpoint.weight;
    s.swrrCurrent += w;
    total += w;
    if (best === undefined || s.swrrCurrent > best.swrrCurrent) best = s;
  }
  if (best !== undefined) best.swrrCurrent -= total;
  return best;
}

/** weightedPicker is smooth weighted round-robin over the candidates. */
export function weightedPicker(candidates: readonly EndpointState[]): Picker {
  return { pick: (_hash, exclude) => smoothWeightedPick(candidates, exclude) };
}
