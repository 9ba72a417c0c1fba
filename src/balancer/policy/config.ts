/**
 * balancerConfig builds a BalancerConfig from a service's replicated config, filling defaults for
 * fields the registry does not (yet) carry and checking ranges.
 *
 * Mapping from the registry's ServiceConfig (src/registry/types.ts; the failover work adds the
 * newer fields) — names are the same in camelCase, so the data plane passes the object through:
 *   policy                       -> policy ("hash" joins the registry's five)
 *   hash_on  / hashOn            -> hashOn ("header:<name>" | "cookie:<name>" | "source"; "" unless policy is hash)
 *   hash_method / hashMethod     -> hashMethod ("ring" | "maglev")
 *   retries, retryBudgetPercent, perTryTimeoutMs, fallback -> same names
 *   retry_on_5xx / retryOn5xx    -> retryOn5xx
 *   fallback_status / fallback_body -> fallbackStatus / fallbackBody
 *   outlier_consecutive_failures -> outlierConsecutiveFailures
 *   outlier_base_ejection_ms     -> outlierBaseEjectionMs
 *   outlier_max_ejection_percent -> outlierMaxEjectionPercent
 *   panic_threshold_percent      -> panicThresholdPercent
 *   zone_min_healthy_percent     -> zoneMinHealthyPercent
 *   upstream_tls, upstream_tls_server_name, upstream_tls_verify -> upstreamTls, upstreamTlsServerName, upstreamTlsVerify
 *   max_connections / max_pending_requests / max_requests -> maxConnections / maxPendingRequests / maxRequests
 *   mode "master-slave"          -> not a config field here: the data plane sets ServiceTable.master,
 *                                   to { id: "", epoch } while the service has no master (nothing routes)
 * Fields the registry does not know are ignored, so a newer registry does not break an older balancer.
 */
import type { BalancePolicy, BalancerConfig, HashMethod } from "../types.js";
import {
  CIRCUIT_MAX_CONNECTIONS_DEFAULT,
  CIRCUIT_MAX_PENDING_REQUESTS_DEFAULT,
  CIRCUIT_MAX_REQUESTS_DEFAULT,
  OUTLIER_BASE_EJECTION_MS_DEFAULT,
  OUTLIER_CONSECUTIVE_FAILURES_DEFAULT,
  OUTLIER_MAX_EJECTION_PERCENT_DEFAULT,
  PANIC_THRESHOLD_PERCENT_DEFAULT,
  RETRIES_DEFAULT,
  RETRY_BUDGET_PERCENT_DEFAULT,
  ZONE_MIN_HEALTHY_PERCENT_DEFAULT,
} from "./defaults.js";
import { BalancerConfigError } from "./errors.js";

/** BALANCE_POLICIES lists every policy the pickers implement. */
export const BALANCE_POLICIES: readonly BalancePolicy[] = ["round-robin", "random", "weighted", "least-connections", "p2c", "hash"];
/** HASH_METHODS lists the consistent-hash tables. */
export const HASH_METHODS: readonly HashMethod[] = ["ring", "maglev"];

/** DEFAULT_BALANCER_CONFIG is a service's config when the registry says nothing more. */
export const DEFAULT_BALANCER_CONFIG: BalancerConfig = {
  policy: "round-robin",
  hashOn: "source",
  hashMethod: "ring",
  retries: RETRIES_DEFAULT,
  retryOn5xx: false,
  retryBudgetPercent: RETRY_BUDGET_PERCENT_DEFAULT,
  perTryTimeoutMs: 0,
  fallback: "",
  fallbackStatus: 0,
  fallbackBody: "",
  outlierConsecutiveFailures: OUTLIER_CONSECUTIVE_FAILURES_DEFAULT,
  outlierBaseEjectionMs: OUTLIER_BASE_EJECTION_MS_DEFAULT,
  outlierMaxEjectionPercent: OUTLIER_MAX_EJECTION_PERCENT_DEFAULT,
  panicThresholdPercent: PANIC_THRESHOLD_PERCENT_DEFAULT,
  zoneMinHealthyPercent: ZONE_MIN_HEALTHY_PERCENT_DEFAULT,
  maxConnections: CIRCUIT_MAX_CONNECTIONS_DEFAULT,
  maxPendingRequests: CIRCUIT_MAX_PENDING_REQUESTS_DEFAULT,
  maxRequests: CIRCUIT_MAX_REQUESTS_DEFAULT,
  upstreamTls: false,
  upstreamTlsServerName: "",
  upstreamTlsVerify: true,
};

/** HASH_ON matches the accepted hashOn forms. */
const HASH_ON = /^(?:source|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+|cookie:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/;

/** balancerConfig merges `fields` over the defaults (unknown fields ignored) and checks every range. */
export function balancerConfig(fields: Partial<Record<keyof BalancerConfig, unknown>> = {}): BalancerConfig {
  const d = DEFAULT_BALANCER_CONFIG;
  const pick = <K extends keyof BalancerConfig>(k: K): BalancerConfig[K] => (fields[k] === undefined ? d[k] : (fields[k] as BalancerConfig[K]));
  const c: BalancerConfig = {
    policy: pick("policy"),
    hashOn: pick("hashOn"),
    hashMethod: pick("hashMethod"),
    retries: pick("retries"),
    retryOn5xx: pick("retryOn5xx"),
    retryBudgetPercent: pick("retryBudgetPercent"),
    perTryTimeoutMs: pick("perTryTimeoutMs"),
    fallback: pick("fallback"),
    fallbackStatus: pick("fallbackStatus"),
    fallbackBody: pick("fallbackBody"),
    outlierConsecutiveFailures: pick("outlierConsecutiveFailures"),
    outlierBaseEjectionMs: pick("outlierBaseEjectionMs"),
    outlierMaxEjectionPercent: pick("outlierMaxEjectionPercent"),
    panicThresholdPercent: pick("panicThresholdPercent"),
    zoneMinHealthyPercent: pick("zoneMinHealthyPercent"),
    maxConnections: pick("maxConnections"),
    maxPendingRequests: pick("maxPendingRequests"),
    maxRequests: pick("maxRequests"),
    upstreamTls: pick("upstreamTls"),
    upstreamTlsServerName: pick("upstreamTlsServerName"),
    upstreamTlsVerify: pick("upstreamTlsVerify"),
  };
  validateBalancerConfig(c);
  return c;
}

/** validateBalancerConfig throws BalancerConfigError naming the first field out of range. */
export function validateBalancerConfig(c: BalancerConfig, field = "config"): void {
  if (!BALANCE_POLICIES.includes(c.policy)) throw new BalancerConfigError(`${field}.policy`, `must be one of ${BALANCE_POLICIES.join(", ")}`);
  if (!HASH_METHODS.includes(c.hashMethod)) throw new BalancerConfigError(`${field}.hashMethod`, `must be one of ${HASH_METHODS.join(", ")}`);
  // "" is the registry's value for policies other than hash (as src/registry/validate.ts has it).
  if (typeof c.hashOn !== "string" || (c.hashOn !== "" && !HASH_ON.test(c.hashOn))) {
    throw new BalancerConfigError(`${field}.hashOn`, 'must be "source", "header:<name>" or "cookie:<name>"');
  }
  if (c.policy === "hash" && c.hashOn === "") throw new BalancerConfigError(`${field}.hashOn`, "must be set with policy hash");
  if (typeof c.retryOn5xx !== "boolean") throw new BalancerConfigError(`${field}.retryOn5xx`, "must be a boolean");
  if (typeof c.upstreamTls !== "boolean") throw new BalancerConfigError(`${field}.upstreamTls`, "must be a boolean");
  if (typeof c.upstreamTlsVerify !== "boolean") throw new BalancerConfigError(`${field}.upstreamTlsVerify`, "must be a boolean");
  if (typeof c.upstreamTlsServerName !== "string") throw new BalancerConfigError(`${field}.upstreamTlsServerName`, "must be a string");
  if (typeof c.fallback !== "string") throw new BalancerConfigError(`${field}.fallback`, "must be a string");
  if (typeof c.fallbackBody !== "string") throw new BalancerConfigError(`${field}.fallbackBody`, "must be a string");
  if (c.fallbackStatus !== 0) intIn(`${field}.fallbackStatus`, c.fallbackStatus, 200, 599);
  intIn(`${field}.retries`, c.retries, 0, Number.MAX_SAFE_INTEGER);
  intIn(`${field}.perTryTimeoutMs`, c.perTryTimeoutMs, 0, Number.MAX_SAFE_INTEGER);
  intIn(`${field}.outlierConsecutiveFailures`, c.outlierConsecutiveFailures, 0, Number.MAX_SAFE_INTEGER);
  intIn(`${field}.outlierBaseEjectionMs`, c.outlierBaseEjectionMs, 0, Number.MAX_SAFE_INTEGER);
  for (const k of ["retryBudgetPercent", "outlierMaxEjectionPercent", "panicThresholdPercent", "zoneMinHealthyPercent"] as const) {
    intIn(`${field}.${k}`, c[k], 0, 100);
  }
  for (const k of ["maxConnections", "maxPendingRequests", "maxRequests"] as const) {
    intIn(`${field}.${k}`, c[k], 0, Number.MAX_SAFE_INTEGER);
  }
}

function intIn(field: string, v: unknown, min: number, max: number): void {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new BalancerConfigError(field, `must be an integer in [${min}, ${max}]`);
  }
}
