/**
 * Power of two choices on requests in flight (Envoy's LEAST_REQUEST with choice_count 2): draw
 * two candidates at random and take the one with less load. Weighted as Envoy compares hosts of
 * unequal weight, on active/weight; draws are in proportion to weight, so idle candidates share
 * traffic by weight too. With equal weights this is the classic P2C (draws with replacement).
 */
import type { EndpointState } from "./endpoint-state.js";
import { loadBelow } from "./least-connections.js";
import type { Picker, PickerDeps } from "./picker.js";
import { WeightedSampler } from "./random.js";

/** p2cPicker draws two candidates and keeps the less loaded per weight (the first on a tie). */
export function p2cPicker(candidates: readonly EndpointState[], deps: PickerDeps): Picker {
  const sampler = new WeightedSampler(candidates, deps.random);
  return {
    pick(_hash, exclude) {
      const retry = exclude !== undefined && exclude.size > 0;
      const a = retry ? sampler.drawExcept(exclude) : sampler.draw();
      if (a === undefined) return undefined;
      const b = retry ? (sampler.drawExcept(exclude) as EndpointState) : sampler.draw();
      return loadBelow(b, a) ? b : a;
    },
  };
}
