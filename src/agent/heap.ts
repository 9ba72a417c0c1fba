/**
 * The main thread's heap growth: how far V8 lets the old generation grow past what the last full
 * collection kept before it starts the next one. V8's own factor adapts to the collector's speed
 * and goes up to 4×; with 100,000 instances (~100 MiB live) a leader's heap sat at 190-210 MiB
 * between collections and its RSS at rest at 425-454 MiB. A fixed factor of 2 (the default, 100 %)
 * keeps it nearer the live size for somewhat more frequent full collections: 284-380 MiB at rest,
 * 4-17 % more CPU per registration, none measurable per KV put (README "Benchmarks",
 * agent-memory.ts and bench:raft with --agent-env RAFTMESH_HEAP_GROWTH_PERCENT=...).
 */
import { setFlagsFromString } from "node:v8";

/** applyHeapGrowth sets V8's growth factor to 1 + percent/100 for this process; 0 leaves V8's own. */
export function applyHeapGrowth(percent: number): void {
  if (!Number.isInteger(percent) || percent < 0) throw new RangeError(`heap growth percent must be a non-negative integer, got ${percent}`);
  // V8 reads the flag at each full collection's limit computation, so setting it at run time takes
  // effect from the next collection on (test/integration/process/heap-growth.test.ts).
  if (percent > 0) setFlagsFromString(`--heap-growing-percent=${percent}`);
}
