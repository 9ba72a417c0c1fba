/**
 * The main thread's heap growth: how far V8 lets the old generation grow past what the last full
 * collection kept before it starts the next one. V8's own factor adapts to the collector's speed
 * and goes up to 4×; with 100,000 instances (~100 MiB live) a leader's heap sat at ~200 MiB
 * between collections. A fixed lower factor keeps it closer to the live size for more frequent
 * full collections: the measured trade is in README "Memory" (agent-memory.ts --agent-env).
 */
import { setFlagsFromString } from "node:v8";

/** applyHeapGrowth sets V8's growth factor to 1 + percent/100 for this process; 0 leaves V8's own. */
export function applyHeapGrowth(percent: number): void {
  if (!Number.isInteger(percent) || percent < 0) throw new RangeError(`heap growth percent must be a non-negative integer, got ${percent}`);
  // V8 reads the flag at each full collection's limit computation, so setting it at run time takes
  // effect from the next collection on (test/integration/process/heap-growth.test.ts).
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
