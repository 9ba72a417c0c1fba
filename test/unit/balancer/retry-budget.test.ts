import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BalancerConfigError, createRetryBudget, RETRY_BUDGET_MIN_CONCURRENCY } from "../../../src/balancer/policy/index.js";
import { CountingRetryBudget } from "../../../src/balancer/policy/retry-budget.js";

describe("balancer: retry budget", () => {
  it("retry budget: under a full outage, retries in flight stop at percent × requests in flight", () => {
    const budget = createRetryBudget(20);
    for (let i = 0; i < 100; i++) budget.onRequestStart();
    let granted = 0;
    for (let i = 0; i < 200; i++) if (budget.tryStartRetry()) granted++; // every first try failed; each wants 2 retries
    expect(granted).toBe(20);
    budget.onRetryEnd();
    expect(budget.tryStartRetry()).toBe(true); // one freed, one more
    expect(budget.tryStartRetry()).toBe(false);
  });

  it("retry budget: a quiet service may still retry up to the minimum concurrency", () => {
    const budget = createRetryBudget(20);
    budget.onRequestStart();
    const granted = Array.from({ length: 10 }, () => budget.tryStartRetry()).filter(Boolean).length;
    expect(granted).toBe(RETRY_BUDGET_MIN_CONCURRENCY);
  });

  it("retry budget: retries in flight never exceed max(min, percent × requests) at the moment each is granted", () => {
    const op = fc.constantFrom("start", "end", "retry", "retryEnd", "percent");
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100 }), fc.integer({ min: 0, max: 5 }), fc.array(fc.tuple(op, fc.integer({ min: 0, max: 100 })), { maxLength: 400 }), (percent, min, ops) => {
        const b = new CountingRetryBudget(percent, min);
        let p = percent;
        let requests = 0;
        let retries = 0;
        for (const [o, v] of ops) {
          if (o === "start") {
            b.onRequestStart();
            requests++;
          } else if (o === "end") {
            b.onRequestEnd();
            requests = Math.max(0, requests - 1);
          } else if (o === "retryEnd") {
            b.onRetryEnd();
            retries = Math.max(0, retries - 1);
          } else if (o === "percent") {
            b.setPercent(v);
            p = v;
          } else {
            const allowed = Math.max(min, Math.floor((p * requests) / 100));
            const ok = b.tryStartRetry();
            expect(ok).toBe(retries < allowed);
            if (ok) retries++;
            expect(retries).toBeLessThanOrEqual(allowed);
          }
          expect(b.counts()).toEqual({ requests, retries });
        }
      }),
      { seed: 3, numRuns: 300 },
    );
  });

  it("retry budget: a percent out of [0, 100] is refused, naming the field", () => {
    expect(() => createRetryBudget(101)).toThrow(BalancerConfigError);
    expect(() => createRetryBudget(100)).not.toThrow();
    try {
      createRetryBudget(20).setPercent(-1);
      expect.unreachable();
    } catch (e) {
      expect((e as BalancerConfigError).field).toBe("config.retryBudgetPercent");
    }
  });
});
