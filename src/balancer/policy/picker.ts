/**
 * Picker is one policy's choice among a fixed set of candidates (one priority level's eligible
 * endpoints). The balancer builds a new picker whenever the eligible set changes, and calls pick
 * for every request; pick must not allocate.
 */
import type { EndpointState } from "./endpoint-state.js";

/** Picker chooses one of its candidates. */
export interface Picker {
  /**
   * pick returns a candidate whose id is not in `exclude`, or undefined when every candidate is
   * excluded. `hash` is the request's key hash, a signed 32-bit integer; only hash pickers read it.
   */
  pick(hash: number, exclude: ReadonlySet<string> | undefined): EndpointState | undefined;
}

/** Cursor is state that outlives one picker: the round-robin position survives a rebuild, so a change does not send the next picks to the first endpoint again. */
export interface Cursor {
  next: number;
}

/** PickerDeps is what a picker may use besides its candidates. */
export interface PickerDeps {
  random(): number;
  readonly cursor: Cursor;
}

/** PickerFactory builds a picker over `candidates` (non-empty, every weight ≥ 1); the array is not changed afterwards. */
export type PickerFactory = (candidates: readonly EndpointState[], deps: PickerDeps) => Picker;

/** isExcluded says whether `s` is in `exclude`. */
export function isExcluded(s: EndpointState, exclude: ReadonlySet<string> | undefined): boolean {
  return exclude !== undefined && exclude.size > 0 && exclude.has(s.endpoint.id);
}
