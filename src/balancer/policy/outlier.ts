/**
 * Passive outlier detection (Envoy's consecutive-errors detector): an endpoint that fails
 * `outlierConsecutiveFailures` times in a row is ejected for base × its ejection count (capped
 * at OUTLIER_MAX_EJECTION_MS), so a repeat offender stays out longer. An ejection is refused when
 * it would put more than outlierMaxEjectionPercent of the service out (at least one may always
 * be ejected, as in Envoy) or leave no usable endpoint in service: never the last one.
 * The endpoint returns by itself once the time has passed (the balancer re-plans at that moment).
 */
import type { BalancerConfig } from "../types.js";
import { OUTLIER_DECAY_MS, OUTLIER_MAX_EJECTION_MS } from "./defaults.js";
import type { EndpointState } from "./endpoint-state.js";

/** OutlierVerdict is what recordOutcome did: "ejected" means the eligible set changed. */
export type OutlierVerdict = "none" | "ejected" | "refused";

/** isUsable says whether an endpoint could serve if not ejected: not critical and not drained (weight 0). */
export function isUsable(s: EndpointState): boolean {
  return s.endpoint.health !== "critical" && s.endpoint.weight > 0;
}

/** recordOutcome counts an outcome of endpoint `s` (one of `all`) and ejects it when the rules allow. */
export function recordOutcome(
  s: EndpointState,
  all: readonly EndpointState[],
  failed: boolean,
  nowMs: number,
  config: Pick<BalancerConfig, "outlierConsecutiveFailures" | "outlierBaseEjectionMs" | "outlierMaxEjectionPercent">,
): OutlierVerdict {
  if (!failed) {
    s.consecutiveFailures = 0;
    return "none";
  }
  const threshold = config.outlierConsecutiveFailures;
  if (threshold === 0 || config.outlierBaseEjectionMs === 0) return "none"; // detection off
  s.consecutiveFailures++;
  if (s.consecutiveFailures < threshold || s.isEjected(nowMs)) return "none";
  if (!mayEject(s, all, nowMs, config.outlierMaxEjectionPercent)) return "refused";
  eject(s, nowMs, config.outlierBaseEjectionMs);
  return "ejected";
}

/** mayEject applies the share limit and the never-the-last-one rule. */
function mayEject(s: EndpointState, all: readonly EndpointState[], nowMs: number, maxPercent: number): boolean {
  let ejected = 0;
  let othersInService = 0;
  for (const o of all) {
    if (o.isEjected(nowMs)) ejected++;
    else if (o !== s && isUsable(o)) othersInService++;
  }
  const allowed = Math.max(1, Math.floor((all.length * maxPercent) / 100));
  return ejected + 1 <= allowed && othersInService > 0;
}

/** eject takes `s` out for base × ejections, after decaying the count by the time spent back in service. */
function eject(s: EndpointState, nowMs: number, baseMs: number): void {
  if (s.ejectedUntilMs > 0) {
    const decay = Math.floor((nowMs - s.ejectedUntilMs) / OUTLIER_DECAY_MS);
    s.ejections = Math.max(0, s.ejections - decay);
  }
  s.ejections++;
  // As Envoy, the cap is never below the base itself.
  s.ejectedUntilMs = nowMs + Math.min(Math.max(baseMs, OUTLIER_MAX_EJECTION_MS), baseMs * s.ejections);
  s.consecutiveFailures = 0;
}
