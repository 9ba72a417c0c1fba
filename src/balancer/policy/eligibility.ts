/**
 * The eligibility pipeline: which endpoints may take the next request, split into priority levels
 * with their share of traffic. planEligible is a pure function of the endpoints' state and nowMs;
 * the balancer calls it only when something changed (update, ejection, an ejection's end), never
 * per pick.
 *
 *  1. Master-slave: only the master (when present and not critical), whatever else holds.
 *  2. Usable: weight 0 drains an endpoint; it takes no new requests and is not counted.
 *  3. Health: "passing" endpoints are healthy; when none passes, "warning" ones are.
 *     Ejected endpoints are not healthy.
 *  4. Panic: when healthy endpoints are fewer than panicThresholdPercent of the usable ones,
 *     health checks are likelier wrong than the endpoints: route to all usable endpoints.
 *  5. Priority levels (Envoy's priority load): a level's health is min(100, 1.4 × its healthy
 *     percent); the lowest level takes up to its health in percent of traffic, the next the rest up
 *     to its own, and so on; when all levels together fall short of 100, shares are scaled up.
 *  6. Locality, within a level: the healthy endpoints of the local zone take all of the level's
 *     traffic while at least zoneMinHealthyPercent of that zone's endpoints are healthy. Below, the
 *     zone keeps a share in proportion to its health, healthyPercent / zoneMinHealthyPercent (with
 *     the default 71 %, Envoy's overprovisioning of 1.4 × healthy), and the rest goes to the
 *     healthy endpoints of the other zones, each zone in proportion to its healthy endpoints:
 *     spill-over grows with the local zone's losses instead of moving everything at once.
 */
import type { BalancerConfig, ServiceTable } from "../types.js";
import { OVERPROVISIONING_FACTOR } from "./defaults.js";
import type { EndpointState } from "./endpoint-state.js";

/** LevelPlan is one priority level's candidates and the upper edge of its traffic share (cumulative, 0–100]. */
export interface LevelPlan {
  readonly priority: number;
  readonly candidates: readonly EndpointState[];
  /** upTo: the level takes a pick whose draw in [0, 100) is below upTo and at or above the previous level's. */
  readonly upTo: number;
  /** local says the candidates are the local zone's only. */
  readonly local: boolean;
}

/** Plan is the outcome of the pipeline. */
export interface Plan {
  /** levels with a share > 0, lowest priority value first; empty when nothing is eligible. */
  readonly levels: readonly LevelPlan[];
  readonly panic: boolean;
  /** spare: every endpoint a retry may widen to when its level's candidates are all excluded (all healthy ones, or all in panic). */
  readonly spare: readonly EndpointState[];
  /** nextChangeMs is the earliest moment an ejection ends (Infinity for none): the plan is stale from then. */
  readonly nextChangeMs: number;
}

/** planEligible runs the pipeline over the balancer's endpoints. */
export function planEligible(
  states: readonly EndpointState[],
  master: ServiceTable["master"],
  config: Pick<BalancerConfig, "panicThresholdPercent" | "zoneMinHealthyPercent">,
  localZone: string,
  nowMs: number,
): Plan {
  if (master !== undefined) {
    const m = states.find((s) => s.endpoint.id === master.id);
    const levels = m !== undefined && m.endpoint.health !== "critical" ? [{ priority: m.endpoint.priority, candidates: [m], upTo: 100, local: false }] : [];
    return { levels, panic: false, spare: [], nextChangeMs: Number.POSITIVE_INFINITY };
  }
  let nextChangeMs = Number.POSITIVE_INFINITY;
  for (const s of states) if (s.isEjected(nowMs)) nextChangeMs = Math.min(nextChangeMs, s.ejectedUntilMs);

  const usable = states.filter((s) => s.endpoint.weight > 0);
  const healthClass = usable.some((s) => s.endpoint.health === "passing") ? "passing" : "warning";
  const healthy = (s: EndpointState): boolean => s.endpoint.health === healthClass && !s.isEjected(nowMs);
  const healthyCount = usable.filter(healthy).length;
  if (usable.length === 0) return { levels: [], panic: false, spare: [], nextChangeMs };

  const panic = config.panicThresholdPercent > 0 && healthyCount * 100 < config.panicThresholdPercent * usable.length;
  if (panic) return { levels: [{ priority: 0, candidates: usable, upTo: 100, local: false }], panic, spare: [], nextChangeMs };
  if (healthyCount === 0) return { levels: [], panic, spare: [], nextChangeMs };

  const levels = priorityLoads(usable, healthy);
  const out: LevelPlan[] = [];
  let upTo = 0;
  for (const l of levels) {
    if (l.load <= 0) continue;
    // A level split by locality is several entries of the same priority, each with its share.
    for (const part of localitySplit(l.members, healthy, localZone, config.zoneMinHealthyPercent)) {
      upTo += l.load * part.share;
      out.push({ priority: l.priority, candidates: part.candidates, upTo, local: part.local });
    }
  }
  // Rounding must not leave a sliver above the last level.
  if (out.length > 0) out[out.length - 1] = { ...(out[out.length - 1] as LevelPlan), upTo: 100 };
  const spare = usable.filter(healthy).sort((a, b) => a.endpoint.priority - b.endpoint.priority);
  return { levels: out, panic, spare, nextChangeMs };
}

/** priorityLoads groups endpoints by priority and gives each level its share of traffic in percent (Envoy's priority load). */
export function priorityLoads(
  usable: readonly EndpointState[],
  healthy: (s: EndpointState) => boolean,
): { priority: number; members: EndpointState[]; load: number }[] {
  // Appended in place: copying the level's array per member (as this once did) made a replan
  // quadratic in the service's size, 22 ms at 10,000 endpoints (test/bench/balancer/patch-bench.ts).
  const byPriority = new Map<number, EndpointState[]>();
  for (const s of usable) {
    const members = byPriority.get(s.endpoint.priority);
    if (members === undefined) byPriority.set(s.endpoint.priority, [s]);
    else members.push(s);
  }
  const levels = [...byPriority.entries()].sort((a, b) => a[0] - b[0]).map(([priority, members]) => ({ priority, members, load: 0 }));
  let remaining = 100;
  let assigned = 0;
  for (const l of levels) {
    const healthyPercent = (100 * l.members.filter(healthy).length) / l.members.length;
    const health = Math.min(100, OVERPROVISIONING_FACTOR * healthyPercent);
    l.load = Math.min(remaining, health);
    remaining -= l.load;
    assigned += l.load;
  }
  // Short of 100 in total: scale the shares up so they still add to 100 (Envoy's normalized total health).
  if (assigned > 0 && assigned < 100) for (const l of levels) l.load = (l.load * 100) / assigned;
  return levels;
}

/** LocalityPart is a share (0, 1] of a level's traffic and the endpoints that take it. */
export interface LocalityPart {
  readonly candidates: EndpointState[];
  readonly share: number;
  readonly local: boolean;
}

/**
 * localitySplit divides a level's traffic between the local zone and the others: all local while
 * at least zoneMinHealthyPercent of the local zone is healthy; below, the local zone keeps
 * healthyPercent / zoneMinHealthyPercent of it and the other zones' healthy endpoints take the rest.
 * With no local zone set, no healthy local endpoint or no healthy remote one, one part: all healthy.
 */
export function localitySplit(
  members: readonly EndpointState[],
  healthy: (s: EndpointState) => boolean,
  localZone: string,
  zoneMinHealthyPercent: number,
): LocalityPart[] {
  const all = members.filter(healthy);
  if (localZone === "") return [{ candidates: all, share: 1, local: false }];
  const local = all.filter((s) => s.endpoint.zone === localZone);
  if (local.length === 0) return [{ candidates: all, share: 1, local: false }];
  const remote = all.filter((s) => s.endpoint.zone !== localZone);
  if (remote.length === 0) return [{ candidates: local, share: 1, local: true }];
  const zoneSize = members.filter((s) => s.endpoint.zone === localZone).length;
  const healthyPercent = (100 * local.length) / zoneSize;
  const share = zoneMinHealthyPercent <= 0 ? 1 : Math.min(1, healthyPercent / zoneMinHealthyPercent);
  if (share >= 1) return [{ candidates: local, share: 1, local: true }];
  return [
    { candidates: local, share, local: true },
    { candidates: remote, share: 1 - share, local: false },
  ];
}
