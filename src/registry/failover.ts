/**
 * The promotion rules of master-slave services, pure: apply() calls them at the end of every entry
 * that touched a master-slave service, so every node reaches the same (master, epoch) from the log
 * alone, in the same entry as the cause.
 *
 * - A master keeps the role while it is registered and not critical (a warning master still serves).
 * - Otherwise the best eligible standby is promoted: eligible = passing, not in maintenance, and not more than
 *   maxLagOnFailover behind the best known replication position (Patroni's maximum_lag_on_failover;
 *   0: no lag rule); best = highest position, then lowest priority value (README: "a lower number
 *   is preferred"), then smallest id. Without positions (all 0) priority decides.
 * - No eligible standby: no master ("no-master"); the next entry in which one is eligible (e.g. an
 *   instance passing) promotes it.
 * - A former master that comes back is a standby like any other: nothing demotes a serving master
 *   in its favour, except the optional fail-back to the configured preferred instance after its
 *   hold-down.
 *
 * Positions reach the log with the entries that can cause a promotion (see LeaseDriver): the best
 * known position is the largest one recorded for the service, the failed master's included.
 */
import type { Instance, MasterReason, MasterState, ServiceConfig } from "./types.js";

/** Candidate is what the rules read of an instance. */
export type Candidate = Pick<Instance, "id" | "health" | "healthSince" | "priority" | "replicationPosition"> & { readonly maintenance?: boolean };

/** MasterDecision is a change of master: to `master` ("" none) for `reason`. */
export interface MasterDecision {
  readonly master: string;
  readonly reason: MasterReason;
}

/** bestKnownPosition is the largest replication position recorded among a service's instances (0: none). */
export function bestKnownPosition(instances: readonly Candidate[]): number {
  let best = 0;
  for (const i of instances) if (i.replicationPosition > best) best = i.replicationPosition;
  return best;
}

/** ineligibleReason says why an instance may not become master now, or null if it may. */
export function ineligibleReason(c: Candidate, best: number, maxLag: number): string | null {
  if (c.health !== "passing") return `instance ${c.id} is ${c.health}, not passing`;
  if (c.maintenance === true) return `instance ${c.id} is in maintenance`;
  const behind = best - c.replicationPosition;
  if (maxLag > 0 && behind > maxLag) {
    return `instance ${c.id} is ${behind} behind the best known replication position ${best}, more than max_lag_on_failover ${maxLag}`;
  }
  return null;
}

/** better orders candidates: highest position, then lowest priority value, then smallest id. */
export function better(a: Candidate, b: Candidate): number {
  if (a.replicationPosition !== b.replicationPosition) return b.replicationPosition - a.replicationPosition;
  if (a.priority !== b.priority) return a.priority - b.priority;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/** chooseMaster is the best eligible instance other than `exclude`, or "" when none is eligible. */
export function chooseMaster(instances: readonly Candidate[], maxLag: number, exclude = ""): string {
  const best = bestKnownPosition(instances);
  let chosen: Candidate | undefined;
  for (const c of instances) {
    if (c.id === exclude || ineligibleReason(c, best, maxLag) !== null) continue;
    if (chosen === undefined || better(c, chosen) < 0) chosen = c;
  }
  return chosen?.id ?? "";
}

/**
 * decide is the change of master an entry's end state calls for, or null for none. `instances`
 * are the service's instances after the entry, by id; `cur` its master before any decision of this
 * entry. It walks the instances only to choose a new master: an entry that keeps the master (every
 * registration into a service with a healthy master, or with none to have) costs a lookup, not
 * the service's size.
 */
export function decide(cur: MasterState, config: ServiceConfig, instances: ReadonlyMap<string, Candidate>): MasterDecision | null {
  if (config.mode !== "master-slave") return cur.master !== "" ? { master: "", reason: "demoted" } : null;
  if (cur.master !== "") {
    const m = instances.get(cur.master);
    if (m !== undefined && m.health !== "critical") return null;
  }
  const next = chooseMaster([...instances.values()], config.maxLagOnFailover, cur.master);
  if (next !== "") return { master: next, reason: "promoted" };
  return cur.master !== "" ? { master: "", reason: "no-master" } : null;
}

/**
 * switchoverTarget checks a switchover (or fail-back) to `to` ("" the best eligible standby) and
 * returns the new master, or the reason it is refused.
 */
export function switchoverTarget(cur: MasterState, config: ServiceConfig, instances: readonly Candidate[], to: string): { master: string } | { refused: string } {
  if (config.mode !== "master-slave") return { refused: `the service is ${config.mode}, not master-slave` };
  if (to === "") {
    const next = chooseMaster(instances, config.maxLagOnFailover, cur.master);
    return next === "" ? { refused: "no standby is eligible (passing and within max_lag_on_failover)" } : { master: next };
  }
  const c = instances.find((i) => i.id === to);
  if (c === undefined) return { refused: `instance ${to} is not registered in the service` };
  if (c.id === cur.master) return { refused: `instance ${to} is the master already (epoch ${cur.epoch})` };
  const why = ineligibleReason(c, bestKnownPosition(instances), config.maxLagOnFailover);
  return why === null ? { master: to } : { refused: why };
}

/**
 * failbackRefusal says why a fail-back to the preferred instance may not happen at cluster time
 * `now`, or null when it may: the preferred instance must be eligible and passing for the hold-down,
 * and the master must have held the role for the hold-down, so a flapping instance cannot cause a
 * storm of failovers.
 */
export function failbackRefusal(cur: MasterState, config: ServiceConfig, instances: readonly Candidate[], now: number): string | null {
  const preferred = config.failback;
  if (preferred === "") return "the service has no failback instance";
  const target = switchoverTarget(cur, config, instances, preferred);
  if ("refused" in target) return target.refused;
  const hold = config.failbackHoldDownMs;
  const c = instances.find((i) => i.id === preferred);
  if (c === undefined || now - c.healthSince < hold) return `instance ${preferred} has not passed for the hold-down of ${hold}ms`;
  if (now - cur.since < hold) return `the master changed less than the hold-down of ${hold}ms ago`;
  return null;
}
