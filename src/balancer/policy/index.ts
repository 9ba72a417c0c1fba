/**
 * The balancer's decision half: pure, synchronous, no I/O, no clock, no Math.random. The data
 * plane (src/balancer, worker threads) creates one ServiceBalancer per service per worker, one
 * RetryBudget and one CircuitBreaker per service, and feeds them what happens.
 */
import type { BalancerDeps, CircuitBreaker, RetryBudget, ServiceBalancer, ServiceTable } from "../types.js";
import { AtomicCircuitBreaker, type CircuitLimits } from "./circuit-breaker.js";
import { RETRY_BUDGET_MIN_CONCURRENCY } from "./defaults.js";
import { CountingRetryBudget } from "./retry-budget.js";
import { PolicyServiceBalancer } from "./service-balancer.js";

export { BALANCE_POLICIES, balancerConfig, DEFAULT_BALANCER_CONFIG, HASH_METHODS, validateBalancerConfig } from "./config.js";
export * from "./defaults.js";
export { BalancerConfigError, BalancerError } from "./errors.js";
export { COUNTER_SLOTS, type CircuitLimits, SharedBreakerCounters } from "./circuit-breaker.js";
export { hash32 } from "./hash.js";

/** createServiceBalancer builds the balancer of one service; it throws BalancerConfigError for a bad table. */
export function createServiceBalancer(table: ServiceTable, deps: BalancerDeps): ServiceBalancer {
  return new PolicyServiceBalancer(table, deps);
}

/** createRetryBudget builds a service's retry budget at `percent` (config.retryBudgetPercent). */
export function createRetryBudget(percent: number, minConcurrency = RETRY_BUDGET_MIN_CONCURRENCY): RetryBudget {
  return new CountingRetryBudget(percent, minConcurrency);
}

/**
 * createCircuitBreaker builds a service's circuit breaker. Pass `counters` (COUNTER_SLOTS Int32
 * slots, e.g. over a SharedArrayBuffer) to share the counts between workers, and `tally` for this
 * worker's share of them (see SharedBreakerCounters).
 */
export function createCircuitBreaker(limits: CircuitLimits, counters?: Int32Array, tally?: Int32Array): CircuitBreaker {
  return new AtomicCircuitBreaker(limits, counters, tally);
}
