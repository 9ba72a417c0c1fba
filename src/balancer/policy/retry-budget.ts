/**
 * A retry budget, Envoy-style (retry_budget): retries in flight may not exceed
 * max(minConcurrency, budgetPercent × requests in flight). During a full outage every first try
 * fails; without a budget each would bring `retries` more, multiplying the load on a service that
 * is already down. The floor lets a quiet service still retry its occasional failure.
 */
import type { RetryBudget } from "../types.js";
import { RETRY_BUDGET_MIN_CONCURRENCY } from "./defaults.js";
import { BalancerConfigError } from "./errors.js";

/** CountingRetryBudget is RetryBudget over two counters. */
export class CountingRetryBudget implements RetryBudget {
  /** requests counts first tries in flight. Invariant: >= 0. */
  private requests = 0;
  /** retries counts retries in flight. Invariant: 0 <= retries <= max(minConcurrency, allowance at reservation). */
  private retries = 0;

  constructor(
    private percent: number,
    private readonly minConcurrency = RETRY_BUDGET_MIN_CONCURRENCY,
  ) {
    checkPercent(percent);
  }

  onRequestStart(): void {
    this.requests++;
  }

  onRequestEnd(): void {
    if (this.requests > 0) this.requests--;
  }

  tryStartRetry(): boolean {
    if (this.retries >= this.allowed()) return false;
    this.retries++;
    return true;
  }

  onRetryEnd(): void {
    if (this.retries > 0) this.retries--;
  }

  setPercent(percent: number): void {
    checkPercent(percent);
    this.percent = percent;
  }

  /** allowed is the most retries that may be in flight now. */
  allowed(): number {
    return Math.max(this.minConcurrency, Math.floor((this.percent * this.requests) / 100));
  }

  /** counts returns the counters, for metrics and tests. */
  counts(): { readonly requests: number; readonly retries: number } {
    return { requests: this.requests, retries: this.retries };
  }
}

function checkPercent(percent: number): void {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100) throw new BalancerConfigError("config.retryBudgetPercent", "must be an integer in [0, 100]");
}
