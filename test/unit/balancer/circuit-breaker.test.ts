import { describe, expect, it } from "vitest";
import { BalancerConfigError, COUNTER_SLOTS, createCircuitBreaker, SharedBreakerCounters } from "../../../src/balancer/policy/index.js";
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

  it("circuit breaker: shared counters by service slot; a dead worker's share is given back, the live one's kept", () => {
    const counters = new SharedBreakerCounters(2, 2);
    const w0 = createCircuitBreaker(LIMITS, counters.shared(1), counters.tally(1, 0));
    const w1 = createCircuitBreaker(LIMITS, counters.shared(1), counters.tally(1, 1));
    const other = createCircuitBreaker(LIMITS, counters.shared(0), counters.tally(0, 1));
    expect(w0.tryOpenConnection() && w0.tryOpenConnection() && w1.tryOpenConnection()).toBe(true);
    expect(w1.tryOpenConnection()).toBe(false); // 3 across the two workers
    expect(other.tryOpenConnection()).toBe(true); // another service's slot is its own
    counters.forgetWorker(0);
    expect(w1.counts().connections).toBe(1);
    expect(w1.tryOpenConnection() && w1.tryOpenConnection()).toBe(true);
    expect(w1.tryOpenConnection()).toBe(false);
    // The dead worker's breaker (it no longer runs) cannot release what was given back for it.
    w0.onConnectionClosed();
    expect(w1.counts().connections).toBe(3);
    expect(() => counters.shared(2)).toThrow(BalancerConfigError);
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
