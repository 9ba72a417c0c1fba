/**
 * Registry totals as a client sees them (ListServices counts), and waiting for nodes to converge.
 */
import type { ServiceMsg } from "../../../src/common/messages.js";
import type { BenchCluster } from "./cluster.js";

/** HealthTotals sums ListServices counts over the services a phase owns. */
export interface HealthTotals {
  readonly services: number;
  readonly instances: number;
  readonly passing: number;
  readonly warning: number;
  readonly critical: number;
  /** index is the applied index the answer was read at. */
  readonly index: number;
}

/** countHealth sums the counts of services whose name starts with prefix ("" for all). */
export function countHealth(list: { services: ServiceMsg[]; index: number }, prefix = ""): HealthTotals {
  const t = { services: 0, instances: 0, passing: 0, warning: 0, critical: 0, index: list.index };
  for (const s of list.services) {
    if (!s.name.startsWith(prefix)) continue;
    t.services++;
    t.instances += s.instances;
    t.passing += s.passing;
    t.warning += s.warning;
    t.critical += s.critical;
  }
  return t;
}

/** CONVERGE_POLL_MS is the pause between status polls while waiting for nodes to catch up. */
const CONVERGE_POLL_MS = 100;

/** waitApplied waits until every node in ids has applied index, or timeoutMs passed; it returns the ms it took, or NaN on timeout. */
export async function waitApplied(c: BenchCluster, ids: readonly string[], index: number, timeoutMs: number): Promise<number> {
  const start = performance.now();
  // Bounded by timeoutMs: one poll per CONVERGE_POLL_MS at most.
  while (performance.now() - start < timeoutMs) {
    const views = await Promise.all(ids.map((id) => c.pc.client(id).status({ deadlineMs: 1_000 }).catch(() => undefined)));
    if (views.every((v) => v !== undefined && v.applied >= index)) return performance.now() - start;
    await new Promise((r) => setTimeout(r, CONVERGE_POLL_MS));
  }
  return Number.NaN;
}
