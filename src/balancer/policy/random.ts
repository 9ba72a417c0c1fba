/**
 * Random: a candidate drawn in proportion to its weight (uniform when weights are equal), as
 * nginx's `random` does. A cumulative weight table makes a draw a binary search.
 */
import type { EndpointState } from "./endpoint-state.js";
import { isExcluded, type Picker, type PickerDeps } from "./picker.js";

/** WeightedSampler draws candidates in proportion to weight, O(log n) a draw, without allocating. */
export class WeightedSampler {
  private readonly cumulative: Float64Array;
  private readonly total: number;

  constructor(
    private readonly candidates: readonly EndpointState[],
    private readonly random: () => number,
  ) {
    this.cumulative = new Float64Array(candidates.length);
    let sum = 0;
    for (let i = 0; i < candidates.length; i++) {
      sum += (candidates[i] as EndpointState).endpoint.weight;
      this.cumulative[i] = sum;
    }
    this.total = sum;
  }

  /** draw returns a candidate, each with probability weight / total weight. */
  draw(): EndpointState {
    const r = this.random() * this.total;
    let lo = 0;
    let hi = this.cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if ((this.cumulative[mid] as number) > r) hi = mid;
      else lo = mid + 1;
    }
    return this.candidates[lo] as EndpointState;
  }

  /** drawExcept draws among candidates not in `exclude` (O(n), the retry path); undefined when all are excluded. */
  drawExcept(exclude: ReadonlySet<string>): EndpointState | undefined {
    let total = 0;
    for (const s of this.candidates) if (!isExcluded(s, exclude)) total += s.endpoint.weight;
    if (total === 0) return undefined;
    let r = this.random() * total;
    let last: EndpointState | undefined;
    for (const s of this.candidates) {
      if (isExcluded(s, exclude)) continue;
      last = s;
      r -= s.endpoint.weight;
      if (r < 0) return s;
    }
    return last; // r rounded to exactly 0 at the end
  }
}

/** randomPicker draws a candidate in proportion to weight, skipping excluded ones. */
export function randomPicker(candidates: readonly EndpointState[], deps: PickerDeps): Picker {
  const sampler = new WeightedSampler(candidates, deps.random);
  return {
    pick(_hash, exclude) {
      if (exclude === undefined || exclude.size === 0) return sampler.draw();
      return sampler.drawExcept(exclude);
    },
  };
}
