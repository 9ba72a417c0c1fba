/**
 * Round-robin: each candidate in turn, weights ignored (policy "weighted" honours them). The
 * position lives in a Cursor shared across rebuilds.
 */
import type { EndpointState } from "./endpoint-state.js";
import { isExcluded, type Picker, type PickerDeps } from "./picker.js";

/** roundRobinPicker takes the candidates in turn, skipping excluded ones. */
export function roundRobinPicker(candidates: readonly EndpointState[], deps: PickerDeps): Picker {
  const n = candidates.length;
  const cursor = deps.cursor;
  return {
    pick(_hash, exclude) {
      for (let tries = 0; tries < n; tries++) {
        const i = cursor.next % n;
        cursor.next = i + 1;
        const s = candidates[i] as EndpointState;
        if (!isExcluded(s, exclude)) return s;
      }
      return undefined;
    },
  };
}
