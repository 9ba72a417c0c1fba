import { describe, expect, it } from "vitest";
import { BalancerConfigError, COUNTER_SLOTS, createCircuitBreaker } from "../../../src/balancer/policy/index.js";
import { AtomicCircuitBreaker } from "../../../src/balancer/policy/circuit-breaker.js";

const LIMITS = { maxConnections: 3, maxPendingRequests: 2, maxRequests: 4 };

describe("balancer: circuit breaker", () => {
  it("circuit breaker: each limit admits exactly its number, refuses the next, and admits again after a release", () => {
    const cb = new AtomicCircuitBreaker(LIMITS);
    const cases = [
      [() => cb.tryOpenConnection(), () => cb.onConnectionClosed(), 3, "connections"],
      [() => cb.tryEnqueuePending(), () => cb.onPendingDequeued(), 2, "pending"],
      [() => cb.tryStartRequest(), () => cb.onRequestEnd(), 4, "requests"],
    ] as const;
    for (const [take, release, limit, name] of cases) {
      for (let i = 0; i < limit; i++) expect(take()).toBe(true);
      expect(take()).toBe(false);
      expect(cb.refused[name]).toBe(1);
      release();
      expect(take()).toBe(true);
    }
    expect(cb.counts()).toEqual({ connections: 3, pending: 2, requests: 4 });
  });

  it("circuit breaker: 0 means unbounded; lowering a limit lets the excess drain without refusing releases", () => {
    const cb = createCircuitBreaker({ maxConnections: 0, maxPendingRequests: 0, maxRequests: 0 });
    for (let i = 0; i < 10_000; i++) expect(cb.tryStartRequest()).toBe(true);
    cb.setLimits({ maxConnections: 0, maxPendingRequests: 0, maxRequests: 2 });
    expect(cb.tryStartRequest()).toBe(false);
    for (let i = 0; i < 9_998; i++) cb.onRequestEnd();
    expect(cb.tryStartRequest()).toBe(false); // 2 in flight: at the limit
    cb.onRequestEnd();
    expect(cb.tryStartRequest()).toBe(true);
  });

  it("circuit breaker: an unmatched release does not drive a count below zero", () => {
    const cb = createCircuitBreaker(LIMITS);
    cb.onConnectionClosed();
    cb.onPendingDequeued();
    cb.onRequestEnd();
    expect(cb.counts()).toEqual({ connections: 0, pending: 0, requests: 0 });
  });

  it("circuit breaker: breakers over the same shared counters enforce one limit together (one per worker)", () => {
    const shared = new Int32Array(new SharedArrayBuffer(COUNTER_SLOTS * 4));
    const a = createCircuitBreaker(LIMITS, shared);
    const b = createCircuitBreaker(LIMITS, shared);
    expect(a.tryStartRequest() && b.tryStartRequest() && a.tryStartRequest() && b.tryStartRequest()).toBe(true);
    expect(a.tryStartRequest()).toBe(false);
    expect(b.tryStartRequest()).toBe(false);
    b.onRequestEnd();
    expect(a.tryStartRequest()).toBe(true);
  });

  it("circuit breaker: bad limits are refused, naming the field", () => {
    try {
      createCircuitBreaker({ ...LIMITS, maxPendingRequests: -1 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(BalancerConfigError);
      expect((e as BalancerConfigError).field).toBe("config.maxPendingRequests");
    }
    expect(() => createCircuitBreaker(LIMITS, new Int32Array(2))).toThrow(BalancerConfigError);
  });
});
